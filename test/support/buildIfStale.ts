/**
 * vitest globalSetup: the CLI tests run `dist/`, so build it when any source is newer than
 * the build (as after an edit, when running one suite with `npx vitest run <file>`).
 * `npm test` builds first anyway; then this finds nothing to do.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const SOURCES = ['src', 'machines', 'callbacks', 'visualizer'];
const BUILT = 'dist/src/cli/main.js';
// The visualizer page is bundled by esbuild (scripts/build-page.mjs), not by tsc.
const PAGE_SOURCES = ['visualizer/page', 'visualizer/chart', 'machines', 'scripts'];
const PAGE_BUILT = 'dist/visualizer/page/app.js';
const PAGE_FILES = /\.(ts|html|css|mjs)$/;

function newestMtime(dir: string, files: RegExp = /\.ts$/): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path, files));
    else if (files.test(entry.name)) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

function mtimeOf(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

export default function setup(): void {
  const newest = Math.max(...SOURCES.map((d) => newestMtime(d)));
  if (newest > mtimeOf(BUILT)) execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
  const newestPage = Math.max(...PAGE_SOURCES.map((d) => newestMtime(d, PAGE_FILES)));
  if (newestPage > mtimeOf(PAGE_BUILT)) execFileSync(process.execPath, ['scripts/build-page.mjs'], { stdio: 'inherit' });
}
