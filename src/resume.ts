/**
 * The two halves of exact resume, as the Learner uses them:
 *
 * - `captureRun`: at a quiet point, everything a run would need to continue from there,
 *   copied out of the learner (weights, optimizer, callbacks, random streams, smoothed loss,
 *   gradients kept by skipZero, the last validation metrics) — a `CapturedRun` the Checkpoint
 *   callback writes.
 * - `prepareResume`: before a fit starts, the checkpoint is read and verified (every file's
 *   sha256), checked against this learner (architecture, optimizer, callbacks, data, seed, …)
 *   and its optimizer and callback states tried on and taken off again, so a refused resume
 *   leaves model, optimizer and callbacks untouched. What it returns restores the state when
 *   the machine reaches its `resume` state (after every onTrainBegin).
 *
 * Both read the learner through the narrow `ResumableLearner` below, not the Learner class.
 */
import type * as tf from '@tensorflow/tfjs';
import { resumePointOf, type PersistedLoopSnapshot } from '../machines/resume.js';
import { trainLoopMachine, type ResumePoint } from '../machines/trainLoop.js';
import type { Callback } from './loop/callback.js';
import { callbackStateKeys } from './callbackKeys.js';
import {
  asCapturedRun,
  checkResumable,
  modelArchitecture,
  modelTopology,
  readCheckpoint,
  resolveCheckpoint,
  weightArrays,
  writeWeights,
  type CapturedRun,
  type FitRecipe,
  type LoadedCheckpoint,
} from './checkpoint/index.js';
import { checkpointError, MANIFEST_FILE } from './checkpoint/format.js';
import type { DataLoader } from './data/dataLoader.js';
import type { TfEngine } from './engine/tfEngine.js';
import type { TrainContext } from './loop/context.js';
import type { QuietPoint } from './loop/quietPoint.js';
import type { SmoothLoss } from './loop/smoothLoss.js';
import { rngStatefulLayers } from './models/seededDropout.js';
import type { Optimizer } from './optim/optimizer.js';
import type { Rng } from './rng.js';
import { join } from 'node:path';
import fs from 'node:fs';

/** What resuming and capturing read of a learner. */
export interface ResumableLearner {
  readonly model: tf.LayersModel;
  readonly optimizer: Optimizer;
  readonly rng: Rng;
  readonly seed: number;
  readonly loss: { name: string };
  readonly metrics: ReadonlyArray<{ name: string }>;
  readonly data: { train: DataLoader; valid?: DataLoader | null };
}

/** The live parts of a fit that a capture reads and a restore writes. */
export interface FitParts {
  engine: TfEngine;
  smoother: SmoothLoss;
  ctx: TrainContext;
}

/** `FitResult.resumedFrom`, `listCheckpoints`' entries: a checkpoint and where it resumes. */
export interface ResumedFrom {
  path: string;
  epoch: number;
  iteration: number;
  batchIndex: number;
}

/** How fitOneCycle tells fit what it is running (a checkpoint records it; a resume must match it). */
export const FIT_RECIPE: unique symbol = Symbol('trainchart.fitRecipe');

export interface PreparedResume {
  point: ResumePoint;
  resumedFrom: ResumedFrom;
  /** The callbacks' states, restored by the machine's resume state after onTrainBegin. */
  callbackStates: Map<Callback, Record<string, unknown>>;
  restore(parts: FitParts): void;
}

