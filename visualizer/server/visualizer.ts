/**
 * `Visualizer`: the training side of the visualizer, what `fit(n, { viz })` takes. It starts the
 * server's worker (worker.ts), feeds it from the run — throttled: one message every
 * `stateIntervalMs` with the latest state and the records since the last one, never one per
 * stage or inspection event — and hosts the debugger (debugger.ts) at runLoop's observation point.
 *
 * ```ts
 * const viz = new Visualizer({ port: 0, break: 'backwardEnd:smoothLoss>2' });
 * console.log(await viz.start());          // http://127.0.0.1:PORT/
 * await learn.fit(3, { viz });
 * await viz.close();
 * ```
 */
import { EventEmitter } from 'node:events';
import { describeMachine, type MachineDescription } from '../../machines/describe.js';
import { trainLoopMachine } from '../../machines/trainLoop.js';
import type { Callback } from '../../src/loop/callback.js';
import { loopPlan } from '../../src/dryRun.js';
import { ConfigError } from '../../src/errors.js';
import type { TrainContext } from '../../src/loop/context.js';
import type { StepWatcher } from '../../src/loop/stepInspection.js';
import { registerFitObserverFactory, type FitObserver, type FitRunEnd, type FitRunInfo, type LoopObserver, type LoopSnapshot } from '../../src/loop/observer.js';
import { statePaths, toBreakpoints, type StatePaths } from './breakpoints.js';
import { finite, statePathOf } from './contextView.js';
import { Debugger } from './debugger.js';
import { EventLog } from './eventLog.js';
import { VisualizerProbe } from './probe.js';
import type { Breakpoint, LrFindMessage, RunStatus, StateMessage } from './protocol.js';
import { hostForUrl, isWildcard } from './security.js';
import { CLIENTS } from './sharedFlags.js';
import { WorkerHost } from './workerHost.js';

export interface VisualizerOptions {
  /** TCP port (default 5177); 0 picks a free one (read it from `url` / `port` after `start`). */
  port?: number;
  /** Address to bind (default 127.0.0.1: only this machine can connect). */
  host?: string;
  /** Breakpoints from the start: `'lossBegin'`, `'backwardEnd:smoothLoss>2'`, `{ stage, path?, when? }`, or a list. */
  break?: string | Breakpoint | Array<string | Breakpoint>;
  /** More names the Host header may carry (e.g. this machine's LAN name with host 0.0.0.0). */
  allowedHosts?: string[];
  /** How often the page gets the run's state and records (ms, 20–250; default 150). */
  stateIntervalMs?: number;
  /**
   * Ctrl-C stops the run (through stopTraining), also while it is paused. Every Ctrl-C emits
   * 'sigint' (`{ duringRun, count }`); with no listener, one with no run under way or a second
   * one during the run ends the process (exit code 130), as Ctrl-C would have.
   */
  stopOnSigint?: boolean;
  /** Called with the URL once the server listens. */
  onListening?: (url: string) => void;
}

const OPTION_KEYS = ['port', 'host', 'break', 'allowedHosts', 'stateIntervalMs', 'stopOnSigint', 'onListening'];

/** What a 'sigint' listener gets: was a run under way (it is now stopping), and the how-manieth Ctrl-C of that run this is. */
export interface SigintEvent {
  duringRun: boolean;
  count: number;
}

export const DEFAULT_PORT = 5177;
export const DEFAULT_STATE_INTERVAL_MS = 150;

let machineInfo: { machine: MachineDescription; paths: StatePaths } | null = null;
/** The machine's description, read once from its own definition. */
export function loopMachineInfo(): { machine: MachineDescription; paths: StatePaths } {
  if (!machineInfo) {
    const machine = describeMachine(trainLoopMachine);
    machineInfo = { machine, paths: statePaths(machine) };
  }
  return machineInfo;
}

function checkOptions(o: VisualizerOptions): Required<Omit<VisualizerOptions, 'break' | 'onListening'>> {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new ConfigError('new Visualizer(options): options must be an object such as { port: 0 }');
  for (const key of Object.keys(o)) {
    if (!OPTION_KEYS.includes(key)) throw new ConfigError(`visualizer: unknown option "${key}"; known options: ${OPTION_KEYS.join(', ')}`);
  }
  const port = o.port ?? DEFAULT_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`visualizer: port must be an integer 0–65535 (0: any free port), got ${JSON.stringify(o.port)}`);
  const host = o.host ?? '127.0.0.1';
  if (typeof host !== 'string' || host.trim() === '' || /[\s/]/.test(host)) throw new ConfigError(`visualizer: host must be an address such as 127.0.0.1, got ${JSON.stringify(o.host)}`);
  const allowedHosts = o.allowedHosts ?? [];
  if (!Array.isArray(allowedHosts) || !allowedHosts.every((h) => typeof h === 'string' && h.length > 0)) {
    throw new ConfigError('visualizer: allowedHosts must be a list of host names');
  }
  const stateIntervalMs = o.stateIntervalMs ?? DEFAULT_STATE_INTERVAL_MS;
  // Above 250 ms the page would get fewer than the 4 updates a second the protocol promises.
  if (typeof stateIntervalMs !== 'number' || !(stateIntervalMs >= 20 && stateIntervalMs <= 250)) {
    throw new ConfigError(`visualizer: stateIntervalMs must be 20–250, got ${JSON.stringify(o.stateIntervalMs)}`);
  }
  const stopOnSigint = o.stopOnSigint ?? false;
  if (typeof stopOnSigint !== 'boolean') throw new ConfigError('visualizer: stopOnSigint must be true or false');
  if (o.onListening !== undefined && typeof o.onListening !== 'function') throw new ConfigError('visualizer: onListening must be a function (url) => void');
  return { port, host, allowedHosts, stateIntervalMs, stopOnSigint };
}

