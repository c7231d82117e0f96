import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | null = null;

/**
 * This library's version, from its package.json, found by walking up from this file (the
 * sources and the build sit at different depths). A checkpoint records it for people; the
 * format version, not this, decides what a reader accepts.
 */
export function libraryVersion(): string {
  if (cached !== null) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'trainchart' && typeof pkg.version === 'string') return (cached = pkg.version);
    } catch {
      // not here; one level up
    }
    dir = dirname(dir);
  }
  return (cached = 'unknown');
}
