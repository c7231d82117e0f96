/**
 * The built visualizer page (`npm run build` → dist/visualizer/page): exactly the three files
 * the server serves, no URL anywhere in them (the bundled libraries' included: the page must
 * work with the network off and never reach a CDN), and index.html loading only those files.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const DIR = 'dist/visualizer/page';
const read = (name: string) => readFileSync(join(DIR, name), 'utf8');

describe('built visualizer page', () => {
  it('is index.html, app.js and app.css, built by npm run build', () => {
    expect(readdirSync(DIR).sort()).toEqual(['app.css', 'app.js', 'index.html']);
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.build).toContain('scripts/build-page.mjs');
    // The libraries are in the bundle: uPlot's class names and ELK's layered algorithm id.
    const js = read('app.js');
    expect(js).toContain('uplot');
    expect(js).toContain('org.eclipse.elk.layered');
    expect(js.length).toBeGreaterThan(500_000);
  });

  it('holds no http:// or https:// string in any file', () => {
    for (const name of readdirSync(DIR)) {
      const text = read(name);
      const hit = /https?:\/\//i.exec(text);
      expect(hit ? `${name}: …${text.slice(Math.max(0, hit.index - 40), hit.index + 60)}…` : null).toBeNull();
      // Nor a protocol-relative reference (`//host/…`) in an attribute or url().
      expect(/(src|href)\s*=\s*["']?\/\//i.test(text) || /url\(\s*["']?\/\//i.test(text), name).toBe(false);
    }
  });

  it('index.html references only its own local files', () => {
    const html = read('index.html');
    const refs = [...html.matchAll(/\b(?:src|href)\s*=\s*"([^"]*)"/gi)].map((m) => m[1]!);
    expect(refs.sort()).toEqual(['app.css', 'app.js']);
    for (const ref of refs) expect(readdirSync(DIR)).toContain(ref);
    // Nothing else can pull a resource in: no inline @import, no <iframe>/<img>/<object>, no url() in the CSS but data:.
    expect(html).not.toMatch(/@import|<iframe|<img|<object|<embed/i);
    const css = read('app.css');
    expect(css).not.toMatch(/@import/i);
    for (const m of css.matchAll(/url\(\s*["']?([^"')]*)/gi)) expect(m[1]!.startsWith('data:'), m[1]).toBe(true);
  });
});