/** The state of the whole run at `point`, copied now. */
export function captureRun(learn: ResumableLearner, callbacks: readonly Callback[], recipe: FitRecipe, point: QuietPoint, parts: FitParts): CapturedRun {
  const { model, optimizer, data } = learn;
  const states: Record<string, Record<string, unknown>> = {};
  callbackStateKeys(callbacks).forEach((key, cb) => (states[key] = cb.getState()));
  const valid = data.valid ?? null;
  return {
    kind: 'trainchart-run',
    position: { epoch: point.resume.epoch, iteration: point.resume.iteration, batchIndex: point.resume.batchIndex, nEpochs: point.nEpochs },
    resume: { ...point.resume },
    snapshot: point.snapshot,
    recipe: structuredClone(recipe),
    learner: { seed: learn.seed, loss: learn.loss.name, metrics: learn.metrics.map((m) => m.name) },
    model: { topology: modelTopology(model), architecture: modelArchitecture(model), weights: weightArrays(model) },
    optimizer: { kind: optimizer.kind, config: { ...optimizer.hp }, state: optimizer.getState() },
    callbacks: { names: [...callbackStateKeys(callbacks).values()], states },
    smoothLoss: parts.smoother.getState(),
    random: {
      dataOrder: {
        train: { seed: data.train.getState().seed, shuffle: data.train.shuffle },
        valid: valid ? { seed: valid.getState().seed, shuffle: valid.shuffle } : null,
      },
      learner: learn.rng.getState(),
      layers: rngStatefulLayers(model).map((l) => ({ name: l.name, state: l.getRngState() })),
    },
    data: { train: data.train.describeOrder(), valid: valid ? valid.describeOrder() : null },
    engine: { carriedGradients: parts.engine.carriedGradients() },
    context: { lastMetrics: parts.ctx.lastMetrics ? { ...parts.ctx.lastMetrics } : null },
  };
}

/**
 * Reads, verifies and checks the checkpoint `resumeFrom` names against this fit; throws a
 * CheckpointError and changes nothing when it cannot be resumed from.
 */
export function prepareResume(
  learn: ResumableLearner,
  callbacks: readonly Callback[],
  nEpochs: number,
  recipe: FitRecipe,
  resumeFrom: string,
): PreparedResume {
  const loaded = readCheckpoint(resolveCheckpoint(resumeFrom));
  const keys = callbackStateKeys(callbacks);
  const valid = learn.data.valid ?? null;
  checkResumable(loaded, {
    nEpochs,
    recipe,
    learner: { seed: learn.seed, loss: learn.loss.name, metrics: learn.metrics.map((m) => m.name) },
    architecture: modelArchitecture(learn.model),
    optimizerKind: learn.optimizer.kind,
    callbacks: [...keys.values()],
    data: { train: learn.data.train.describeOrder(), valid: valid ? valid.describeOrder() : null },
    seededLayers: rngStatefulLayers(learn.model).length,
    trainableWeights: learn.model.trainableWeights.length,
  });
  const run = loaded.run;
  const point = checkPoint(loaded);
  checkWeights(loaded, learn.model);
  const callbackStates = new Map<Callback, Record<string, unknown>>();
  keys.forEach((key, cb) => {
    const state = run.callbacks.states[key];
    if (state !== undefined) callbackStates.set(cb, state);
  });
  tryOn(loaded, learn, callbackStates);

  return {
    point,
    resumedFrom: { path: loaded.path, epoch: point.epoch, iteration: point.iteration, batchIndex: point.batchIndex },
    callbackStates,
    restore: ({ engine, smoother, ctx }) => {
      writeWeights(learn.model, run.model.weights);
      learn.optimizer.setState(structuredClone(run.optimizer.state) as never);
      // In place: callbacks may hold the hp object; the config is what the run stepped with last.
      Object.assign(learn.optimizer.hp, run.optimizer.config);
      learn.rng.setState([...run.random.learner] as typeof run.random.learner);
      rngStatefulLayers(learn.model).forEach((layer, i) => layer.setRngState([...run.random.layers[i]!.state] as typeof run.random.learner));
      // ctx.smoothLoss reads the smoother: nothing else to set.
      smoother.setState(run.smoothLoss);
      ctx.lastMetrics = run.context.lastMetrics ? { ...run.context.lastMetrics } : null;
      engine.restoreCarriedGradients(run.engine.carriedGradients);
      // The loader's own "current epoch" (for callers of batch(i) without an epoch).
      learn.data.train.startEpoch(point.epoch);
    },
  };
}

