/**
 * How the loop is watched from outside, without the loop or the Learner knowing who watches.
 * The visualizer (visualizer/, a layer above the Learner) implements these interfaces; the
 * loop and `fit` only call them. Two levels:
 *
 * - `LoopObserver` is runLoop's observation point: a synchronous call after every event the
 *   driver sends has settled. A debugger blocks there to pause the run in any stage.
 * - `FitObserver` is what `fit(n, { viz })` takes: the LoopObserver, plus the callbacks and the
 *   step watcher (src/loop/stepInspection.ts) it needs in the run, plus start and end of the run.
 *
 * `fit(n, { viz: { port } })` (plain options) needs an object the Learner cannot build without
 * importing the layer above it, so the visualizer registers a factory here when its module is
 * loaded (`trainchart/visualizer`, which the package entry `trainchart` imports).
 */
import type { InspectionEvent, Observer, SnapshotFrom } from 'xstate';
import type { FinalStatus, LoopContext, trainLoopMachine } from '../../machines/trainLoop.js';
import type { Callback } from './callback.js';
import { ConfigError } from '../errors.js';
import type { TrainContext } from './context.js';
import type { StepWatcher } from './stepInspection.js';

/**
 * What a watcher reads of the loop's state after an event: the part of XState's snapshot that
 * both actors give (a watched run may be driven by the resolved actor, src/loop/resolvedActor.ts).
 */
export interface LoopSnapshot {
  readonly value: SnapshotFrom<typeof trainLoopMachine>['value'];
  readonly status: 'active' | 'done' | 'error' | 'stopped';
  readonly context: LoopContext;
  hasTag(tag: string): boolean;
}

export interface LoopObserver {
  /**
   * After each event sent to the loop's actor has been handled: the state just entered has run
   * its entry actions (work, hooks, guards), its way out has not been taken. Synchronous; it may
   * block (a breakpoint waits here, even inside the gradient tape). It must not throw.
   */
  afterEvent(snapshot: LoopSnapshot, ctx: TrainContext): void;
}

/** What a fit is about to run, for its observer. */
export interface FitRunInfo {
  /** Every callback of the run (the learner's, the fit's and the observer's own). */
  callbacks: readonly Callback[];
  nEpochs: number;
  nTrainBatches: number;
  nValidBatches: number;
}

export interface FitRunEnd {
  status: FinalStatus;
  error: Error | null;
  epochs: number;
  iterations: number;
}

/** What `fit(n, { viz })` takes (the visualizer's `Visualizer` implements it). */
export interface FitObserver {
  /** Callbacks the observer needs in the run (e.g. a guard that stops the run on request). */
  readonly callbacks: readonly Callback[];
  readonly loopObserver: LoopObserver;
  /**
   * The loop's steps (src/loop/stepInspection.ts), if the observer reads them: unlike XState's
   * whole inspection stream (fit's `inspect`), they do not need the live actor.
   */
  readonly watchSteps?: StepWatcher;
  /** Before the first stage; may be async (a server binds its port here). */
  runStarting(run: FitRunInfo): Promise<void>;
  /** After the last stage (also when the run failed), before fit returns or rejects. */
  runEnded(end: FitRunEnd): Promise<void>;
  /** Called by fit only for an observer fit made itself from plain options. */
  close(): Promise<void>;
}

type FitObserverFactory = (options: Record<string, unknown>) => FitObserver;
let factory: FitObserverFactory | null = null;

/** The visualizer module registers how plain `viz` options become a FitObserver. */
export function registerFitObserverFactory(make: FitObserverFactory): void {
  factory = make;
}

function isFitObserver(v: object): v is FitObserver {
  const o = v as Partial<FitObserver>;
  return typeof o.runStarting === 'function' && typeof o.runEnded === 'function' && typeof o.loopObserver === 'object';
}

/** fit's `viz` option: an observer object (the caller owns it) or plain options (fit owns what it makes of them). */
export function resolveFitObserver(viz: unknown): { observer: FitObserver; owned: boolean } {
  if (typeof viz !== 'object' || viz === null || Array.isArray(viz)) {
    throw new ConfigError(`fit: viz must be a Visualizer or options such as { port: 0 }, got ${JSON.stringify(viz)}`);
  }
  if (isFitObserver(viz)) {
    const o = viz as { inspect?: unknown; watchSteps?: unknown };
    if (o.inspect != null && typeof o.watchSteps !== 'function') {
      // The old way to feed a watcher (XState's whole stream) would be dropped without a word.
      throw new ConfigError(
        'fit: a viz observer is fed through watchSteps(event), not inspect: it is told the loop\'s steps only ' +
          '(@xstate.microstep and @xstate.snapshot events, src/loop/stepInspection.ts); an external inspector that needs ' +
          'XState\'s whole stream goes in fit\'s own inspect option (it runs XState\'s live actor)',
      );
    }
    return { observer: viz, owned: false };
  }
  if (!factory) {
    throw new ConfigError(
      "fit: viz options need the visualizer module: import { Visualizer } from 'trainchart/visualizer' (or from 'trainchart') and pass new Visualizer(options)",
    );
  }
  return { observer: factory(viz as Record<string, unknown>), owned: true };
}

type Inspect = Observer<InspectionEvent> | ((event: InspectionEvent) => void);

/** One inspection observer that feeds both (either may be absent). */
export function combineInspect(a: Inspect | undefined, b: Inspect | undefined): Inspect | undefined {
  if (!a || !b) return a ?? b;
  const call = (i: Inspect, e: InspectionEvent) => (typeof i === 'function' ? i(e) : i.next?.(e));
  return (event: InspectionEvent) => {
    call(a, event);
    call(b, event);
  };
}
