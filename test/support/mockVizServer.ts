/**
 * A stand-in for the visualizer server, for testing the page on its own: serves the built
 * page (dist/visualizer/page) and speaks the agreed protocol on /ws (hello, state, batches,
 * epoch, events, paused, done, lrfind). The run it reports is the real loop machine walked
 * with NEXT on a timer (no tensors): the states, their order and the guards are the machine's
 * own, so the page is tested against real paths. Losses are synthetic and seeded.
 *
 * Pause semantics follow the issue: a breakpoint halts *in* a stage (the state was entered);
 * `step` runs to the next stage (internal states such as `gradients` pass through); `stop`
 * sets stopTraining through the machine, which then runs trainEnd and ends `stopped`.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { assign, createActor, type AnyActorRef } from 'xstate';
import { WebSocketServer, type WebSocket } from 'ws';
import { BUILTIN_CALLBACKS } from '../../callbacks/registry.js';
import { describeMachine } from '../../machines/describe.js';
import { trainLoopMachine, type LoopContext } from '../../machines/trainLoop.js';
import { loopPlan } from '../../src/dryRun.js';

export interface MockBreakpoint {
  stage: string;
  path?: string;
  when?: { field: string; op: string; value: number };
}

export interface MockVizOptions {
  nEpochs?: number;
  nTrainBatches?: number;
  nValidBatches?: number;
  /** Milliseconds between two machine transitions. */
  tickMs?: number;
  breakpoints?: MockBreakpoint[];
  /** Send an `lrfind` message before the run starts. */
  lrfind?: boolean;
}

export interface MockVizServer {
  url: string;
  received: Record<string, unknown>[];
  close(): Promise<void>;
}

const PAGE_DIR = join(process.cwd(), 'dist', 'visualizer', 'page');
const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8' };

function pathOfValue(value: unknown): string {
  if (typeof value === 'string') return value;
  const [k, v] = Object.entries(value as Record<string, unknown>)[0]!;
  return `${k}.${pathOfValue(v)}`;
}

function holds(ctx: Record<string, unknown>, when: MockBreakpoint['when']): boolean {
  if (!when) return true;
  const x = ctx[when.field];
  if (typeof x !== 'number') return false;
  const v = when.value;
  switch (when.op) {
    case '<': return x < v;
    case '<=': return x <= v;
    case '>': return x > v;
    case '>=': return x >= v;
    case '==': return x === v;
    case '!=': return x !== v;
    default: return false;
  }
}

