import * as tf from '@tensorflow/tfjs';
import type { InspectionEvent, Observer } from 'xstate';
import type { FinalStatus } from '../machines/trainLoop.js';
import { Recorder } from '../callbacks/recorder.js';
import { Callback } from './callback.js';
import type { DataLoader } from './data/dataLoader.js';
import { TfEngine } from './engine/tfEngine.js';
import { ConfigError, DataError } from './errors.js';
import { checkTargets, resolveLoss, type LossFn, type LossName } from './losses.js';
import { newTrainContext, type TrainContext } from './loop/context.js';
import { HookTable } from './loop/hookTable.js';
import { runLoop, type LoopActor } from './loop/runLoop.js';
import { SmoothLoss, type SmoothLossState } from './loop/smoothLoss.js';
import { resolveMetric, type Metric, type MetricName } from './metrics.js';
import { createOptimizer, type HyperParams, type Optimizer, type OptimizerKind } from './optim/optimizer.js';
import { Rng } from './rng.js';
import { fitOneCycle, type FitOneCycleOptions } from './oneCycle.js';
import { lrFind, type LrFindOptions, type LrFindResult } from './lrFind.js';
import { describeLoop } from './dryRun.js';
import { callbackStateKeys } from './callbackKeys.js';
import type { FitRecipe } from './checkpoint/capture.js';
import { captureRun, FIT_RECIPE, prepareResume, type PreparedResume, type ResumedFrom } from './resume.js';

export interface LearnerData {
  train: DataLoader;
  valid?: DataLoader | null;
}

export interface LearnerOptions {
  model: tf.LayersModel;
  data: LearnerData;
  loss: LossName | LossFn;
  /** 'sgd' | 'adam' | 'adamw', with hyper-parameters, or a ready optimizer. Default 'adam'. */
  optimizer?: OptimizerKind | ({ kind: OptimizerKind } & Partial<HyperParams>) | Optimizer;
  metrics?: Array<MetricName | Metric>;
  callbacks?: Callback[];
  /** Seeds `learn.rng`, the random stream callbacks draw from (MixUp, …). */
  seed?: number;
  /** Record the run (fastai's always-on Recorder). Default true. */
  recorder?: boolean;
}

export interface FitOptions {
  lr?: number;
  wd?: number;
  /** Callbacks for this fit only (LR finder, schedules, …), after the learner's own. */
  callbacks?: Callback[];
  /** Hand control back to the event loop at least this often (ms). */
  yieldEveryMs?: number;
  /** XState inspection of the loop's actor (the visualizer's feed). */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Called once the loop's actor exists. */
  onActor?: (actor: LoopActor) => void;
  /** Resume at this epoch: every callback's jumpToEpoch(startEpoch) runs after onTrainBegin, then epoch startEpoch. */
  startEpoch?: number;
  /** With startEpoch: the callbacks' states (from `learn.callbackStates()`), restored just before jumpToEpoch. */
  callbackStates?: Record<string, Record<string, unknown>>;
  /** The smoothed train loss to continue from (from `learn.smoothLossState()`), so a resumed run smooths as if never stopped. */
  smoothLoss?: SmoothLossState;
  /**
   * Resume from a checkpoint (docs/checkpoints.md): a run directory (the Checkpoint callback's
   * `dir`: its latest checkpoint) or one checkpoint's directory. `nEpochs` is the run's total.
   * Hyper-parameters, weights, optimizer, callback states and every random stream come back
   * from it, so `lr`/`wd` may not be given; the callbacks must be those of the original run.
   */
  resumeFrom?: string;
  /** Aborting it stops the run after the current batch, as `learn.stop()` does. */
  signal?: AbortSignal;
}

export interface FitResult {
  status: FinalStatus;
  /** Epochs that ran to epochEnd. */
  epochs: number;
  /** Train batches done. */
  iterations: number;
  /** Validation loss and metrics of the last validation pass (null if none ran). */
  metrics: Record<string, number> | null;
  smoothLoss: number;
  /** The checkpoint this fit resumed from (`resumeFrom`), or null for a fit from the start. */
  resumedFrom: ResumedFrom | null;
}

const LEARNER_KEYS = ['model', 'data', 'loss', 'optimizer', 'metrics', 'callbacks', 'seed', 'recorder'] as const;
const FIT_KEYS = ['lr', 'wd', 'callbacks', 'yieldEveryMs', 'inspect', 'onActor', 'startEpoch', 'callbackStates', 'smoothLoss', 'resumeFrom', 'signal'] as const;

/** Unknown option keys are typos until proven otherwise: say so instead of ignoring them. */
export function checkKeys(where: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new ConfigError(`${where}: unknown option "${key}"; known options: ${known.join(', ')}`);
    }
  }
}

