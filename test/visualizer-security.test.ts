/**
 * The visualizer's security model (issue 9 §7, docs/visualizer.md): only the page's own files,
 * whatever the encoding of the path; Host must be the bound address (DNS rebinding); a WebSocket
 * upgrade from a foreign Origin is refused, one without Origin (a script) accepted; malformed
 * messages get an error and the server keeps working; a taken port is a clear typed error.
 * No training runs here, so the server can be driven from this thread.
 */
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConfigError } from '../src/errors.js';
import { PortInUseError, Visualizer } from '../visualizer/index.js';
import { rawGet, VizClient, wsUrl, type Msg } from './support/vizClient.js';

let viz: Visualizer;
let port: number;
let url: string;

beforeAll(async () => {
  viz = new Visualizer({ port: 0 });
  url = await viz.start();
  port = viz.port!;
});
afterAll(async () => {
  await viz.close();
});

/** Why an upgrade was refused: the status line of the server's answer. */
function upgradeStatus(options: WebSocket.ClientOptions, path = '/ws'): Promise<number | 'open'> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`, options);
    ws.on('open', () => {
      ws.close();
      resolve('open');
    });
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.on('error', (e) => {
      if (!/Unexpected server response/.test(e.message)) reject(e);
    });
  });
}

describe('static files', () => {
  it('serves the page at / (the built page, or the note that it is not built), with no-framing headers', async () => {
    const res = await rawGet(port, '/');
    expect(res.status).toBe(200);
    expect(res.headers).toMatch(/content-type: text\/html/i);
    expect(res.headers).toMatch(/x-frame-options: DENY/i);
    expect(res.headers).toMatch(/frame-ancestors 'none'/i);
    expect(res.body).toMatch(/<html/i);
  });

  it.each([
    '/../package.json',
    '/../../package.json',
    '/%2e%2e/package.json',
    '/%2E%2E/%2E%2E/package.json',
    '/.%2e/package.json',
    '/..%2fpackage.json',
    '/..%2Fpackage.json',
    '/..%5cpackage.json',
    '/%252e%252e/package.json',
    '/..;/package.json',
    '/./index.html',
    '//etc/passwd',
    '/index.html%00',
    '/index.html%00.js',
    '/%c0%ae%c0%ae/package.json',
    '/../server/worker.js',
    '/server/worker.js',
    '/visualizer/server/worker.js',
    '/package.json',
    '/nonexistent.js',
    '/..\\package.json',
  ])('%s → 404', async (path) => {
    const res = await rawGet(port, path);
    expect(res.status).toBe(404);
    expect(res.body).not.toMatch(/"name": "trainchart"|root:/);
  });

  it('refuses anything but GET and HEAD', async () => {
    const res = await fetch(url, { method: 'POST', body: '{}' });
    expect(res.status).toBe(405);
  });
});

describe('Host (DNS rebinding)', () => {
  it.each([
    ['evil.example:PORT', 403],
    ['127.0.0.1.evil.example:PORT', 403],
    ['127.0.0.1:1', 403],
    ['127.0.0.1', 403],
    ['', 403],
    ['127.0.0.1:PORT', 200],
    ['localhost:PORT', 200],
    ['LOCALHOST:PORT', 200],
  ] as const)('Host "%s" → %i', async (host, status) => {
    const res = await rawGet(port, '/', { Host: host.replace('PORT', String(port)) });
    expect(res.status).toBe(status);
  });

  it('a request without Host is refused', async () => {
    const res = await rawGet(port, '/', {});
    // HTTP/1.1 requires Host: Node's parser or the Host check refuses it.
    expect([400, 403]).toContain(res.status);
  });

  it('a WebSocket upgrade with a foreign Host is refused', async () => {
    expect(await upgradeStatus({ headers: { Host: `evil.example:${port}` } })).toBe(403);
  });
});

describe('Origin of WebSocket upgrades', () => {
  it.each(['http://evil.example', `http://127.0.0.1:${1}`, 'null', `https://127.0.0.1`, 'http://localhost.evil.example'])(
    'Origin %s → 403',
    async (origin) => {
      expect(await upgradeStatus({ origin })).toBe(403);
    },
  );

  it("the page's own origin is accepted", async () => {
    expect(await upgradeStatus({ origin: `http://127.0.0.1:${port}` })).toBe('open');
    expect(await upgradeStatus({ origin: `http://localhost:${port}`, headers: { Host: `localhost:${port}` } })).toBe('open');
  });

  it('no Origin (a script) is accepted and gets hello', async () => {
    const client = await VizClient.open(wsUrl(url));
    const hello = await client.next((m) => m.type === 'hello');
    expect(hello.status).toBe('idle');
    client.close();
  });

  it('only /ws upgrades', async () => {
    expect(await upgradeStatus({}, '/other')).toBe(404);
  });
});

