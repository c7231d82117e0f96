/**
 * `trainchart train --viz …`, `trainchart viz` and `--inspect-ws`, run as a user runs them
 * (the built CLI in a child process), driven by WebSocket clients as the page would.
 */
import { createServer, type Server } from 'node:net';
import { describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { Child, VizClient, wsUrl } from './support/vizClient.js';

const CLI = 'dist/src/cli/main.js';
const SMALL = ['--limit-train', '512', '--limit-valid', '256', '--epochs', '1', '--backend', 'cpu'];

const summaryOf = (child: Child) => JSON.parse(child.lines.filter((l) => l.startsWith('{')).at(-1)!);

describe('train --viz', () => {
  it('prints the URL line, trains exactly as without --viz, and exits after done', async () => {
    const plain = new Child([CLI, 'train', ...SMALL, '--json']);
    const child = new Child([CLI, 'train', '--viz', '--port', '0', ...SMALL, '--json']);
    const url = await child.url();
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const client = await VizClient.open(wsUrl(url));
    const done = await client.next((m) => m.type === 'done', { timeoutMs: 60_000 });
    expect(done).toMatchObject({ status: 'completed', epochs: 1, iterations: 8 });
    expect(await child.exited).toEqual({ code: 0, signal: null });
    expect(await plain.exited).toEqual({ code: 0, signal: null });
    const withViz = summaryOf(child);
    expect(withViz).toMatchObject({ status: 'completed', iterations: 8, visualizer: url });
    // Watching changes nothing in the training: same weights, bit for bit.
    expect(withViz.weightsSha256).toBe(summaryOf(plain).weightsSha256);
    client.close();
  });

  it('--break lossBegin pauses until a client clears and resumes', async () => {
    const child = new Child([CLI, 'train', '--viz', '--port', '0', '--break', 'lossBegin', ...SMALL, '--json']);
    const client = await VizClient.open(wsUrl(await child.url()));
    const hello = await client.next((m) => m.type === 'hello');
    expect(hello.breakpoints).toEqual([{ stage: 'lossBegin' }]);
    const paused = await client.next((m) => m.type === 'paused', { timeoutMs: 60_000 });
    expect(paused).toMatchObject({ stage: 'lossBegin', path: 'epoch.train.lossBegin', train: true, iteration: 0, reason: 'breakpoint' });
    // MNIST batches of 64 images 28×28×1, already through the mlp: an output of 10 classes.
    expect((paused.ctx as { lastOutput: unknown }).lastOutput).toEqual({ shape: [64, 10], dtype: 'float32' });
    client.send({ type: 'clear' });
    client.send({ type: 'resume' });
    expect(await client.next((m) => m.type === 'done', { timeoutMs: 60_000 })).toMatchObject({ status: 'completed' });
    expect((await child.exited).code).toBe(0);
    expect(summaryOf(child).status).toBe('completed');
    client.close();
  });

  it('Ctrl-C while paused stops the run through stopTraining (status stopped, exit 130)', async () => {
    const child = new Child([CLI, 'train', '--viz', '--port', '0', '--break', 'epoch.train.backwardBegin', ...SMALL, '--json']);
    const client = await VizClient.open(wsUrl(await child.url()));
    await client.next((m) => m.type === 'paused', { timeoutMs: 60_000 });
    child.kill('SIGINT');
    expect(await client.next((m) => m.type === 'resumed')).toMatchObject({ reason: 'stop' });
    const done = await client.next((m) => m.type === 'done');
    // The batch under way ends and the epoch's validation runs: stopTraining's contract.
    expect(done).toMatchObject({ status: 'stopped', iterations: 1, epochs: 1 });
    expect(await child.exited).toEqual({ code: 130, signal: null });
    expect(summaryOf(child)).toMatchObject({ status: 'stopped', iterations: 1 });
    client.close();
  });

  it('a port in use is a clear error, exit code 2', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const child = new Child([CLI, 'train', '--viz', '--port', String(port), ...SMALL]);
      expect((await child.exited).code).toBe(2);
      expect(child.lines.join('\n')).toContain(`trainchart: visualizer: port ${port} on 127.0.0.1 is already in use`);
    } finally {
      blocker.close();
    }
  });

  it('visualizer options without --viz, and bad values, are usage errors', async () => {
    for (const [args, why] of [
      [['--port', '0'], '--port is a visualizer option: add --viz'],
      [['--viz', '--port', 'x'], '--port must be an integer'],
      [['--viz', '--break', 'lossBegin:iteration=3'], '--break "lossBegin:iteration=3"'],
      [['--inspect-ws', 'http://x'], 'must be a ws:// or wss:// URL'],
    ] as const) {
      const child = new Child([CLI, 'train', ...args, ...SMALL]);
      expect((await child.exited).code).toBe(2);
      expect(child.lines.join('\n')).toContain(why);
    }
  });
});

describe('trainchart viz', () => {
  it('runs the demo, serves the finished run until Ctrl-C, then exits 0', async () => {
    const child = new Child([CLI, 'viz', '--port', '0', '--limit-train', '256', '--epochs', '1', '--break', 'none', '--backend', 'cpu']);
    const url = await child.url();
    await child.line(/serving the finished run/, 60_000);
    const client = await VizClient.open(wsUrl(url));
    const hello = await client.next(() => true);
    expect(hello).toMatchObject({ type: 'hello', status: 'completed', nEpochs: 1, nTrainBatches: 4 });
    expect(await client.next(() => true)).toMatchObject({ type: 'done', status: 'completed', iterations: 4 });
    child.kill('SIGINT');
    expect(await child.exited).toEqual({ code: 0, signal: null });
  });
});

describe('--inspect-ws', () => {
  it("streams the loop's inspection events to a Stately WebSocket inspector", async () => {
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    await new Promise((resolve) => wss.once('listening', resolve));
    const received: Array<Record<string, any>> = [];
    wss.on('connection', (ws) => ws.on('message', (d) => received.push(JSON.parse(d.toString()))));
    try {
      const port = (wss.address() as { port: number }).port;
      const child = new Child([CLI, 'train', '--inspect-ws', `ws://127.0.0.1:${port}`, ...SMALL, '--json']);
      expect((await child.exited).code).toBe(0);
      await new Promise((r) => setTimeout(r, 100));
      const actor = received.find((e) => e.type === '@xstate.actor');
      expect(actor).toMatchObject({ name: 'trainLoop' });
      // The machine's definition, as Stately's inspector draws it: the loop's states are in it.
      expect(JSON.parse(actor!.definition).states.epoch.states.train.states).toHaveProperty('backwardBegin');
      const snapshots = received.filter((e) => e.type === '@xstate.snapshot');
      expect(snapshots.length).toBeGreaterThan(1);
      expect(snapshots.every((e) => typeof e._version === 'string' && typeof e.sessionId === 'string')).toBe(true);
      // It ends where the run ended.
      expect(snapshots.at(-1)!.snapshot).toMatchObject({ value: 'completed', status: 'done' });
    } finally {
      wss.close();
    }
  });
});