/** `Name`, or `Name#2`, `Name#3` … for further callbacks of the same name, in the order given. */
const stateKeys = callbackStateKeys;

function describeValue(v: unknown): string {
  return typeof v === 'number' ? String(v) : `${JSON.stringify(v)} (a ${typeof v}, not a number)`;
}

function isOptimizer(o: unknown): o is Optimizer {
  return typeof o === 'object' && o !== null && typeof (o as Optimizer).step === 'function';
}

/**
 * Model + data + loss + optimizer + callbacks, trained by the loop machine.
 * Hyper-parameters are plain properties (`learn.lr = 1e-3`) read at every optimizer step,
 * so a callback sets them for the next step.
 */
export class Learner {
  readonly model: tf.LayersModel;
  data: LearnerData;
  readonly loss: { name: string; fn: LossFn };
  readonly optimizer: Optimizer;
  readonly metrics: readonly Metric[];
  readonly callbacks: Callback[] = [];
  readonly recorder: Recorder | null;
  readonly rng: Rng;
  readonly seed: number;
  private engine: TfEngine | null = null;
  private smoother: SmoothLoss | null = null;
  private running = false;
  private stopRequested = false;

  constructor(options: LearnerOptions) {
    if (!options || typeof options !== 'object') throw new ConfigError('new Learner(options): options object is required');
    checkKeys('new Learner', options, LEARNER_KEYS);
    const { model, data } = options;
    if (!(model instanceof tf.LayersModel)) {
      throw new ConfigError('Learner: `model` must be a tf.LayersModel (e.g. models.mlp() or tf.sequential({...}))');
    }
    if (!data || typeof data !== 'object' || !data.train) {
      throw new ConfigError('Learner: `data` must be { train: DataLoader, valid?: DataLoader }');
    }
    this.model = model;
    this.data = data;
    this.loss = resolveLoss(options.loss);
    this.optimizer = isOptimizer(options.optimizer) ? options.optimizer : createOptimizer(options.optimizer ?? 'adam');
    this.metrics = (options.metrics ?? []).map(resolveMetric);
    this.seed = options.seed ?? 0;
    this.rng = new Rng(this.seed);
    this.recorder = options.recorder === false ? null : new Recorder();
    if (this.recorder) this.addCallback(this.recorder);
    for (const cb of options.callbacks ?? []) this.addCallback(cb);
  }

  // Hyper-parameters, read by the optimizer at every step.
  get lr(): number {
    return this.optimizer.hp.lr;
  }
  set lr(value: number) {
    this.optimizer.hp.lr = value;
  }
  /** SGD momentum, or Adam's β1 (fastai's `mom`). */
  get momentum(): number {
    return this.optimizer.hp.momentum;
  }
  set momentum(value: number) {
    this.optimizer.hp.momentum = value;
  }
  get beta1(): number {
    return this.optimizer.hp.momentum;
  }
  set beta1(value: number) {
    this.optimizer.hp.momentum = value;
  }
  get wd(): number {
    return this.optimizer.hp.wd;
  }
  set wd(value: number) {
    this.optimizer.hp.wd = value;
  }

  /** The gradients of the current batch (backwardEnd hooks may read and replace them). */
  get grads(): tf.NamedTensorMap | null {
    return this.engine?.grads ?? null;
  }
  set grads(value: tf.NamedTensorMap | null) {
    if (!this.engine) throw new ConfigError('learn.grads can only be set during fit (at backwardEnd)');
    if (value === null) this.engine.dropGradients();
    else this.engine.setGradients(value);
  }

