/**
 * The HTTP side of the visualizer: the page's files (GET/HEAD only) and the WebSocket upgrade at
 * `/ws`, both behind the checks of security.ts. Runs in the server's worker thread.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { hostAllowed, originAllowed, pagePath, type Bound } from './security.js';
import type { PageFiles } from './staticFiles.js';
import { MAX_MESSAGE_BYTES } from './wsProtocol.js';

export const WS_PATH = '/ws';

/**
 * Sent with every page response. The page is a bundle served from here: its scripts, styles and
 * socket are all same-origin (the socket named explicitly too, for browsers whose 'self' does not
 * cover ws:); framing is refused so no other site can overlay it (clickjacking the stop button).
 * `host` is the request's Host, already checked against the bound address.
 */
function pageHeaders(host: string): Record<string, string> {
  return {
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    'Cache-Control': 'no-store',
    'Referrer-Policy': 'no-referrer',
    'Content-Security-Policy':
      "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
      `font-src 'self' data:; connect-src 'self' ws://${host}; worker-src 'self' blob:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`,
  };
}

function refuse(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', Connection: 'close' });
  res.end(text + '\n');
}

function refuseUpgrade(socket: Duplex, status: number, reason: string, text: string): void {
  const body = text + '\n';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

export interface VizHttpServer {
  server: Server;
  wss: WebSocketServer;
  /** Set once the server listens (port 0 picks one). */
  bound: Bound;
}

export function createVizServer(
  bound: Bound,
  files: PageFiles,
  onConnection: (ws: WebSocket) => void,
): VizHttpServer {
  const wss = new WebSocketServer({ noServer: true, maxPayload: MAX_MESSAGE_BYTES });
  const handle = (req: IncomingMessage, res: ServerResponse) => {
    if (!hostAllowed(req.headers.host, bound)) {
      return refuse(res, 403, `forbidden: Host "${req.headers.host ?? ''}" is not this server's address`);
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('Allow', 'GET, HEAD');
      return refuse(res, 405, 'method not allowed');
    }
    const path = pagePath(req.url);
    if (path === WS_PATH.slice(1)) return refuse(res, 426, `upgrade required: ${WS_PATH} is the WebSocket endpoint`);
    const file = path === null ? null : files.get(path);
    if (!file) return refuse(res, 404, 'not found');
    res.writeHead(200, { ...pageHeaders(req.headers.host!), 'Content-Type': file.type, 'Content-Length': file.body.length });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  };
  const server = createServer(handle);
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    if (!hostAllowed(req.headers.host, bound)) return refuseUpgrade(socket, 403, 'Forbidden', 'Host is not this server');
    const cut = (req.url ?? '').search(/[?#]/);
    const url = cut < 0 ? req.url : req.url!.slice(0, cut);
    if (url !== WS_PATH) return refuseUpgrade(socket, 404, 'Not Found', `the WebSocket endpoint is ${WS_PATH}`);
    if (!originAllowed(req.headers.origin, req.headers.host!)) {
      return refuseUpgrade(socket, 403, 'Forbidden', 'Origin is not this page: only the visualizer page (or a script without Origin) may connect');
    }
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws));
  });
  // A client that goes away mid-request must not take the server down.
  server.on('clientError', (_err, socket) => socket.destroy());
  return { server, wss, bound };
}
