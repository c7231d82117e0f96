/**
 * What the server lets in (docs/visualizer.md, "Security"). The server can pause and stop a
 * user's training, so:
 *
 * - `Host` must name the address the server is bound to. A page from elsewhere that rebinds its
 *   own DNS name to 127.0.0.1 (DNS rebinding) sends its own name as Host and is refused.
 * - A WebSocket upgrade must come from the page's own origin (`http://<Host>`), or carry no
 *   Origin at all (a script, not a browser: browsers always send Origin on WebSocket upgrades).
 *   So a web page the user visits cannot connect to the socket and drive the run.
 * - Request paths are decoded once and refused when they could leave the page directory
 *   (`..`, `.`, encoded slashes or backslashes, NUL, a second level of percent-encoding); the
 *   static file server then serves only files it listed itself (staticFiles.ts).
 */
import { isIP } from 'node:net';

export interface Bound {
  host: string;
  port: number;
  /** More names the Host header may carry (e.g. a LAN name when bound to 0.0.0.0). */
  allowedHosts?: readonly string[];
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

export function isLoopback(host: string): boolean {
  return LOOPBACK_NAMES.has(host) || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export const isWildcard = (host: string) => host === '0.0.0.0' || host === '::' || host === '[::]';

/** `[::1]` for IPv6 literals, as a URL and a Host header write them. */
export function hostForUrl(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

/** Splits a Host header into name and port (`[::1]:80` → `[::1]`, 80); null if malformed. */
function splitHost(header: string): { name: string; port: number | null } | null {
  const m = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(header);
  if (!m) return null;
  return { name: m[1]!.toLowerCase(), port: m[2] === undefined ? null : Number(m[2]) };
}

/** Is `header` (a request's Host) the address this server is reached at? */
export function hostAllowed(header: string | undefined, bound: Bound): boolean {
  if (!header) return false;
  const parts = splitHost(header.trim());
  if (!parts) return false;
  const port = parts.port ?? 80;
  if (port !== bound.port) return false;
  const name = parts.name;
  const boundName = hostForUrl(bound.host).toLowerCase();
  if (name === boundName) return true;
  if (bound.allowedHosts?.some((h) => h.toLowerCase() === name)) return true;
  // The loopback names all reach a loopback-bound server, and no other machine can.
  if (isLoopback(bound.host) && isLoopback(name)) return true;
  // Bound to every interface: any IP literal (DNS rebinding needs a name), and localhost.
  if (isWildcard(bound.host)) return isIP(name.replace(/^\[|\]$/g, '')) !== 0 || name === 'localhost';
  return false;
}

/**
 * May this WebSocket upgrade proceed? No Origin (a script) is fine; otherwise it must be the
 * origin of the page this server serves at the Host the request used (already checked).
 */
export function originAllowed(origin: string | undefined, hostHeader: string): boolean {
  if (origin === undefined) return true;
  return origin.toLowerCase() === `http://${hostHeader.trim().toLowerCase()}`;
}

/**
 * The request path as a page-relative file path (`/` → `index.html`), or null when it must be
 * refused. Refused: no leading slash, encoded `/` `\` or NUL, raw `\` or NUL, `%` after decoding
 * (double encoding such as `%252e%252e`), malformed escapes, and `.`, `..` or empty segments.
 */
export function pagePath(rawUrl: string | undefined): string | null {
  if (!rawUrl || !rawUrl.startsWith('/')) return null;
  const cut = rawUrl.search(/[?#]/);
  const raw = cut < 0 ? rawUrl : rawUrl.slice(0, cut);
  if (/%(2f|5c|00)/i.test(raw) || /[\\\0]/.test(raw)) return null;
  let decoded: string;
  try {
    decoded = decodeURIComponent(raw);
  } catch {
    return null;
  }
  if (/[%\\\0]/.test(decoded)) return null;
  if (decoded === '/') return 'index.html';
  const segments = decoded.slice(1).split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return null;
  return segments.join('/');
}
