import type { LearnerApi } from '../../src/loop/learnerApi.js';
import * as tf from '@tensorflow/tfjs';
import { Callback, type HookResult } from '../../src/loop/callback.js';
import { DataLoader } from '../../src/data/dataLoader.js';
import { Learner, type LearnerOptions } from '../../src/learner.js';
import type { TrainContext } from '../../src/loop/context.js';
import { STAGES, hookNameOf, type Stage } from '../../machines/stages.js';

export interface TraceEntry {
  stage: Stage | 'jumpToEpoch';
  callback: string;
  epoch: number;
  batchIndex: number;
  train: boolean;
  iteration: number;
}

type Plan = Partial<Record<Stage, (ctx: TrainContext) => HookResult>>;

/**
 * Records every hook call as (stage, callback, epoch, batchIndex, train) into a shared
 * trace; `plan` makes chosen stages return controls or throw.
 */
export class TraceCallback extends Callback {
  constructor(
    readonly label: string,
    readonly trace: TraceEntry[],
    order = 0,
    readonly plan: Plan = {},
  ) {
    super();
    this.order = order;
    for (const stage of STAGES) {
      (this as unknown as Record<string, unknown>)[hookNameOf(stage)] = (ctx: TrainContext) => {
        this.trace.push({
          stage,
          callback: this.label,
          epoch: ctx.epoch,
          batchIndex: ctx.batchIndex,
          train: ctx.train,
          iteration: ctx.iteration,
        });
        return this.plan[stage]?.(ctx);
      };
    }
  }

  override get name() {
    return this.label;
  }

  jumpToEpoch(epoch: number) {
    this.trace.push({ stage: 'jumpToEpoch', callback: this.label, epoch, batchIndex: -1, train: true, iteration: -1 });
  }
}

/** A tiny real tfjs problem: 4 features → 3 classes, `nTrain`/`nValid` samples. */
export function tinyProblem(nTrain = 6, nValid = 4, batchSize = 2) {
  const make = (n: number, offset: number) => {
    const x = new Float32Array(n * 4);
    const y = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < 4; j++) x[i * 4 + j] = Math.sin(i * 1.3 + j * 0.7 + offset);
      y[i * 3 + ((i + offset) % 3)] = 1;
    }
    return { x, y };
  };
  const t = make(nTrain, 0);
  const v = make(nValid, 1);
  const train = DataLoader.fromArrays(t.x, t.y, { batchSize, xShape: [4], yShape: [3], shuffle: true, seed: 3 });
  const valid = nValid ? DataLoader.fromArrays(v.x, v.y, { batchSize, xShape: [4], yShape: [3] }) : null;
  return { train, valid };
}

export function tinyModel(seed = 7) {
  return tf.sequential({
    layers: [
      tf.layers.dense({ inputShape: [4], units: 5, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed }) }),
      tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: seed + 1 }) }),
    ],
  });
}

export function tinyLearner(callbacks: Callback[], extra: Partial<LearnerOptions> = {}, nTrain = 6, nValid = 4) {
  const { train, valid } = tinyProblem(nTrain, nValid);
  return new Learner({
    model: tinyModel(),
    data: { train, valid },
    loss: 'categoricalCrossentropy',
    optimizer: 'sgd',
    metrics: ['accuracy'],
    callbacks,
    recorder: false,
    ...extra,
  });
}

/** Stage names of the trace of one callback, e.g. for comparing with an expected list. */
export function stagesOf(trace: TraceEntry[], callback: string): string[] {
  return trace.filter((e) => e.callback === callback).map((e) => (e.train || e.stage === 'jumpToEpoch' ? e.stage : `${e.stage}(valid)`));
}

export const TRAIN_BATCH = ['batchBegin', 'lossBegin', 'backwardBegin', 'backwardEnd', 'stepEnd', 'batchEnd'];
export const VALID_BATCH = ['batchBegin(valid)', 'lossBegin(valid)', 'batchEnd(valid)'];

/** The expected per-callback stage list of an uninterrupted run. */
export function expectedRun(nEpochs: number, nTrain: number, nValid: number, validate = true): string[] {
  const out = ['trainBegin'];
  for (let e = 0; e < nEpochs; e++) {
    out.push('epochBegin');
    for (let b = 0; b < nTrain; b++) out.push(...TRAIN_BATCH);
    if (validate) {
      out.push('validateBegin(valid)');
      for (let b = 0; b < nValid; b++) out.push(...VALID_BATCH);
      out.push('validateEnd(valid)');
    }
    out.push('epochEnd');
  }
  out.push('trainEnd');
  return out;
}

export function weightsOf(learn: Pick<LearnerApi, 'params'>): Float32Array[] {
  return learn.params.map((p) => p.dataSync().slice() as Float32Array);
}

/** A copy of every weight of `model` (trainable or not, `model.getWeights()` order), for a checkpoint. */
export function weightCopies(model: tf.LayersModel): Array<Float32Array | Int32Array> {
  // Copies: on the cpu backend dataSync returns the tensor's own storage.
  return model.getWeights().map((t) => (t.dataSync() as Float32Array | Int32Array).slice());
}

/** Puts `weightCopies` back, by position (tfjs names differ between instances of one architecture). */
export function setWeightCopies(model: tf.LayersModel, copies: ReadonlyArray<Float32Array | Int32Array>): void {
  const current = model.getWeights();
  const tensors = copies.map((values, i) => tf.tensor(values, current[i]!.shape, current[i]!.dtype));
  try {
    model.setWeights(tensors);
  } finally {
    tf.dispose(tensors);
  }
}
