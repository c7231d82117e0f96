/**
 * The visualizer page: wires the WebSocket feed to the statechart, counters, charts, log and
 * debugger. Messages only update state; one render per frame — at most every
 * MIN_FRAME_MS, through requestAnimationFrame — applies it to the DOM, so a fast run costs
 * the page a few small updates a second, however many messages arrive.
 */
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { Charts } from './charts.js';
import { Debugger } from './debugger.js';
import { EventLog } from './eventLog.js';
import { StatePanel } from './panel.js';
import { normalizePath, type PausedMessage, type Position, type RunStatus, type ServerMessage, type StateMessage } from './protocol.js';
import { Statechart } from './statechart.js';
import { connect, type ConnectionState } from './ws.js';

/** 5 renders a second at most: the issue asks for ≥ 4 while running, and no more than the eye needs. */
const MIN_FRAME_MS = 200;
const TERMINAL: ReadonlySet<string> = new Set(['completed', 'stopped', 'failed']);

const $ = (id: string) => document.getElementById(id) as HTMLElement;

/** Counters for tests and the benchmark: messages received and renders done. */
const stats = { messages: 0, renders: 0, connected: false };
(window as unknown as { __trainchart: typeof stats }).__trainchart = stats;

let status: RunStatus | 'connecting' | 'disconnected' = 'connecting';
let position: (Position & Partial<Pick<StateMessage, 'smoothLoss' | 'lr'>>) | null = null;
let paused: PausedMessage | null = null;
let finalPath: string | null = null;
let totals = { nEpochs: 0, nTrainBatches: 0, nValidBatches: 0 };
let selected: string | null = null;
/** Batches of the pass under way, when the server says (state.nBatches). */
let nBatches: number | null = null;

const statechart = new Statechart($('statechart'), {
  onClick(path, stage) {
    selected = path;
    statechart.setSelected(path);
    panel.show(path);
    if (stage) debug.toggle(path, stage);
  },
  onHover(path) {
    panel.show(path ?? selected);
  },
});
const panel = new StatePanel($('state-panel'));
const charts = new Charts(document);
const log = new EventLog($('log'));
const connection = connect(onMessage, onConnection);
const debug = new Debugger(
  (m) => {
    const sent = connection.send(m);
    if (!sent) log.note('error', `not connected: ${m.type} not sent`);
    schedule();
    return sent;
  },
  (list) => statechart.setBreakpoints(list),
);
panel.show(null);
$('zoom').addEventListener('change', (e) => $('statechart').classList.toggle('natural', (e.target as HTMLInputElement).checked));

function onConnection(state: ConnectionState) {
  stats.connected = state === 'open';
  $('conn').textContent = state === 'open' ? 'connected' : state === 'connecting' ? 'connecting…' : 'disconnected';
  $('conn').dataset.state = state;
  if (state === 'closed' && !TERMINAL.has(status)) status = 'disconnected';
  if (state === 'closed') log.note('conn', 'connection closed');
  schedule();
}

function onMessage(m: ServerMessage) {
  stats.messages++;
  switch (m.type) {
    case 'hello': {
      status = m.status;
      totals = { nEpochs: m.nEpochs ?? 0, nTrainBatches: m.nTrainBatches ?? 0, nValidBatches: m.nValidBatches ?? 0 };
      paused = null;
      $('machine-id').textContent = m.machine.id;
      charts.reset();
      charts.addBatches(m.history?.batches ?? []);
      for (const e of m.history?.epochs ?? []) charts.addEpoch(e);
      const lrfind = m.history?.lrfind ?? m.lrfind;
      if (lrfind) charts.setLrFind(lrfind);
      log.note('conn', `connected: run ${m.status}`);
      for (const item of m.history?.events ?? []) log.add(item);
      if (m.state) position = { ...m.state, path: normalizePath(m.state.path) };
      if (TERMINAL.has(m.status)) finalPath = m.status;
      void statechart.draw(m.machine).then(
        () => {
          panel.setData(m.callbacks ?? null, statechart.graph);
          debug.setBreakpoints(m.breakpoints ?? []);
          panel.show(selected);
          document.body.dataset.ready = 'true';
          schedule();
        },
        (error: unknown) => log.note('error', `could not lay the chart out: ${String(error)}`),
      );
      break;
    }
    case 'state':
      position = { ...m, path: normalizePath(m.path) };
      status = m.status;
      if (typeof m.nBatches === 'number') nBatches = m.nBatches;
      if (m.status !== 'paused') paused = null;
      break;
    case 'resumed':
      paused = null;
      if (status === 'paused') status = 'running';
      break;
    case 'paused':
      paused = { ...m, path: normalizePath(m.path) };
      position = { ...paused, smoothLoss: position?.smoothLoss, lr: position?.lr };
      status = 'paused';
      log.note('pause', `${m.reason} at ${paused.path}`);
      break;
    case 'batches':
      charts.addBatches(m.items ?? []);
      break;
    case 'epoch':
      charts.addEpoch(m);
      break;
    case 'events':
      if (m.dropped) log.note('dropped', `… ${m.dropped} events not shown`);
      for (const item of m.items ?? []) log.add(item);
      break;
    case 'lrfind':
      charts.setLrFind(m);
      break;
    case 'breakpoints':
      debug.setBreakpoints(m.items ?? []);
      break;
    case 'done':
      status = m.status;
      paused = null;
      finalPath = m.status;
      connection.finish();
      log.note('done', `run ${m.status}${m.error ? `: ${m.error}` : ''}`);
      break;
    case 'error':
      log.note('error', m.message);
      break;
  }
  schedule();
}

let scheduled = false;
let lastRender = 0;

function schedule() {
  if (scheduled) return;
  scheduled = true;
  const wait = Math.max(0, lastRender + MIN_FRAME_MS - performance.now());
  setTimeout(() => requestAnimationFrame(render), wait);
}

const setText = (id: string, value: unknown) => {
  const text = value === undefined || value === null ? '–' : String(value);
  const e = $(id);
  if (e.textContent !== text) e.textContent = text;
};
const fmt = (v: number | null | undefined, digits = 4) => (typeof v === 'number' && Number.isFinite(v) ? v.toPrecision(digits) : null);

function render() {
  scheduled = false;
  lastRender = performance.now();
  stats.renders++;
  if (finalPath && statechart.has(finalPath)) statechart.setActive(finalPath);
  else if (position) statechart.setActive(position.path);
  statechart.setPaused(paused?.path ?? null);
  if (position) {
    setText('epoch', position.epoch);
    setText('iteration', position.iteration);
    setText('batch', position.batchIndex);
    setText('pass', position.train ? 'train' : 'validation');
    setText('n-batches', nBatches ?? (position.train ? totals.nTrainBatches || null : totals.nValidBatches || null));
    if (position.smoothLoss !== undefined) setText('smooth-loss', fmt(position.smoothLoss));
    if (position.lr !== undefined) setText('lr', fmt(position.lr, 3));
  }
  setText('n-epochs', totals.nEpochs || null);
  setText('n-iterations', totals.nEpochs * totals.nTrainBatches || null);
  setText('status', status);
  $('status').dataset.status = status;
  debug.setStatus(status === 'disconnected' ? 'connecting' : status);
  debug.showPaused(paused);
  charts.flush();
  log.flush();
}