describe('messages', () => {
  it.each([
    ['not json', 'not JSON'],
    ['[]', 'JSON object'],
    ['"pause"', 'JSON object'],
    ['{}', 'unknown message type'],
    ['{"type":"nope"}', 'unknown message type'],
    ['{"type":"__proto__"}', 'unknown message type'],
    ['{"type":"constructor"}', 'unknown message type'],
    ['{"type":"pause","extra":1}', 'unexpected field "extra"'],
    ['{"type":"break"}', 'stage must be one of'],
    ['{"type":"break","stage":"nope"}', 'stage must be one of'],
    ['{"type":"break","stage":"lossBegin","path":"epoch.train.batchEnd"}', 'not in stage lossBegin'],
    ['{"type":"break","stage":"lossBegin","path":"epoch.train"}', 'not in stage'],
    ['{"type":"break","stage":"lossBegin","when":"iteration == 3"}', 'when must be an object'],
    ['{"type":"break","stage":"lossBegin","when":{"field":"constructor","op":"==","value":1}}', 'when.field must be one of'],
    ['{"type":"break","stage":"lossBegin","when":{"field":"__proto__","op":"==","value":1}}', 'when.field must be one of'],
    ['{"type":"break","stage":"lossBegin","when":{"field":"iteration","op":"===","value":1}}', 'when.op must be one of'],
    ['{"type":"break","stage":"lossBegin","when":{"field":"iteration","op":"==","value":"1; process.exit()"}}', 'finite number'],
    ['{"type":"break","stage":"lossBegin","when":{"field":"iteration","op":"==","value":1,"code":"x"}}', 'unknown key "code"'],
    ['{"type":"break","stage":"lossBegin","when":{"field":"train","op":">","value":true}}', 'compare it with == or !='],
    ['{"type":"clear","stage":"nope"}', 'clear: stage must be one of'],
    ['{"type":"clear","path":"epoch.train.lossBegin"}', 'a path needs its stage'],
    ['{"type":"pause"}', 'no run in progress'],
    ['{"type":"stop"}', 'no run in progress'],
  ])('%s → error (%s), and the server keeps working', async (text, why) => {
    const client = await VizClient.open(wsUrl(url));
    await client.next((m) => m.type === 'hello');
    client.send(text);
    const error = await client.next((m) => m.type === 'error');
    expect(error.message).toContain(why);
    // Still serving this client: a valid message is acted on…
    client.send({ type: 'break', stage: 'stepEnd' });
    const ack = await client.next((m) => m.type === 'breakpoints');
    expect(ack.items).toEqual([{ stage: 'stepEnd' }]);
    client.send({ type: 'clear' });
    await client.next((m) => m.type === 'breakpoints' && (m.items as unknown[]).length === 0);
    client.close();
  });

  it('a binary frame is an error, not a command', async () => {
    const client = await VizClient.open(wsUrl(url));
    await client.next((m) => m.type === 'hello');
    client.ws.send(Buffer.from('{"type":"stop"}'), { binary: true });
    expect((await client.next((m) => m.type === 'error')).message).toContain('binary');
    client.close();
  });

  it('an oversized message closes that connection (1009) and no other', async () => {
    const other = await VizClient.open(wsUrl(url));
    await other.next((m) => m.type === 'hello');
    const big = await VizClient.open(wsUrl(url));
    await big.next((m) => m.type === 'hello');
    big.send(JSON.stringify({ type: 'break', stage: 'lossBegin', pad: 'x'.repeat(64 * 1024) }));
    await new Promise<void>((resolve) => big.ws.once('close', () => resolve()));
    expect(big.closeCode).toBe(1009);
    other.send({ type: 'break', stage: 'batchEnd', when: { field: 'smoothLoss', op: '>', value: 2 } });
    const ack = await other.next((m) => m.type === 'breakpoints');
    expect(ack.items).toEqual([{ stage: 'batchEnd', when: { field: 'smoothLoss', op: '>', value: 2 } }]);
    other.send({ type: 'clear' });
    await other.next((m: Msg) => m.type === 'breakpoints' && (m.items as unknown[]).length === 0);
    other.close();
  });
});

describe('binding', () => {
  let blocker: Server;
  let taken: number;
  beforeAll(async () => {
    blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    taken = (blocker.address() as { port: number }).port;
  });
  afterAll(() => new Promise<void>((resolve) => blocker.close(() => resolve())));

  it('a port in use is a PortInUseError (a ConfigError) that names the port and what to do', async () => {
    const second = new Visualizer({ port: taken });
    const err = await second.start().then(
      () => null,
      (e: unknown) => e,
    );
    await second.close();
    expect(err).toBeInstanceOf(PortInUseError);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as PortInUseError).code).toBe('CONFIG');
    expect((err as PortInUseError).port).toBe(taken);
    expect((err as Error).message).toContain(`port ${taken} on 127.0.0.1 is already in use`);
    expect((err as Error).message).toContain('--port 0');
  });

  it('binds 127.0.0.1 by default', () => {
    expect(url).toBe(`http://127.0.0.1:${port}/`);
  });

  it('bad options are ConfigErrors', () => {
    expect(() => new Visualizer({ port: 70000 })).toThrow(ConfigError);
    expect(() => new Visualizer({ port: -1 })).toThrow(/port must be an integer/);
    expect(() => new Visualizer({ stateIntervalMs: 1000 })).toThrow(/stateIntervalMs must be 20–250/);
    expect(() => new Visualizer({ prot: 1 } as never)).toThrow(/unknown option "prot"/);
    expect(() => new Visualizer({ break: 'lossBegin:iteration=3' })).toThrow(/--break "lossBegin:iteration=3"/);
  });
});
