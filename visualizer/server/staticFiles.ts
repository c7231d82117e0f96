/**
 * The page's files: exactly the files found in the page directory when the server starts
 * (dist/visualizer/page/, built by `npm run build`). A request can only ever select one of
 * them by its listed name — no path is built from what a client sent — so nothing outside
 * the directory can be served, whatever the encoding. Without a built page, `/` serves a
 * short note (the WebSocket protocol works either way).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

export interface PageFile {
  body: Buffer;
  type: string;
}

const PLACEHOLDER = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>trainchart visualizer</title></head>
<body><h1>trainchart visualizer</h1>
<p>The page is not built (dist/visualizer/page/index.html is missing): run <code>npm run build</code>.</p>
<p>The WebSocket protocol is live at <code>/ws</code> (docs/visualizer.md).</p>
</body></html>
`;

/** page-relative path (`index.html`, `assets/app.js`) → absolute file. */
function listFiles(dir: string, prefix = '', depth = 0, out = new Map<string, string>()): Map<string, string> {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const e of entries) {
    const abs = join(dir, e.name);
    // Hidden files and symlinks are not part of a built page; depth is bounded for the same reason.
    if (e.name.startsWith('.') || e.isSymbolicLink()) continue;
    if (e.isDirectory() && depth < 4) listFiles(abs, `${prefix}${e.name}/`, depth + 1, out);
    else if (e.isFile()) out.set(`${prefix}${e.name}`, abs);
  }
  return out;
}

export class PageFiles {
  private readonly files: Map<string, string>;
  readonly built: boolean;

  constructor(readonly dir: string) {
    this.files = listFiles(dir);
    this.built = this.files.has('index.html');
  }

  /** The file at a page-relative path (from security.pagePath), or null: 404. Read per request, so a rebuilt page is served fresh. */
  get(path: string): PageFile | null {
    if (!this.built && path === 'index.html') return { body: Buffer.from(PLACEHOLDER), type: TYPES['.html']! };
    const abs = this.files.get(path);
    if (!abs) return null;
    try {
      if (!statSync(abs).isFile()) return null;
      return { body: readFileSync(abs), type: TYPES[extname(abs).toLowerCase()] ?? 'application/octet-stream' };
    } catch {
      return null;
    }
  }
}