export class Visualizer extends EventEmitter implements FitObserver {
  readonly stateIntervalMs: number;
  readonly callbacks: readonly Callback[];
  readonly loopObserver: LoopObserver;
  readonly watchSteps: StepWatcher;
  private readonly settings: ReturnType<typeof checkOptions>;
  private readonly onListening: ((url: string) => void) | undefined;
  private readonly host = new WorkerHost();
  private readonly debugger: Debugger;
  private readonly log: EventLog;
  private readonly probe: VisualizerProbe;
  private starting: Promise<string> | null = null;
  private address: { url: string; port: number } | null = null;
  private running = false;
  private runStatus: RunStatus = 'idle';
  private snapshot: LoopSnapshot | null = null;
  private ctx: TrainContext | null = null;
  private lastFlush = 0;
  private sigintFallback: (() => void) | null = null;
  private closed = false;
  private sigintsThisRun = 0;
  private whenClosed: Promise<void> | null = null;
  /** The event log threw once: it is not fed again (the rest of the page is). */
  private logBroken = false;
  /** The page feed threw once in this run: no more updates or pauses until the next run. */
  private feedBroken = false;

  constructor(options: VisualizerOptions = {}) {
    super();
    this.settings = checkOptions(options);
    this.stateIntervalMs = this.settings.stateIntervalMs;
    this.onListening = options.onListening;
    const { paths } = loopMachineInfo();
    this.debugger = new Debugger(this.host, paths, toBreakpoints(options.break, paths));
    this.log = new EventLog(paths);
    this.probe = new VisualizerProbe(this.host.flags);
    this.callbacks = [this.probe];
    this.loopObserver = { afterEvent: (snapshot, ctx) => this.afterEvent(snapshot, ctx) };
    this.watchSteps = (event) => {
      // The log is only worth its (small) cost while someone reads it.
      if (!this.running || this.logBroken || Atomics.load(this.host.flags, CLIENTS) === 0) return;
      try {
        this.log.record(event);
      } catch (e) {
        // Watching must never fail the run: the log stops, the page and the debugger go on.
        process.emitWarning(`visualizer: the event log failed (${e instanceof Error ? e.message : String(e)}); it shows no more events`);
        this.logBroken = true;
      }
    };
    this.host.onSigint = (duringRun) => this.sigint(duringRun);
  }

  /** `http://HOST:PORT/` once started, else null. */
  get url(): string | null {
    return this.address?.url ?? null;
  }

  get port(): number | null {
    return this.address?.port ?? null;
  }

  get status(): RunStatus {
    return this.runStatus;
  }

  get breakpoints(): readonly Breakpoint[] {
    return this.debugger.breakpoints;
  }

  /** Starts the server (once; later calls return the same URL). Rejects with PortInUseError if the port is taken. */
  start(): Promise<string> {
    if (this.closed) return Promise.reject(new ConfigError('visualizer: closed; make a new Visualizer'));
    this.starting ??= this.listen();
    return this.starting;
  }

  private async listen(): Promise<string> {
    const { machine } = loopMachineInfo();
    const { host, port, allowedHosts, stopOnSigint } = this.settings;
    const listening = await this.host.start({
      host,
      port,
      allowedHosts,
      machine,
      idlePlan: loopPlan([]),
      breakpoints: this.debugger.breakpoints,
      catchSigint: stopOnSigint,
      status: 'idle',
    });
    if (stopOnSigint && !listening.sigint) {
      // No signal handle in the worker: a listener here stops a running run (not a paused one).
      const onSigint = () => this.sigint(this.running);
      process.on('SIGINT', onSigint);
      this.sigintFallback = () => process.off('SIGINT', onSigint);
    }
    const shown = isWildcard(host) ? '127.0.0.1' : listening.host;
    const url = `http://${hostForUrl(shown)}:${listening.port}/`;
    this.address = { url, port: listening.port };
    this.onListening?.(url);
    return url;
  }

