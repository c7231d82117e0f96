/**
 * Test helpers for the visualizer: a WebSocket client that records every message and can wait
 * for one, a raw HTTP request (paths sent byte for byte, no client-side normalization), and a
 * child process whose output lines can be waited for.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import WebSocket from 'ws';

export type Msg = Record<string, unknown> & { type: string };

export class VizClient {
  readonly messages: Array<Msg & { at: number }> = [];
  private waiters: Array<{ pred: (m: Msg) => boolean; from: number; resolve: (m: Msg) => void }> = [];
  closeCode: number | null = null;

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString()) as Msg;
      this.messages.push({ ...m, at: performance.now() });
      const i = this.messages.length - 1;
      this.waiters = this.waiters.filter((w) => {
        if (i >= w.from && w.pred(m)) {
          w.resolve(m);
          return false;
        }
        return true;
      });
    });
    ws.on('close', (code) => (this.closeCode = code));
  }

  static open(url: string, options: WebSocket.ClientOptions = {}): Promise<VizClient> {
    const ws = new WebSocket(url, options);
    const client = new VizClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client));
      ws.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Messages before this index were returned by `next` (or passed over by it). */
  private cursor = 0;

  /**
   * The first message not yet returned by `next` that satisfies `pred` (waiting for it if need
   * be); the messages before it are passed over. `from` starts the search at that index instead.
   */
  next(pred: (m: Msg) => boolean, { from, timeoutMs = 30_000 }: { from?: number; timeoutMs?: number } = {}): Promise<Msg> {
    const start = from ?? this.cursor;
    for (let i = start; i < this.messages.length; i++) {
      if (pred(this.messages[i]!)) {
        this.cursor = i + 1;
        return Promise.resolve(this.messages[i]!);
      }
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching message in ${timeoutMs} ms; got ${this.messages.map((m) => m.type).join(',')}`)), timeoutMs);
      this.waiters.push({
        pred,
        from: start,
        resolve: (m) => {
          clearTimeout(timer);
          this.cursor = this.messages.length;
          resolve(m);
        },
      });
    });
  }

  ofType(type: string): Msg[] {
    return this.messages.filter((m) => m.type === type);
  }

  close(): void {
    this.ws.close();
  }
}

export const wsUrl = (httpUrl: string) => httpUrl.replace(/^http/, 'ws') + 'ws';

/** One HTTP/1.1 request written by hand: the path and headers go out exactly as given. */
export function rawGet(port: number, path: string, headers: Record<string, string> = { Host: `127.0.0.1:${port}` }): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (d) => (data += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      const split = data.indexOf('\r\n\r\n');
      resolve({ status, headers: data.slice(0, split), body: data.slice(split + 4) });
    });
    const head = Object.entries({ ...headers, Connection: 'close' }).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    socket.write(`GET ${path} HTTP/1.1\r\n${head}\r\n`);
  });
}

/** A child process whose stdout and stderr lines are kept and can be waited for. */
export class Child {
  readonly lines: string[] = [];
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  private waiters: Array<{ re: RegExp; resolve: (m: RegExpExecArray) => void }> = [];

  constructor(args: string[], opts: { stdin?: boolean } = {}) {
    this.proc = spawn(process.execPath, args, { stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    for (const stream of [this.proc.stdout!, this.proc.stderr!]) {
      let buf = '';
      stream.on('data', (d: Buffer) => {
        buf += d.toString();
        for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
          this.onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
    }
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
  }

  private onLine(line: string): void {
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => {
      const m = w.re.exec(line);
      if (m) w.resolve(m);
      return !m;
    });
  }

  line(re: RegExp, timeoutMs = 60_000): Promise<RegExpExecArray> {
    for (const l of this.lines) {
      const m = re.exec(l);
      if (m) return Promise.resolve(m);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${re} in ${timeoutMs} ms:\n${this.lines.join('\n')}`)), timeoutMs);
      this.waiters.push({ re, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  }

  /** The visualizer's URL, from the `visualizer: URL` line. */
  async url(): Promise<string> {
    return (await this.line(/^visualizer: (http:\/\/\S+\/)$/))[1]!;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.proc.exitCode === null) this.proc.kill(signal);
  }
}
