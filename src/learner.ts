import * as tf from '@tensorflow/tfjs';
import { Progress } from '../callbacks/progress.js';
import { Recorder } from '../callbacks/recorder.js';
import { Callback } from './loop/callback.js';
import { DataLoader } from './data/dataLoader.js';
import { learnerDefaults } from './defaults.js';
import { evaluateLoader, predictLoader } from './engine/evaluate.js';
import { predict, type PredictInput, type Prediction } from './engine/predict.js';
import { TfEngine } from './engine/tfEngine.js';
import { ConfigError, DataError } from './errors.js';
import { checkTargets, resolveLoss, type LossFn, type LossName } from './losses.js';
import { newTrainContext, type TrainContext } from './loop/context.js';
import type { LearnerApi } from './loop/learnerApi.js';
import type { RecipeLearner } from './fitOptions.js';
import { HookTable } from './loop/hookTable.js';
import { resolveFitObserver, type FitObserver } from './loop/observer.js';
import { runLoop } from './loop/runLoop.js';
import { SmoothLoss, type SmoothLossState } from './loop/smoothLoss.js';
import { UnreadLossBacklog } from './loop/unreadLosses.js';
import { resolveMetric, type Metric, type MetricName } from './metrics.js';
import { stableParamNames } from './models/paramNames.js';
import { warnUnseeded } from './models/unseeded.js';
import { createOptimizer, type HyperParams, type Optimizer, type OptimizerKind } from './optim/optimizer.js';
import { Rng } from './rng.js';
import { fitOneCycle, type FitOneCycleOptions } from './oneCycle.js';
import type { FitOptions, FitResult } from './fitOptions.js';
import { checkKeys } from './options.js';
import { checkHyperParams } from './optim/hyperParams.js';
import { lrFind, type LrFindOptions, type LrFindResult } from './lrFind.js';
import { describeLoop } from './dryRun.js';
import { exportModel, type ExportedModel } from './io/tfjsModelFiles.js';
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
  /**
   * Show progress (a `Progress` callback on stderr: a bar per pass on a terminal, plain lines
   * elsewhere, and a row of metrics per epoch), as fastai does by default. Default true
   * (`learnerDefaults.progress`); false for none. A `Progress` of your own in `callbacks`
   * (or added later, or given to one fit) takes the place of the default one: never two.
   */
  progress?: boolean;
}

/**
 * Optimizers a Learner holds: its slots are keyed by that model's variables, so a second Learner
 * given the same one is refused when it is built, not at a later bind or step. For good: a
 * Learner's optimizer is disposed with it.
 */
const OWNED_OPTIMIZERS = new WeakSet<Optimizer>();

const LEARNER_KEYS = ['model', 'data', 'loss', 'optimizer', 'metrics', 'callbacks', 'seed', 'recorder', 'progress'] as const;
const FIT_KEYS = ['lr', 'wd', 'callbacks', 'yieldEveryMs', 'inspect', 'onActor', 'startEpoch', 'callbackStates', 'smoothLoss', 'viz', 'resumeFrom', 'signal'] as const;

/** `Name`, or `Name#2`, `Name#3` … for further callbacks of the same name, in the order given. */
const stateKeys = callbackStateKeys;

/** A Callback instance that is not attached to another learner (one instance serves one learner). */
function checkCallback(cb: unknown, learn: Learner): asserts cb is Callback {
  if (!(cb instanceof Callback)) {
    const what = typeof cb === 'function' ? `the class ${(cb as { name?: string }).name} (did you forget \`new\`?)` : String(cb);
    throw new ConfigError(`callbacks must be Callback instances, got ${what}`);
  }
  cb.checkAttachable(learn);
}

function describeData(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v !== 'object') return `${JSON.stringify(v)} (a ${typeof v})`;
  if (Array.isArray(v)) return 'an array';
  const train = (v as { train?: unknown }).train;
  return 'train' in (v as object) ? `an object whose train is ${train instanceof DataLoader ? 'a DataLoader' : Array.isArray(train) ? 'an array' : typeof train}` : `an object with ${Object.keys(v as object).join(', ') || 'no keys'}`;
}

