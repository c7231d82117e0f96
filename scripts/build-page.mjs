#!/usr/bin/env node
/**
 * Bundles the visualizer page (visualizer/page/main.ts with elkjs and uPlot) with esbuild
 * into dist/visualizer/page/{index.html, app.js, app.css}: the three files the server serves.
 * The page must work offline and carry no URL: comments (licence headers included) are left
 * out, ELK's internal EMF namespace ids are renamed, and the build fails if any http(s)://
 * string is left in what it wrote.
 */
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'visualizer', 'page');
const out = join(root, 'dist', 'visualizer', 'page');
const URL_PATTERN = /https?:\/\//;

/**
 * elk.bundled.js (GWT-compiled Java) names its EMF packages and XML types by namespace URIs
 * (`http://www.eclipse.org/elk/ElkGraph`, `…/XMLSchema#int`). They are lookup keys, never
 * fetched: renaming every one the same way keeps the keys distinct and equal where they were.
 */
const elkWithoutUrls = {
  name: 'elk-without-urls',
  setup(b) {
    b.onLoad({ filter: /elkjs[\\/]lib[\\/]elk\.bundled\.js$/ }, (args) => ({
      contents: readFileSync(args.path, 'utf8').replace(/https?:\/\//g, 'urn:elk-ns:'),
      loader: 'js',
    }));
  },
};

// A fresh directory: the server serves whatever is in it.
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
await build({
  entryPoints: { app: join(src, 'main.ts') },
  bundle: true,
  outdir: out,
  format: 'iife',
  platform: 'browser',
  target: ['es2020'],
  minify: true,
  legalComments: 'none',
  sourcemap: false,
  logLevel: 'warning',
  plugins: [elkWithoutUrls],
});
copyFileSync(join(src, 'index.html'), join(out, 'index.html'));

const written = readdirSync(out);
for (const name of written) {
  const text = readFileSync(join(out, name), 'utf8');
  const m = text.match(URL_PATTERN);
  if (m) {
    const at = text.indexOf(m[0]);
    throw new Error(`build-page: ${name} contains a URL near "${text.slice(Math.max(0, at - 40), at + 60)}"; the page must carry none`);
  }
}
const expected = ['app.css', 'app.js', 'index.html'];
if (written.sort().join() !== expected.join()) throw new Error(`build-page: expected ${expected.join(', ')} in ${out}, found ${written.join(', ')}`);