  /** The trainable variables, in the model's order (the order gradients and checkpoints use). */
  get params(): tf.Variable[] {
    return this.model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  addCallback(cb: Callback): this {
    if (!(cb instanceof Callback)) {
      const what = typeof cb === 'function' ? `the class ${(cb as { name?: string }).name} (did you forget \`new\`?)` : String(cb);
      throw new ConfigError(`callbacks must be Callback instances, got ${what}`);
    }
    if (this.callbacks.includes(cb)) return this;
    cb.attach(this);
    this.callbacks.push(cb);
    return this;
  }

  removeCallback(cb: Callback): this {
    const i = this.callbacks.indexOf(cb);
    if (i >= 0) {
      this.callbacks.splice(i, 1);
      cb.attach(null);
    }
    return this;
  }

  /** Trains for `nEpochs`. Rejects with a StageError (or ControlError) naming the stage and callback when anything throws. */
  async fit(nEpochs: number, options: FitOptions = {}): Promise<FitResult> {
    if (this.running) throw new ConfigError('fit is already running on this learner; await it before starting another');
    checkKeys('fit', options, FIT_KEYS);
    if (!Number.isInteger(nEpochs) || nEpochs <= 0) {
      throw new ConfigError(`fit(nEpochs): epochs must be a positive integer, got ${nEpochs}`);
    }
    if (options.lr !== undefined && (typeof options.lr !== 'number' || !Number.isFinite(options.lr) || options.lr <= 0)) {
      throw new ConfigError(`fit: lr must be a positive finite number, got ${describeValue(options.lr)}`);
    }
    if (options.wd !== undefined && (typeof options.wd !== 'number' || !Number.isFinite(options.wd) || options.wd < 0)) {
      throw new ConfigError(`fit: wd must be a number ≥ 0, got ${describeValue(options.wd)}`);
    }
    const { startEpoch, callbackStates } = options;
    if (startEpoch !== undefined && (!Number.isInteger(startEpoch) || startEpoch < 0)) {
      throw new ConfigError(`fit: startEpoch must be an integer ≥ 0, got ${describeValue(startEpoch)}`);
    }
    if (callbackStates !== undefined && !(startEpoch! > 0)) {
      throw new ConfigError('fit: callbackStates are restored when the run jumps to its start epoch; give startEpoch > 0 with them');
    }
    const { resumeFrom, signal } = options;
    if (resumeFrom !== undefined) this.checkResumeOptions(options);
    if (signal !== undefined && !(signal instanceof AbortSignal)) {
      throw new ConfigError(`fit: signal must be an AbortSignal (e.g. new AbortController().signal), got ${describeValue(signal)}`);
    }
    const recipe: FitRecipe = (options as { [FIT_RECIPE]?: FitRecipe })[FIT_RECIPE] ?? { kind: 'fit' };
    // Everything is checked before anything changes: a rejected fit leaves the learner as it was.
    this.checkData();

    // A callback given twice (the learner's own, again for this fit) runs once.
    const extra = [...new Set(options.callbacks ?? [])].filter((cb) => !this.callbacks.includes(cb));
    const callbacks = [...this.callbacks, ...extra];
    const table = new HookTable(callbacks);
    const states = callbackStates ? this.matchStates(callbacks, callbackStates) : undefined;
    // A checkpoint is read, verified and checked against this fit before anything changes.
    const resumed: PreparedResume | null = resumeFrom !== undefined ? prepareResume(this, callbacks, nEpochs, recipe, resumeFrom) : null;
    for (const cb of extra) cb.attach(this);
    if (options.lr !== undefined) this.lr = options.lr;
    if (options.wd !== undefined) this.wd = options.wd;
    const { train } = this.data;
    const valid = this.data.valid ?? null;
    const ctx = this.newContext(nEpochs);
    const smoother = new SmoothLoss(options.smoothLoss);
    this.smoother = smoother;
    const engine = new TfEngine({
      model: this.model,
      lossFn: this.loss.fn,
      metrics: this.metrics,
      optimizer: this.optimizer,
      train,
      valid,
      ctx,
    });
    this.engine = engine;
    this.running = true;
    this.stopRequested = false;
    const onAbort = () => this.stop();
    if (signal?.aborted) this.stop();
    signal?.addEventListener('abort', onAbort);
    const parts = { engine, smoother, ctx };
    try {
      const result = await runLoop({
        engine,
        table,
        ctx,
        input: {
          nEpochs,
          nTrainBatches: train.nBatches,
          nValidBatches: valid?.nBatches ?? 0,
          validate: valid !== null,
          ...(startEpoch !== undefined ? { startEpoch } : {}),
          ...(resumed ? { resume: resumed.point } : {}),
        },
        ...(states ? { callbackStates: states } : {}),
        ...(resumed ? { callbackStates: resumed.callbackStates, resume: { restore: () => resumed.restore(parts) } } : {}),
        stopRequested: () => this.stopRequested,
        capture: (point) => captureRun(this, callbacks, recipe, point, parts),
        smoothLoss: smoother,
        ...(options.yieldEveryMs !== undefined ? { yieldEveryMs: options.yieldEveryMs } : {}),
        ...(options.inspect ? { inspect: options.inspect } : {}),
        ...(options.onActor ? { onActor: options.onActor } : {}),
      });
      if (result.status === 'failed') throw result.error!;
      const c = result.context;
      return {
        status: result.status,
        epochs: result.epochsDone,
        // A resumed fit trains only what the checkpoint had not: the run's total minus its iteration.
        iterations: c.iteration - (resumed?.point.iteration ?? 0),
        metrics: ctx.lastMetrics,
        smoothLoss: ctx.smoothLoss,
        resumedFrom: resumed ? { ...resumed.resumedFrom } : null,
      };
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.running = false;
      this.engine = null;
      for (const cb of extra) cb.attach(null);
    }
  }

  /**
   * Ends the running fit after its current batch, through the machine's own stopTraining path
   * (trainEnd runs, the status is `stopped`); a Checkpoint callback writes its stop checkpoint
   * at that batch boundary. Outside a fit it does nothing.
   */
  stop(): void {
    if (this.running) this.stopRequested = true;
  }

  /** fastai's fit_one_cycle: cosine lr warm-up to `lrMax` then annealing, momentum the other way (src/oneCycle.ts). */
  fitOneCycle(nEpochs: number, options: FitOneCycleOptions = {}): Promise<FitResult> {
    return fitOneCycle(this, nEpochs, options);
  }

  /** fastai's lr_find: a mock run with an exponentially growing lr, then suggestions; leaves the learner as it was (src/lrFind.ts). */
  lrFind(options: LrFindOptions = {}): Promise<LrFindResult> {
    return lrFind(this, options);
  }

  /** The dry run: every stage of a fit, with this learner's callbacks (plus `extra`, as fit's options.callbacks) in run order, the controls that may come from each stage and the guards read there (src/dryRun.ts). */
  describeLoop(extra: Callback[] = []): string {
    return describeLoop([...this.callbacks, ...extra]);
  }

  /**
   * Every callback's `getState()`, keyed by name (`Name#2` for a second one of the same name),
   * for a checkpoint; `fit(n, { startEpoch, callbackStates })` restores them.
   */
  callbackStates(extra: Callback[] = []): Record<string, Record<string, unknown>> {
    const out: Record<string, Record<string, unknown>> = {};
    stateKeys([...this.callbacks, ...extra]).forEach((key, cb) => (out[key] = cb.getState()));
    return out;
  }

  /** The smoothed train loss's state, live during a fit (a checkpoint saves it), else as the last fit left it. */
  smoothLossState(): SmoothLossState | null {
    return this.smoother?.getState() ?? null;
  }

  private matchStates(callbacks: Callback[], states: Record<string, Record<string, unknown>>) {
    const keys = stateKeys(callbacks);
    const byCallback = new Map<Callback, Record<string, unknown>>();
    const known = new Set(keys.values());
    for (const key of Object.keys(states)) {
      if (!known.has(key)) {
        throw new ConfigError(`fit: callbackStates has "${key}", but no callback of this fit is called that (callbacks: ${[...known].join(', ')})`);
      }
    }
    keys.forEach((key, cb) => {
      if (key in states) byCallback.set(cb, states[key]!);
    });
    return byCallback;
  }

  /** resumeFrom's companions: hyper-parameters and the older resume options come from the checkpoint. */
  private checkResumeOptions(options: FitOptions): void {
    if (typeof options.resumeFrom !== 'string' || options.resumeFrom === '') {
      throw new ConfigError(`fit: resumeFrom must be a directory path (a checkpoint, or the Checkpoint callback's dir), got ${describeValue(options.resumeFrom)}`);
    }
    const given = (['lr', 'wd'] as const).filter((k) => options[k] !== undefined);
    if (given.length) {
      throw new ConfigError(
        `fit: ${given.join(' and ')} cannot be given with resumeFrom: the hyper-parameters come back from the checkpoint ` +
          '(change them in a callback, or start a new run)',
      );
    }
    const older = (['startEpoch', 'callbackStates', 'smoothLoss'] as const).filter((k) => options[k] !== undefined);
    if (older.length) {
      throw new ConfigError(`fit: ${older.join(', ')} cannot be given with resumeFrom: the checkpoint holds where the run was and every state`);
    }
  }

  private newContext(nEpochs: number): TrainContext {
    return newTrainContext(this, nEpochs, this.data.train.nBatches);
  }

  /** Shapes are checked before the first batch, so a mismatch is a clear DataError, not a tfjs stack. */
  private checkData(): void {
    const { train, valid } = this.data;
    const inputShape = this.model.inputs[0]!.shape.slice(1);
    const outputShape = this.model.outputs[0]!.shape.slice(1) as number[];
    for (const [name, loader] of [['train', train], ['valid', valid]] as const) {
      if (!loader) continue;
      if (loader.length === 0) throw new DataError(`${name} data is empty: give at least one sample`);
      const sample = loader.sampleShape;
      const matches =
        sample.length === inputShape.length && inputShape.every((d, i) => d === null || d === sample[i]);
      if (!matches) {
        throw new DataError(
          `${name} input samples have shape [${sample}] but the model expects [${inputShape.map((d) => d ?? '?')}]; ` +
            'reshape the data (DataLoader xShape) or build the model with a matching inputShape',
        );
      }
      checkTargets(this.loss.name, outputShape, loader.targetShape, loader.targetDtype, loader.labelRange());
    }
  }
}