function describeValue(v: unknown): string {
  return typeof v === 'number' ? String(v) : `${JSON.stringify(v)} (a ${typeof v}, not a number)`;
}

function isOptimizer(o: unknown): o is Optimizer {
  return typeof o === 'object' && o !== null && typeof (o as Optimizer).step === 'function';
}

const NOTHING_TO_READ = () => {};

/**
 * A fit's result, its smoothed loss read when asked (`readLosses` reads the losses no callback
 * read). Made here, not in `fit`: a closure there would keep the whole run (engine, data,
 * learner) alive as long as the result is kept.
 */
function fitResult(fields: Omit<FitResult, 'smoothLoss'>, smoother: SmoothLoss, readLosses: () => void): FitResult {
  return {
    ...fields,
    get smoothLoss() {
      readLosses();
      return smoother.value;
    },
  };
}

/**
 * Model + data + loss + optimizer + callbacks, trained by the loop machine.
 * Hyper-parameters are plain properties (`learn.lr = 1e-3`) read at every optimizer step,
 * so a callback sets them for the next step.
 */
export type { FitOptions, FitResult } from './fitOptions.js';

export class Learner implements LearnerApi, RecipeLearner {
  /** The model being trained (the object given). */
  readonly model: tf.LayersModel;
  /** The train and validation loaders; assignable between fits (checked at the next fit). */
  data: LearnerData;
  /** The loss's name (or the custom function's) and function, which returns the batch mean. */
  readonly loss: { name: string; fn: LossFn };
  /** Its `hp` are the hyper-parameters below; `getState`/`setState` for checkpoints. */
  readonly optimizer: Optimizer;
  /** Validation metrics, each a batch mean (weighted by batch size over a pass). */
  readonly metrics: readonly Metric[];
  /** The learner's own callbacks (Recorder, Progress, those given); change with addCallback/removeCallback. */
  readonly callbacks: Callback[] = [];
  /** fastai's always-on Recorder (null with `recorder: false`). */
  readonly recorder: Recorder | null;
  /** The Progress callback that draws this learner's progress (the default one, or yours), or null. */
  readonly progress: Progress | null;
  /** The random stream callbacks draw from (MixUp's λ), seeded by `seed`; checkpointed by its state. */
  readonly rng: Rng;
  readonly seed: number;
  private engine: TfEngine | null = null;
  /** The running fit's context (its loss accessors read the losses still on the device). */
  private runContext: TrainContext | null = null;
  private smoother: SmoothLoss | null = null;
  /** The losses of finished fits nobody has read yet, on the device (a fit's smoothed loss reads them when asked). */
  private unreadLosses = new UnreadLossBacklog();
  /** Reads the last fit's losses if no callback did (its smoother is `smoother`, until restoreSmoothLossState). */
  private readLastFitLosses: () => void = NOTHING_TO_READ;
  private running = false;
  /** Did the learner make `progress` itself (so that another Progress takes its place)? */
  #ownProgress = false;
  #disposed = false;
  /** Unseeded randomness in the model is reported once per learner, at its first fit. */
  #checkedSeeds = false;
  private stopRequested = false;

