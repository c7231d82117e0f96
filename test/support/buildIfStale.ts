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

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

export default function setup(): void {
  let built = 0;
  try {
    built = statSync(BUILT).mtimeMs;
  } catch {
    built = 0;
  }
  const newest = Math.max(...SOURCES.map((d) => newestMtime(d)));
  if (newest > built) execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
}