export async function startMockVizServer(options: MockVizOptions = {}): Promise<MockVizServer> {
  const nEpochs = options.nEpochs ?? 2;
  const nTrainBatches = options.nTrainBatches ?? 16;
  const nValidBatches = options.nValidBatches ?? 4;
  const tickMs = options.tickMs ?? 3;
  const description = describeMachine(trainLoopMachine);
  const plan = loopPlan([BUILTIN_CALLBACKS.recorder!(), BUILTIN_CALLBACKS.progress!()]);
  const stageOf = new Map(description.states.map((s) => [s.path, s.stage]));
  const received: Record<string, unknown>[] = [];
  let breakpoints: MockBreakpoint[] = [...(options.breakpoints ?? [])];

  // Seeded synthetic numbers: an exponentially falling loss with noise, a cosine lr, momentum the other way.
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  let smoothAvg = 0;
  let smoothLoss: number | null = null;
  let lastLoss: number | null = null;
  const totalIterations = nEpochs * nTrainBatches;
  const lrAt = (it: number) => 1e-3 + (3e-3 - 1e-3) * 0.5 * (1 - Math.cos((2 * Math.PI * it) / totalIterations));
  const momAt = (it: number) => 0.95 - 0.1 * 0.5 * (1 - Math.cos((2 * Math.PI * it) / totalIterations));

  let stopRequested = false;
  const machine = trainLoopMachine.provide({
    actions: {
      // The hooks' only effect here: a stop from the page, as a callback's stopTraining would be.
      runHooks: assign(({ context }: { context: LoopContext }) =>
        stopRequested ? { controls: { ...context.controls, stopTraining: true } } : {},
      ) as never,
    },
  });
  const actor: AnyActorRef = createActor(machine, { input: { nEpochs, nTrainBatches, nValidBatches, validate: nValidBatches > 0 } });
  actor.start();

  const clients = new Set<WebSocket>();
  const send = (ws: WebSocket, m: unknown) => ws.readyState === ws.OPEN && ws.send(JSON.stringify(m));
  const broadcast = (m: unknown) => clients.forEach((ws) => send(ws, m));

  let status: 'running' | 'paused' | 'completed' | 'stopped' | 'failed' = 'running';
  let pausedMsg: Record<string, unknown> | null = null;
  let stepping = false;
  let pauseRequested = false;
  const history = { batches: [] as Record<string, unknown>[], epochs: [] as Record<string, unknown>[] };
  let pendingBatches: Record<string, unknown>[] = [];
  let pendingEvents: Record<string, unknown>[] = [];

  const ctxNow = () => {
    const c = actor.getSnapshot().context as LoopContext;
    return { c, path: pathOfValue(actor.getSnapshot().value) };
  };
  const position = () => {
    const { c, path } = ctxNow();
    return { path, stage: stageOf.get(path) ?? null, epoch: c.epoch, iteration: c.iteration, batchIndex: c.batchIndex, train: c.train };
  };
  const hookCtx = () => {
    const { c } = ctxNow();
    return {
      epoch: c.epoch,
      nEpochs: c.nEpochs,
      iteration: c.iteration,
      batchIndex: c.batchIndex,
      nBatches: c.train ? c.nTrainBatches : c.nValidBatches,
      train: c.train,
      smoothLoss,
      lastLossValue: lastLoss,
      lastMetrics: {},
      controls: c.controls,
      lr: lrAt(c.iteration),
      momentum: momAt(c.iteration),
      wd: 0,
    };
  };
  const pause = (reason: string) => {
    status = 'paused';
    stepping = false;
    pauseRequested = false;
    pausedMsg = { type: 'paused', ...position(), reason, ctx: hookCtx() };
    broadcast(pausedMsg);
  };
  const stateMsg = () => ({ type: 'state', ...position(), smoothLoss, lr: lrAt(ctxNow().c.iteration), momentum: momAt(ctxNow().c.iteration), lastLoss, status });

  const tick = () => {
    if (status !== 'running') return;
    actor.send({ type: 'NEXT' });
    const snap = actor.getSnapshot();
    const pos = position();
    if (snap.status === 'done') {
      status = pos.path as typeof status;
      flush();
      broadcast({ type: 'done', status });
      clearInterval(timer);
      return;
    }
    if (pos.stage) pendingEvents.push({ kind: 'stage', stage: pos.stage, path: pos.path, detail: null, iteration: pos.iteration, epoch: pos.epoch });
    if (pos.path === 'epoch.train.batchEnd') {
      const it = pos.iteration;
      const loss = 2.3 * Math.exp(-it / 12) + 0.15 + 0.1 * (rand() - 0.5);
      smoothAvg = 0.98 * smoothAvg + 0.02 * loss;
      smoothLoss = smoothAvg / (1 - 0.98 ** (it + 1));
      lastLoss = loss;
      const item = { iteration: it, epoch: pos.epoch, loss, smoothLoss, lr: lrAt(it), momentum: momAt(it) };
      history.batches.push(item);
      pendingBatches.push(item);
    }
    if (pos.path === 'epoch.epochEnd') {
      const e = { type: 'epoch', epoch: pos.epoch, trainLoss: smoothLoss, validLoss: (smoothLoss ?? 1) * 1.05, metrics: { accuracy: 0.5 + 0.2 * pos.epoch } };
      history.epochs.push(e);
      broadcast(e);
    }
    // A stopped run goes to its end: no more pauses.
    if (!pos.stage || stopRequested) return;
    const hit = breakpoints.find((b) => (b.path ? b.path === pos.path : b.stage === pos.stage) && holds(hookCtx(), b.when));
    if (hit) pause('breakpoint');
    else if (stepping) pause('step');
    else if (pauseRequested) pause('pause');
  };
  const flush = () => {
    if (pendingBatches.length) broadcast({ type: 'batches', items: pendingBatches });
    if (pendingEvents.length) broadcast({ type: 'events', items: pendingEvents.slice(-100) });
    pendingBatches = [];
    pendingEvents = [];
  };
  const timer = setInterval(tick, tickMs);
  const streamer = setInterval(() => {
    flush();
    if (status === 'running' || status === 'paused') broadcast(stateMsg());
  }, 100);

  const onMessage = (ws: WebSocket, raw: string) => {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(raw);
    } catch {
      send(ws, { type: 'error', message: 'not JSON' });
      return;
    }
    received.push(m);
    switch (m.type) {
      case 'pause':
        if (status === 'running') pauseRequested = true;
        break;
      case 'resume':
        if (status === 'paused') {
          status = 'running';
          broadcast({ type: 'resumed', reason: 'resume' });
        }
        break;
      case 'step':
        if (status === 'paused') {
          stepping = true;
          status = 'running';
          broadcast({ type: 'resumed', reason: 'step' });
        }
        break;
      case 'stop':
        stopRequested = true;
        if (status === 'paused') {
          status = 'running';
          broadcast({ type: 'resumed', reason: 'stop' });
        }
        break;
      case 'break':
        breakpoints.push({ stage: String(m.stage), ...(m.path ? { path: String(m.path) } : {}), ...(m.when ? { when: m.when as MockBreakpoint['when'] } : {}) });
        break;
      case 'clear':
        breakpoints = m.stage === undefined ? [] : breakpoints.filter((b) => !(b.stage === m.stage && (m.path === undefined || b.path === m.path)));
        break;
      default:
        send(ws, { type: 'error', message: `unexpected message type ${String(m.type)}` });
    }
  };

  // At the start: paused at once if a breakpoint is on the first stage (as `--break trainBegin`).
  tick();

  const server = createServer((req, res) => {
    const name = (req.url ?? '/').split('?')[0] === '/' ? 'index.html' : (req.url ?? '').split('?')[0]!.slice(1);
    const files = readdirSync(PAGE_DIR);
    if (!files.includes(name)) {
      res.writeHead(404).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream' });
    res.end(readFileSync(join(PAGE_DIR, name)));
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: IncomingMessage, socket, head) => {
    if (req.url !== '/ws') {
      socket.destroy();
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      clients.add(ws);
      ws.on('close', () => clients.delete(ws));
      ws.on('message', (data) => onMessage(ws, String(data)));
      send(ws, {
        type: 'hello',
        machine: description,
        callbacks: plan,
        status,
        nEpochs,
        nTrainBatches,
        nValidBatches,
        breakpoints,
        history,
      });
      if (options.lrfind) {
        const lrs = Array.from({ length: 60 }, (_, i) => 1e-6 * 10 ** (i / 10));
        const losses = lrs.map((lr, i) => 2.3 - 1.5 / (1 + Math.exp(-(i - 25) / 4)) + (i > 45 ? (i - 45) * 0.3 : 0));
        send(ws, { type: 'lrfind', lrs, losses, suggestions: { valley: lrs[28], steep: lrs[25], minimum: lrs[40], slide: lrs[33] } });
      }
      if (status === 'paused' && pausedMsg) send(ws, pausedMsg);
      if (status === 'completed' || status === 'stopped' || status === 'failed') send(ws, { type: 'done', status });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    received,
    close: async () => {
      clearInterval(timer);
      clearInterval(streamer);
      actor.stop();
      for (const ws of clients) ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