  constructor(options: LearnerOptions) {
    if (!options || typeof options !== 'object') throw new ConfigError('new Learner(options): options object is required');
    checkKeys('new Learner', options, LEARNER_KEYS);
    if (options.progress !== undefined && typeof options.progress !== 'boolean') {
      throw new ConfigError(`Learner: progress must be true or false, got ${JSON.stringify(options.progress)}`);
    }
    if (options.recorder !== undefined && typeof options.recorder !== 'boolean') {
      throw new ConfigError(`Learner: recorder must be true or false, got ${JSON.stringify(options.recorder)}`);
    }
    if (options.seed !== undefined && !(Number.isInteger(options.seed) && options.seed >= 0 && options.seed <= 0xffffffff)) {
      throw new ConfigError(`Learner: seed must be an integer in [0, 4294967295], got ${describeValue(options.seed)}`);
    }
    for (const list of ['metrics', 'callbacks'] as const) {
      if (options[list] !== undefined && !Array.isArray(options[list])) {
        throw new ConfigError(`Learner: ${list} must be an array, got ${describeValue(options[list])} (e.g. ${list === 'metrics' ? "metrics: ['accuracy']" : 'callbacks: [new EarlyStopping()]'})`);
      }
    }
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
    const optimizer = isOptimizer(options.optimizer) ? options.optimizer : createOptimizer(options.optimizer ?? 'adam');
    if (OWNED_OPTIMIZERS.has(optimizer)) {
      throw new ConfigError(
        'Learner: this optimizer already belongs to another Learner (its moments are that model\'s); one optimizer trains one model: ' +
          "give each Learner its own, e.g. createOptimizer('adam') or the kind as a string",
      );
    }
    this.optimizer = optimizer;
    // So that a state restored before the first fit is checked against this model at once.
    this.optimizer.bind(stableParamNames(model));
    OWNED_OPTIMIZERS.add(optimizer);
    this.metrics = (options.metrics ?? []).map(resolveMetric);
    this.seed = options.seed ?? 0;
    this.rng = new Rng(this.seed);
    this.recorder = options.recorder === false ? null : new Recorder();
    // All checked before any is attached: a refused one must not leave the others tied to this learner.
    for (const cb of options.callbacks ?? []) checkCallback(cb, this);
    if (this.recorder) this.addCallback(this.recorder);
    for (const cb of options.callbacks ?? []) this.addCallback(cb);
    const given = this.callbacks.find((cb): cb is Progress => cb instanceof Progress);
    // Without a process (a browser page) there is no stderr to draw on.
    const canDraw = typeof process !== 'undefined' && Boolean(process.stderr);
    if (given) this.progress = given;
    else if ((options.progress ?? learnerDefaults.progress) && canDraw) {
      this.progress = new Progress();
      this.#ownProgress = true;
      this.addCallback(this.progress);
    } else this.progress = null;
  }

  // Hyper-parameters, read by the optimizer at every step.
  get lr(): number {
    return this.optimizer.hp.lr;
  }
  set lr(value: number) {
    this.setHyperParam('lr', value, 'lr');
  }
  /** SGD momentum, or Adam's β1 (fastai's `mom`). */
  get momentum(): number {
    return this.optimizer.hp.momentum;
  }
  set momentum(value: number) {
    this.setHyperParam('momentum', value, 'momentum');
  }
  get beta1(): number {
    return this.optimizer.hp.momentum;
  }
  set beta1(value: number) {
    this.setHyperParam('momentum', value, 'beta1');
  }
  get wd(): number {
    return this.optimizer.hp.wd;
  }
  set wd(value: number) {
    this.setHyperParam('wd', value, 'wd');
  }

  /**
   * A bad value is refused where it is set (from a hook: a StageError naming the callback), so it
   * never reaches the optimizer and the learner stays usable.
   */
  private setHyperParam(field: 'lr' | 'momentum' | 'wd', value: number, name: string): void {
    checkHyperParams({ ...this.optimizer.hp, [field]: value }, ` (learn.${name} = ${describeValue(value)})`);
    this.optimizer.hp[field] = value;
  }

  /** The gradients of the current batch (backwardEnd hooks may read and replace them). */
  get grads(): tf.NamedTensorMap | null {
    return this.engine?.grads ?? null;
  }
  /**
   * Replaces them, at backwardEnd only (a ConfigError elsewhere): the step uses the new map, and
   * what it replaced is freed — not the tensors the new map still holds, nor the sum skipZero
   * carries from earlier batches. `null`: no gradients for this step (a carried sum stays carried).
   */
  set grads(value: tf.NamedTensorMap | null) {
    if (!this.engine) throw new ConfigError('learn.grads can only be set during fit, at backwardEnd (in a callback\'s onBackwardEnd)');
    this.engine.setGradients(value);
  }

