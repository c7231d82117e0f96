/**
 * The visualizer's server, in its own worker thread: HTTP for the page, WebSocket `/ws` for the
 * protocol, the run's history for late clients. It never waits for the training thread, so the
 * page stays live while training runs flat out or is paused (blocked in Atomics.wait).
 *
 * Clients' commands go to the training thread on the control port (read synchronously there,
 * see sharedFlags.ts); what the run does comes back as messages on the worker's port.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { WebSocket } from 'ws';
import { addBreakpoint, clearBreakpoints, statePaths } from './breakpoints.js';
import { createVizServer } from './httpServer.js';
import type { Breakpoint, BatchItem, DoneMessage, EpochMessage, EventItem, HelloMessage, LrFindMessage, PausedMessage, RunStatus, ServerMessage, StateMessage } from './protocol.js';
import { PROTOCOL_VERSION } from './protocol.js';
import { hostForUrl } from './security.js';
import { CLIENTS, DETACHED, STOP, signalControl, type ControlCommand, type FromWorker, type ToWorker, type WorkerInit } from './sharedFlags.js';
import { catchSigint } from './sigint.js';
import { PageFiles } from './staticFiles.js';
import { parseClientMessage } from './wsProtocol.js';
import type { LoopPlan } from '../../src/dryRun.js';

const init = workerData as WorkerInit;
const { flags, control, machine } = init;
const paths = statePaths(machine);
const toMain = (m: FromWorker) => parentPort!.postMessage(m);

/** The run's batch records kept for late clients: when full, every other one is dropped (the charts keep their shape). */
const MAX_BATCHES = 20_000;
const MAX_EVENTS = 200;
/** A client this far behind misses state, batch and event messages until it catches up (never hello, paused, done). */
const SLOW_CLIENT_BYTES = 4 * 1024 * 1024;
/**
 * The protocol promises at least 4 state messages a second while running. The training thread
 * sends one every stateIntervalMs, but only between stages: inside one long stage (a big batch's
 * forward pass) it cannot, so the latest state is repeated after this long without one.
 */
const STATE_HEARTBEAT_MS = 240;

let status: RunStatus = init.status;
let breakpoints: Breakpoint[] = init.breakpoints;
let plan: LoopPlan = init.idlePlan;
let shape = { nEpochs: 0, nTrainBatches: 0, nValidBatches: 0 };
let batches: BatchItem[] = [];
let batchStride = 1;
let batchSeen = 0;
let epochs: EpochMessage[] = [];
let events: EventItem[] = [];
let lrfind: LrFindMessage | null = null;
let lastState: StateMessage | null = null;
let lastPaused: PausedMessage | null = null;
let lastDone: DoneMessage | null = null;
let lastStateSentAt = 0;

const clients = new Set<WebSocket>();
const runActive = () => status === 'running' || status === 'paused';

function send(ws: WebSocket, message: ServerMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
}

/** `droppable` messages skip clients that cannot keep up; the others always go out. */
function broadcast(message: ServerMessage, droppable = false): void {
  if (clients.size === 0) return;
  const text = JSON.stringify(message);
  for (const ws of clients) {
    if (ws.readyState !== ws.OPEN) continue;
    if (droppable && ws.bufferedAmount > SLOW_CLIENT_BYTES) continue;
    ws.send(text);
  }
}

function hello(): HelloMessage {
  return {
    type: 'hello',
    protocol: PROTOCOL_VERSION,
    machine,
    callbacks: plan,
    status,
    ...shape,
    breakpoints,
    history: { batches, epochs, events, lrfind },
    state: lastState,
  };
}

function command(c: ControlCommand): void {
  control.postMessage(c);
  signalControl(flags);
}

function setBreakpoints(next: Breakpoint[]): void {
  breakpoints = next;
  command({ cmd: 'breakpoints', items: breakpoints });
  broadcast({ type: 'breakpoints', items: breakpoints });
}

function requestStop(): void {
  Atomics.store(flags, STOP, 1);
  command({ cmd: 'stop' });
}

function onClientText(ws: WebSocket, text: string): void {
  const parsed = parseClientMessage(text, paths);
  if (!parsed.ok) return send(ws, { type: 'error', message: parsed.error });
  const m = parsed.message;
  switch (m.type) {
    case 'break':
      return setBreakpoints(addBreakpoint(breakpoints, { stage: m.stage, ...(m.path ? { path: m.path } : {}), ...(m.when ? { when: m.when } : {}) }));
    case 'clear':
      return setBreakpoints(clearBreakpoints(breakpoints, m.stage, m.path));
    default:
      if (!runActive()) {
        return send(ws, { type: 'error', message: `${m.type}: no run in progress (status ${status}); a breakpoint (break) applies to the next run` });
      }
      if (m.type === 'stop') return requestStop();
      return command({ cmd: m.type });
  }
}