  /** Ctrl-C (stopOnSigint): the worker has already set the stop flag when a run was under way. */
  private sigint(duringRun: boolean): void {
    if (duringRun) {
      this.sigintsThisRun += 1;
      this.debugger.requestStop();
    }
    const event: SigintEvent = { duringRun, count: duringRun ? this.sigintsThisRun : 0 };
    if (this.listenerCount('sigint') > 0) {
      this.emit('sigint', event);
      return;
    }
    // Nobody decides otherwise: the first Ctrl-C of a run stops it; any other ends the process, as Node would have.
    if (!duringRun || event.count > 1) process.exit(130);
  }

  /** Asks the run to stop (through its stopTraining guard), as a client's `stop` does. */
  requestStop(): void {
    this.debugger.requestStop();
  }

  /** Shows an LR finder's result (`learn.lrFind()`) on the page. */
  showLrFind(result: { lrs: readonly number[]; losses: readonly number[]; suggestions: Record<string, number> }): void {
    const message: LrFindMessage = {
      type: 'lrfind',
      lrs: [...result.lrs],
      losses: result.losses.map((v) => finite(v) ?? Number.NaN),
      suggestions: Object.fromEntries(Object.entries(result.suggestions).map(([k, v]) => [k, finite(v)])),
    };
    this.host.post({ kind: 'lrfind', message });
  }

  async runStarting(run: FitRunInfo): Promise<void> {
    if (this.running) throw new ConfigError('visualizer: already watching a run; one Visualizer watches one fit at a time');
    this.running = true;
    try {
      await this.start();
    } catch (e) {
      this.running = false;
      throw e;
    }
    this.debugger.startRun();
    this.probe.reset();
    this.log.reset();
    this.logBroken = false;
    this.feedBroken = false;
    this.sigintsThisRun = 0;
    this.snapshot = null;
    this.ctx = null;
    this.runStatus = 'running';
    this.host.post({
      kind: 'run',
      callbacks: loopPlan(run.callbacks),
      nEpochs: run.nEpochs,
      nTrainBatches: run.nTrainBatches,
      nValidBatches: run.nValidBatches,
    });
    this.lastFlush = performance.now();
  }

  private afterEvent(snapshot: LoopSnapshot, ctx: TrainContext): void {
    // A broken feed: no more updates, and no pauses nobody could see.
    if (this.feedBroken) return;
    this.snapshot = snapshot;
    this.ctx = ctx;
    try {
      this.debugger.afterEvent(snapshot, ctx, () => {
        this.runStatus = 'paused';
        this.flush(performance.now());
      });
      this.runStatus = 'running';
      const now = performance.now();
      if (now - this.lastFlush >= this.stateIntervalMs) this.flush(now);
    } catch (e) {
      // The observer must never fail the run: a broken page feed is reported and dropped (the
      // run is still this visualizer's: `running` keeps guarding against a second one).
      process.emitWarning(`visualizer: ${e instanceof Error ? e.message : String(e)}; the page stops updating`);
      this.feedBroken = true;
    }
  }

  private stateMessage(status: RunStatus): StateMessage | null {
    const snap = this.snapshot;
    const ctx = this.ctx;
    if (!snap || !ctx) return null;
    const c = snap.context;
    const path = statePathOf(snap.value);
    return {
      type: 'state',
      path,
      stage: loopMachineInfo().paths.get(path) ?? null,
      epoch: c.epoch,
      iteration: c.iteration,
      batchIndex: c.batchIndex,
      train: c.train,
      smoothLoss: finite(ctx.smoothLoss),
      lr: ctx.learn.lr,
      momentum: ctx.learn.momentum,
      lastLoss: finite(ctx.lastLossValue),
      status,
      nEpochs: c.nEpochs,
      nBatches: c.train ? c.nTrainBatches : c.nValidBatches,
    };
  }

  private flush(now: number, status: RunStatus = this.runStatus): void {
    if (!this.running || this.feedBroken) return;
    const { batches, epochs } = this.probe.take();
    const { events, dropped } = this.log.take();
    this.host.post({ kind: 'tick', state: this.stateMessage(status), batches, epochs, events, dropped });
    this.lastFlush = now;
  }

  async runEnded(end: FitRunEnd): Promise<void> {
    if (this.running) this.flush(performance.now(), end.status);
    this.running = false;
    this.runStatus = end.status;
    this.host.post({
      kind: 'done',
      message: { type: 'done', status: end.status, error: end.error ? end.error.message : null, epochs: end.epochs, iterations: end.iterations },
    });
  }

  /** Keeps the process alive, serving the last run, until `close()` (e.g. on Ctrl-C). */
  serve(): Promise<void> {
    this.host.ref();
    this.whenClosed ??= new Promise((resolve) => this.once('closed', resolve));
    return this.whenClosed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.sigintFallback?.();
    if (this.starting) await this.starting.catch(() => {});
    await this.host.close();
    this.emit('closed');
  }
}

// `fit(n, { viz: { port } })`: fit makes a Visualizer of plain options through this, and closes
// it when the run is done. It says where it listens, as nobody else can.
registerFitObserverFactory(
  (options) => new Visualizer({ onListening: (url) => process.stderr.write(`visualizer: ${url}\n`), ...(options as VisualizerOptions) }),
);