  /** The trainable variables, in the model's order (the order gradients and checkpoints use). */
  get params(): tf.Variable[] {
    return this.model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  addCallback(cb: Callback): this {
    this.assertUsable('addCallback');
    checkCallback(cb, this);
    if (this.callbacks.includes(cb)) return this;
    cb.attach(this);
    this.callbacks.push(cb);
    return this;
  }

  removeCallback(cb: Callback): this {
    this.assertUsable('removeCallback');
    const i = this.callbacks.indexOf(cb);
    if (i >= 0) {
      this.callbacks.splice(i, 1);
      cb.attach(null);
    }
    return this;
  }

  /** Trains for `nEpochs`. Rejects with a StageError (or ControlError) naming the stage and callback when anything throws. */
  async fit(nEpochs: number, options: FitOptions = {}): Promise<FitResult> {
    this.assertUsable('fit');
    if (this.running) throw new ConfigError('fit is already running on this learner; await it before starting another');
    if (options === null || typeof options !== 'object') {
      throw new ConfigError(`fit(nEpochs, options): options must be an object such as { lr: 1e-3 }, got ${describeValue(options)}`);
    }
    checkKeys('fit', options, FIT_KEYS);
    if (options.callbacks !== undefined && !Array.isArray(options.callbacks)) {
      throw new ConfigError(`fit: callbacks must be an array of Callback instances, got ${describeValue(options.callbacks)}`);
    }
    if (!Number.isInteger(nEpochs) || nEpochs <= 0) {
      throw new ConfigError(`fit(nEpochs): epochs must be a positive integer, got ${describeValue(nEpochs)}`);
    }
    if (options.lr !== undefined && (typeof options.lr !== 'number' || !Number.isFinite(options.lr) || options.lr < 0)) {
      throw new ConfigError(`fit: lr must be a finite number ≥ 0, got ${describeValue(options.lr)}`);
    }
    if (options.wd !== undefined && (typeof options.wd !== 'number' || !Number.isFinite(options.wd) || options.wd < 0)) {
      throw new ConfigError(`fit: wd must be a number ≥ 0, got ${describeValue(options.wd)}`);
    }
    const { startEpoch, callbackStates } = options;
    if (startEpoch !== undefined && (!Number.isInteger(startEpoch) || startEpoch < 0)) {
      throw new ConfigError(`fit: startEpoch must be an integer ≥ 0, got ${describeValue(startEpoch)}`);
    }
    if (startEpoch !== undefined && startEpoch >= nEpochs) {
      throw new ConfigError(
        `fit(${nEpochs}, { startEpoch: ${startEpoch} }): startEpoch ${startEpoch} is past the last of ${nEpochs} epochs (0 … ${nEpochs - 1}), ` +
          `so there is no epoch to train; give startEpoch < ${nEpochs}, or more epochs`,
      );
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
    if (!this.#checkedSeeds) {
      // A warning, not an error: the run works, it just cannot be reproduced (src/models/unseeded.ts).
      this.#checkedSeeds = true;
      warnUnseeded(this.model);
    }
    const watch = options.viz === undefined ? null : resolveFitObserver(options.viz);

    // A callback given twice (the learner's own, again for this fit) runs once.
    const extra = [...new Set([...(options.callbacks ?? []), ...(watch?.observer.callbacks ?? [])])].filter(
      (cb) => !this.callbacks.includes(cb),
    );
    const callbacks = this.withoutSecondProgress([...this.callbacks, ...extra]);
    const table = new HookTable(callbacks);
    const states = callbackStates ? this.matchStates(callbacks, callbackStates) : undefined;
    // Attached for this fit only, unless already this learner's (lrFind sets some of its own aside).
    const attachHere = extra.filter((cb) => cb.attachedTo !== this);
    for (const cb of attachHere) cb.checkAttachable(this);
    // A checkpoint is read, verified and checked against this fit before anything changes.
    const resumed: PreparedResume | null = resumeFrom !== undefined ? prepareResume(this, callbacks, nEpochs, recipe, resumeFrom) : null;
    const { train } = this.data;
    const valid = this.data.valid ?? null;
    const viz = watch?.observer;
    if (viz) {
      // Before anything changes: a server that cannot bind its port rejects the fit as a bad option would.
      this.running = true;
      try {
        await viz.runStarting({ callbacks, nEpochs, nTrainBatches: train.nBatches, nValidBatches: valid?.nBatches ?? 0 });
      } catch (e) {
        this.running = false;
        if (watch.owned) await viz.close();
        throw e;
      }
    }
    for (const cb of attachHere) cb.attach(this);
    if (options.lr !== undefined) this.lr = options.lr;
    if (options.wd !== undefined) this.wd = options.wd;
    const ctx = this.newContext(nEpochs);
    const smoother = new SmoothLoss(options.smoothLoss);
    this.smoother = smoother;
    this.readLastFitLosses = NOTHING_TO_READ;
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
    this.runContext = ctx;
    this.running = true;
    let ended = false;
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
          ...(startEpoch !== undefined ? { firstEpoch: startEpoch } : {}),
          ...(resumed ? { resume: resumed.point } : {}),
        },
        ...(states ? { callbackStates: states } : {}),
        ...(resumed ? { callbackStates: resumed.callbackStates, resume: { restore: () => resumed.restore(parts) } } : {}),
        stopRequested: () => this.stopRequested,
        capture: (point) => captureRun(this, callbacks, recipe, point, parts),
        smoothLoss: smoother,
        ...(options.yieldEveryMs !== undefined ? { yieldEveryMs: options.yieldEveryMs } : {}),
        ...(options.inspect ? { inspect: options.inspect } : {}),
        ...(viz?.watchSteps ? { watchSteps: viz.watchSteps } : {}),
        ...(options.onActor ? { onActor: options.onActor } : {}),
        ...(viz ? { observer: viz.loopObserver } : {}),
        holdUnreadLosses: true,
      });
      // First, before anything can throw: the run's unread losses become the learner's to read when asked (a failed run's go).
      let readLosses = NOTHING_TO_READ;
      if (result.unread && result.status === 'failed') result.unread.release();
      else if (result.unread) readLosses = this.unreadLosses.add(result.unread);
      this.readLastFitLosses = readLosses;
      const c = result.context;
      ended = true;
      await viz?.runEnded({ status: result.status, error: result.error, epochs: result.epochsDone, iterations: c.iteration });
      if (result.status === 'failed') throw result.error!;
      return fitResult(
        {
          status: result.status,
          epochs: result.epochsDone,
          iterations: result.trainBatches,
          metrics: ctx.lastMetrics,
          resumedFrom: resumed ? { ...resumed.resumedFrom } : null,
        },
        smoother,
        readLosses,
      );
    } catch (e) {
      // The watcher hears of a run that never reached its end too (an internal error of the loop).
      if (viz && !ended) await viz.runEnded({ status: 'failed', error: e as Error, epochs: 0, iterations: 0 }).catch(() => {});
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.running = false;
      this.engine = null;
      this.runContext = null;
      for (const cb of attachHere) cb.attach(null);
      if (watch?.owned) await watch.observer.close();
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
  async fitOneCycle(nEpochs: number, options: FitOneCycleOptions = {}): Promise<FitResult> {
    this.assertUsable('fitOneCycle');
    return fitOneCycle(this, nEpochs, options);
  }

  /** fastai's lr_find: a mock run with an exponentially growing lr, then suggestions; leaves the learner as it was (src/lrFind.ts). */
  async lrFind(options: LrFindOptions = {}): Promise<LrFindResult> {
    this.assertUsable('lrFind');
    return lrFind(this, options);
  }

  /** The dry run: every stage of a fit, with this learner's callbacks (plus `extra`, as fit's options.callbacks) in run order, the controls that may come from each stage and the guards read there (src/dryRun.ts). */
  describeLoop(extra: Callback[] = []): string {
    this.assertUsable('describeLoop');
    return describeLoop([...this.callbacks, ...extra]);
  }

  /**
   * Every callback's `getState()`, keyed by name (`Name#2` for a second one of the same name),
   * for a checkpoint; `fit(n, { startEpoch, callbackStates })` restores them. The default
   * Progress (stateless, there unless `progress: false`) is left out.
   */
  callbackStates(extra: Callback[] = []): Record<string, Record<string, unknown>> {
    this.assertUsable('callbackStates');
    // Callbacks' records of the batches so far are complete only once their losses are read.
    this.readPendingLosses();
    const out: Record<string, Record<string, unknown>> = {};
    // The default Progress keeps no state and is there by default, not by the run's design:
    // left out, a checkpoint resumes alike with or without it (progress: false).
    const saved = [...this.callbacks, ...extra].filter((cb) => !(this.#ownProgress && cb === this.progress));
    stateKeys(saved).forEach((key, cb) => (out[key] = cb.getState()));
    return out;
  }

  /**
   * The smoothed train loss's state, live during a fit (a checkpoint saves it), else as the last
   * fit left it. Reads that fit's losses if no callback did (one host read for every fit not read yet).
   */
  smoothLossState(): SmoothLossState | null {
    this.readPendingLosses();
    if (!this.runContext) this.readLastFitLosses();
    return this.smoother?.getState() ?? null;
  }

  /** During a fit: reads the train losses still on the device (src/loop/lossLog.ts), so states taken now are whole. */
  private readPendingLosses(): void {
    if (this.runContext) void this.runContext.smoothLoss;
  }

  /** A fit is running on this learner (between fit's start and its settling). */
  get fitting(): boolean {
    return this.running;
  }

  /**
   * Puts back a smoothed-loss state taken with `smoothLossState()` (null: as before any fit).
   * `lrFind` uses it so the search's losses do not become the learner's; refused during a fit.
   */
  restoreSmoothLossState(state: SmoothLossState | null): void {
    if (this.running) throw new ConfigError('restoreSmoothLossState: a fit is running on this learner; call it after the fit');
    this.smoother = state === null ? null : new SmoothLoss(state);
    this.readLastFitLosses = NOTHING_TO_READ;
  }

  /**
   * The loss and metrics of the model on the validation set, or on `loader` (fastai's
   * `Learner.validate`): `{ validLoss, <metric name>: value, … }`, each the mean over every
   * sample the loader serves (batch means weighted by batch size, as the loop's validation
   * pass). The model runs in inference mode (dropout off); no callback runs. Nothing changes:
   * not the weights, the optimizer, any random stream, nor the loader's shuffle (its batches
   * are read in its current epoch's order). Not during a fit: read `ctx.lastMetrics` there.
   */
  validate(loader?: DataLoader): Record<string, number> {
    const data = this.inferenceLoader('validate', loader, false);
    return evaluateLoader(this.model, data, this.loss.fn, this.metrics);
  }

  /**
   * Every prediction on the validation set, or on `loader`, with its target (fastai's
   * `get_preds`): `preds` [n, ...output] and `targets` [n, ...target] in loader order (the
   * batches in the order of the loader's current epoch, so a shuffled loader gives that
   * epoch's order; `preds[i]` belongs to `targets[i]`; `dropLast` leaves its samples out).
   * Inference mode, nothing changes (as `validate`). The caller owns both tensors: dispose them.
   */
  getPreds(loader?: DataLoader): { preds: tf.Tensor; targets: tf.Tensor } {
    const data = this.inferenceLoader('getPreds', loader, true);
    return predictLoader(this.model, data);
  }

  /**
   * The model's output for one sample or a batch (a tensor, a nested array, or a flat typed
   * array of the sample's size or a multiple of it; see src/engine/predict.ts), in inference
   * mode: `{ output, classes, batch }`. `classes` holds the argmax class of each sample when
   * the loss is a cross-entropy (a classifier), else null. The caller owns `output`: dispose it.
   * The input is not disposed. Nothing else changes.
   */
  predict(x: PredictInput): Prediction {
    this.assertUsable('predict');
    this.assertIdle('predict');
    const classifier = this.loss.name === 'categoricalCrossentropy' || this.loss.name === 'sparseCategoricalCrossentropy';
    return predict(this.model, x, classifier);
  }

  /**
   * Writes the model in TensorFlow.js's own format, `<dir>/model.json` + its weights file, so
   * `tf.loadLayersModel` reads it (`loadModelFiles(dir)` in Node, the URL of model.json in a
   * browser). Atomic: an earlier export in `dir` is replaced whole or not at all
   * (src/io/tfjsModelFiles.ts). Not during a fit (the loop would step the weights while they
   * are read).
   */
  async exportModel(dir: string): Promise<ExportedModel> {
    this.assertUsable('exportModel');
    this.assertIdle('exportModel');
    return exportModel(this.model, dir);
  }

  /**
   * Frees the model's weights and the optimizer's state (gradients live only during a fit
   * and are freed when it ends) and detaches the callbacks. Afterwards every method throws
   * a ConfigError ("disposed"); a second dispose does nothing. Not during a fit.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.assertIdle('dispose');
    this.#disposed = true;
    // Fits' results still answer their smoothed loss once the learner is gone.
    this.unreadLosses.readAllOrRecord();
    this.model.dispose();
    this.optimizer.dispose();
    for (const cb of this.callbacks) cb.attach(null);
  }

  /** Has `dispose()` run? */
  get disposed(): boolean {
    return this.#disposed;
  }

  private assertUsable(what: string): void {
    if (this.#disposed) {
      throw new ConfigError(`learn.${what}: this learner is disposed (its model and optimizer state are freed); build a new Learner`);
    }
  }

  private assertIdle(what: string): void {
    if (this.running) {
      throw new ConfigError(
        `learn.${what}: a fit is running on this learner; call it after fit resolves (a callback reads ctx.lastMetrics for the validation results)`,
      );
    }
  }

  /** The loader validate/getPreds read: `loader`, else the validation set; checked against the model. */
  private inferenceLoader(what: string, loader: DataLoader | undefined, inputsOnly: boolean): DataLoader {
    this.assertUsable(what);
    this.assertIdle(what);
    if (loader !== undefined && !(loader instanceof DataLoader)) {
      throw new ConfigError(`learn.${what}(loader): loader must be a DataLoader (DataLoader.fromArrays / fromTensors), got ${kindOf(loader)}`);
    }
    const data = loader ?? this.data.valid ?? null;
    if (!data) {
      throw new ConfigError(`learn.${what}(): this learner has no validation data; pass a DataLoader (learn.${what}(loader)) or set data.valid`);
    }
    this.checkLoader(loader ? 'the given' : 'valid', data, inputsOnly);
    return data;
  }

  /** The default Progress sits out a fit that has another Progress, so progress is drawn once. */
  private withoutSecondProgress(callbacks: Callback[]): Callback[] {
    if (!this.#ownProgress) return callbacks;
    const another = callbacks.some((cb) => cb instanceof Progress && cb !== this.progress);
    return another ? callbacks.filter((cb) => cb !== this.progress) : callbacks;
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
  /** `learn.data` is assignable, so it is checked at every fit (and lrFind), before anything changes. */
  checkData(): void {
    const data = this.data as unknown;
    if (typeof data !== 'object' || data === null || !((data as LearnerData).train instanceof DataLoader)) {
      throw new ConfigError(`learn.data must be { train: DataLoader, valid?: DataLoader }, got ${describeData(data)}; build loaders with DataLoader.fromArrays or datasets.mnist`);
    }
    const { train, valid } = data as LearnerData;
    if (valid !== undefined && valid !== null && !(valid instanceof DataLoader)) {
      throw new ConfigError(`learn.data.valid must be a DataLoader, null or left out, got ${describeData(valid)}`);
    }
    for (const [name, loader] of [['train', train], ['valid', valid]] as const) {
      if (loader) this.checkLoader(name, loader);
    }
  }

  /** One loader against the model's input and, unless `inputsOnly`, its targets against the output and the loss. */
  private checkLoader(name: string, loader: DataLoader, inputsOnly = false): void {
    const inputShape = this.model.inputs[0]!.shape.slice(1);
    const outputShape = this.model.outputs[0]!.shape.slice(1) as number[];
    if (loader.length === 0) throw new DataError(`${name} data is empty: give at least one sample`);
    const sample = loader.sampleShape;
    const matches = sample.length === inputShape.length && inputShape.every((d, i) => d === null || d === sample[i]);
    if (!matches) {
      throw new DataError(
        `${name} input samples have shape [${sample}] but the model expects [${inputShape.map((d) => d ?? '?')}]; ` +
          'reshape the data (DataLoader xShape) or build the model with a matching inputShape',
      );
    }
    if (!inputsOnly) checkTargets(this.loss.name, outputShape, loader.targetShape, loader.targetDtype, loader.labelRange());
  }
}

/** What a value is, for a message, without serialising it (a tensor or a loader may be large or circular). */
function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `a ${(v as object).constructor?.name ?? 'object'}`;
  return typeof v;
}