function onConnection(ws: WebSocket): void {
  clients.add(ws);
  Atomics.store(flags, CLIENTS, clients.size);
  send(ws, hello());
  if (status === 'paused' && lastPaused) send(ws, lastPaused);
  if (lastDone && !runActive()) send(ws, lastDone);
  ws.on('message', (data, isBinary) => {
    if (isBinary) return send(ws, { type: 'error', message: 'binary frames are not part of the protocol: send JSON text' });
    onClientText(ws, data.toString());
  });
  const gone = () => {
    clients.delete(ws);
    Atomics.store(flags, CLIENTS, clients.size);
  };
  ws.on('close', gone);
  ws.on('error', gone);
}

function recordBatches(items: BatchItem[]): void {
  for (const item of items) {
    if (batchSeen++ % batchStride !== 0) continue;
    batches.push(item);
    if (batches.length >= MAX_BATCHES) {
      batches = batches.filter((_, i) => i % 2 === 0);
      batchStride *= 2;
    }
  }
}

function onMain(m: ToWorker): void {
  switch (m.kind) {
    case 'run':
      plan = m.callbacks;
      shape = { nEpochs: m.nEpochs, nTrainBatches: m.nTrainBatches, nValidBatches: m.nValidBatches };
      batches = [];
      batchStride = 1;
      batchSeen = 0;
      epochs = [];
      events = [];
      lastState = null;
      lastPaused = null;
      lastDone = null;
      status = 'running';
      // A new hello tells every open page that a new run begins.
      for (const ws of clients) send(ws, hello());
      return;
    case 'tick':
      if (m.batches.length) {
        recordBatches(m.batches);
        broadcast({ type: 'batches', items: m.batches }, true);
      }
      for (const e of m.epochs) {
        epochs.push(e);
        broadcast(e);
      }
      if (m.events.length) {
        events = [...events, ...m.events].slice(-MAX_EVENTS);
        broadcast({ type: 'events', items: m.events, dropped: m.dropped }, true);
      }
      if (m.state) {
        lastState = m.state;
        lastStateSentAt = performance.now();
        broadcast(m.state, true);
      }
      return;
    case 'paused':
      status = 'paused';
      lastPaused = m.message;
      broadcast(m.message);
      return;
    case 'resumed':
      status = 'running';
      lastPaused = null;
      broadcast({ type: 'resumed', reason: m.reason });
      return;
    case 'done':
      status = m.message.status;
      lastDone = m.message;
      lastPaused = null;
      broadcast(m.message);
      return;
    case 'lrfind':
      lrfind = m.message;
      broadcast(m.message);
      return;
    case 'close':
      return close();
  }
}

const heartbeat = setInterval(() => {
  if (status !== 'running' || !lastState || performance.now() - lastStateSentAt < STATE_HEARTBEAT_MS) return;
  lastStateSentAt = performance.now();
  broadcast(lastState, true);
}, 60);
heartbeat.unref();

let stopSigint: (() => void) | null = null;

function close(): void {
  clearInterval(heartbeat);
  stopSigint?.();
  Atomics.store(flags, DETACHED, 1);
  signalControl(flags);
  for (const ws of clients) ws.close(1001, 'server closing');
  wss.close();
  server.close();
  // Connections that linger (a client ignoring the close) must not keep the thread alive.
  setTimeout(() => {
    server.closeAllConnections();
    for (const ws of clients) ws.terminate();
    parentPort!.close();
  }, 200).unref();
  parentPort!.off('message', onMain);
  parentPort!.unref();
}

// A crash here must never leave the training thread waiting forever in a pause.
process.on('uncaughtException', (e) => {
  Atomics.store(flags, DETACHED, 1);
  signalControl(flags);
  throw e;
});

const bound = { host: init.host, port: init.port, allowedHosts: init.allowedHosts };
const files = new PageFiles(init.pageDir);
const { server, wss } = createVizServer(bound, files, onConnection);

server.once('error', (e: NodeJS.ErrnoException) => {
  toMain({ kind: 'listenError', code: e.code ?? 'UNKNOWN', message: e.message });
  Atomics.store(flags, DETACHED, 1);
  parentPort!.close();
});
server.listen(init.port, init.host, () => {
  const address = server.address();
  // Port 0 picked a free port: the Host check must use the real one.
  bound.port = typeof address === 'object' && address ? address.port : init.port;
  if (init.catchSigint) {
    stopSigint = catchSigint(() => {
      const duringRun = runActive();
      if (duringRun) requestStop();
      toMain({ kind: 'sigint', duringRun });
    });
  }
  toMain({ kind: 'listening', host: hostForUrl(init.host), port: bound.port, sigint: stopSigint !== null });
  parentPort!.on('message', onMain);
});
