/**
 * What `npm publish` would ship, as npm itself computes it (`npm pack --dry-run`; scripts are
 * not run, so nothing is built): the docs every README link points at, and the LICENSE.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);

describe('the npm package', () => {
  it('ships docs/*.md and an MIT LICENSE', async () => {
    const { stdout } = await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { maxBuffer: 1 << 24 });
    const files = (JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path);
    const docs = readdirSync('docs').filter((f) => f.endsWith('.md'));
    expect(docs).toContain('api.md');
    for (const doc of docs) expect(files).toContain(`docs/${doc}`);
    expect(files).toContain('LICENSE');
    const license = readFileSync('LICENSE', 'utf8');
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) 2026 trainchart contributors\n/);
    expect(JSON.parse(readFileSync('package.json', 'utf8')).license).toBe('MIT');
    // Every docs/ page the README links to is one of them.
    for (const [, link] of readFileSync('README.md', 'utf8').matchAll(/\]\((docs\/[^)#]+)/g)) expect(files).toContain(link);
  }, 60_000);
});