/** The recipe a checkpoint was written by (for fitOneCycle's defaults), or null when it cannot be read cheaply. */
export function checkpointRecipe(resumeFrom: string): FitRecipe | null {
  try {
    const manifest = JSON.parse(fs.readFileSync(join(resolveCheckpoint(resumeFrom), MANIFEST_FILE), 'utf8')) as { run?: { recipe?: FitRecipe } };
    return manifest.run?.recipe ?? null;
  } catch {
    return null; // fit reads it properly and says what is wrong
  }
}

/** The resume point the machine derives from the checkpoint's own snapshot, which must agree with what the manifest says. */
function checkPoint(loaded: LoadedCheckpoint): ResumePoint {
  const file = join(loaded.path, MANIFEST_FILE);
  const run = loaded.run;
  const point = resumePointOf(trainLoopMachine, run.snapshot as PersistedLoopSnapshot);
  if (!point) throw checkpointError('corrupt', file, `${file}: the machine's snapshot is not at a quiet point (a train batchEnd or an epochEnd), so it cannot be resumed from`);
  const p = run.position;
  if (point.epoch !== p.epoch || point.iteration !== p.iteration || point.batchIndex !== p.batchIndex || JSON.stringify(point) !== JSON.stringify(run.resume)) {
    throw checkpointError('corrupt', file, `${file}: the machine's snapshot resumes at epoch ${point.epoch}, batch ${point.batchIndex}, iteration ${point.iteration}, but the manifest says epoch ${p.epoch}, batch ${p.batchIndex}, iteration ${p.iteration}`);
  }
  return point;
}

function checkWeights(loaded: LoadedCheckpoint, model: tf.LayersModel): void {
  const file = join(loaded.path, MANIFEST_FILE);
  const saved = loaded.run.model.weights;
  const now = model.weights;
  const where = `cannot resume from ${file}: the model is another architecture`;
  if (saved.length !== now.length) throw checkpointError('mismatch', file, `${where}: ${saved.length} weights in the checkpoint, ${now.length} in this model`);
  now.forEach((w, i) => {
    const s = saved[i]!;
    const size = s.shape.reduce((a, d) => a * d, 1);
    if (JSON.stringify(s.shape) !== JSON.stringify(w.shape) || s.dtype !== w.dtype || s.values.length !== size) {
      throw checkpointError('mismatch', file, `${where}: weight ${i} (${w.originalName}) is ${s.dtype} [${s.shape.join(', ')}] in the checkpoint, ${w.dtype} [${w.shape.join(', ')}] here`);
    }
  });
}

/**
 * The optimizer's and callbacks' states are put on and taken off again: a state one of them
 * refuses (a different model's slots, a Recorder with ragged series) is refused here, before
 * the fit starts, and everything is as it was.
 */
function tryOn(loaded: LoadedCheckpoint, learn: ResumableLearner, states: Map<Callback, Record<string, unknown>>): void {
  const file = join(loaded.path, MANIFEST_FILE);
  const optimizer = learn.optimizer;
  const before = optimizer.getState();
  const hp = { ...optimizer.hp };
  try {
    optimizer.setState(structuredClone(loaded.run.optimizer.state) as never);
  } catch (e) {
    throw checkpointError('mismatch', file, `cannot resume from ${file}: its optimizer state does not fit this optimizer: ${(e as Error).message}`, e);
  } finally {
    optimizer.setState(before);
    Object.assign(optimizer.hp, hp);
  }
  for (const [cb, state] of states) {
    const mine = cb.getState();
    try {
      cb.setState(structuredClone(state));
    } catch (e) {
      throw checkpointError('mismatch', file, `cannot resume from ${file}: callback ${cb.name} refuses its saved state: ${(e as Error).message}`, e);
    } finally {
      cb.setState(mine);
    }
  }
}

export { asCapturedRun };
