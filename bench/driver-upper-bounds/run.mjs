// Runs bench/decompose with the upper-bound hacks of runLoop.patch switched by environment
// variables (see RESULT.md). Only meaningful on a build patched with runLoop.patch:
//   npm run build && patch dist/src/loop/runLoop.js < bench/driver-upper-bounds/runLoop.patch
//   FUSE=1 node --expose-gc bench/driver-upper-bounds/run.mjs wasm 64 30
// Rebuild (npm run build) to undo the patch. A measurement, never part of the product.
globalThis.__FUSE = Number(process.env.FUSE ?? 0);
globalThis.__NOYIELD = process.env.NOYIELD === '1';
globalThis.__FEWCLOCK = process.env.FEWCLOCK === '1';
globalThis.__N = 0;
process.on('exit', () => console.log(`batches taken by the FUSE=${globalThis.__FUSE} path: ${globalThis.__FUSED ?? 0}`));
await import(new URL('../../dist/bench/decompose.js', import.meta.url).href);
