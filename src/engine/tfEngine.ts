import * as tf from '@tensorflow/tfjs';
import type { DataLoader } from '../data/dataLoader.js';
import { forward } from './forward.js';
import type { LoopEngine } from '../loop/engine.js';
import type { TrainContext } from '../loop/context.js';
import type { Metric } from '../metrics.js';
import type { Optimizer } from '../optim/optimizer.js';

export interface TfEngineOptions {
  model: tf.LayersModel;
  lossFn: (yPred: tf.Tensor, yTrue: tf.Tensor) => tf.Scalar;
  metrics: readonly Metric[];
  optimizer: Optimizer;
  train: DataLoader;
  valid: DataLoader | null;
  ctx: TrainContext;
}

/**
 * The tfjs work of the loop. Gradients are explicit so each stage means what the contract
 * says: `grads` is what backwardEnd hooks see (and may replace, e.g. to clip), `carried`
 * what skipZero kept from earlier batches.
 */
export class TfEngine implements LoopEngine {
  readonly params: tf.Variable[];
  grads: tf.NamedTensorMap | null = null;
  private carried: tf.NamedTensorMap | null = null;
  private fresh: tf.NamedTensorMap | null = null;
  private marked: tf.Scalar | null = null;
  /** Tensors this engine made for the current batch (hooks may have replaced the ctx fields). */
  private owned: tf.Tensor[] = [];
  private batchSize = 0;
  private lossSum = 0;
  private seen = 0;
  private metricSums: number[] = [];

  constructor(private readonly o: TfEngineOptions) {
    this.params = o.model.trainableWeights.map((w) => w.read() as tf.Variable);
  }

  startEpoch(epoch: number): void {
    this.o.train.startEpoch(epoch);
  }

  loadBatch(train: boolean, batchIndex: number, epoch: number): void {
    const loader = train ? this.o.train : this.o.valid!;
    // The epoch is named, not remembered from epochBegin: a resumed half-done epoch has none.
    const { x, y, size } = loader.batch(batchIndex, epoch);
    this.owned.push(x, y);
    this.batchSize = size;
    this.o.ctx.lastInput = x;
    this.o.ctx.lastTarget = y;
  }

  forward(train: boolean): void {
    const { ctx, model } = this.o;
    const input = ctx.lastInput!;
    // tidy frees the layers' intermediates; the tape (when open) still holds what backprop needs.
    const out = tf.tidy(() => forward(model, input, train));
    this.owned.push(out);
    ctx.lastOutput = out;
  }

  computeLoss(_train: boolean): number {
    const { ctx, lossFn } = this.o;
    const output = ctx.lastOutput!;
    const target = ctx.lastTarget!;
    const loss = tf.tidy(() => lossFn(output, target));
    this.owned.push(loss);
    ctx.lastLoss = loss;
    return loss.dataSync()[0]!;
  }

  markLossForBackward(): void {
    this.marked = this.o.ctx.lastLoss;
  }

  underTape(run: () => void): void {
    this.marked = null;
    let placeholder: tf.Scalar | null = null;
    try {
      // engine().gradients rather than variableGrads: when no loss was marked (cancelBatch,
      // skipBackward, a failure) it still runs to the end, which is what frees the tensors
      // the tape saved for backprop; leaving the tape by throwing would leak them.
      const { value, grads } = tf.engine().gradients(
        () => {
          run();
          // What hooks made inside the tape must outlive it: batchEnd hooks still read them.
          this.keepBatchTensors();
          if (this.marked) return this.marked;
          placeholder = tf.keep(tf.scalar(0));
          return placeholder;
        },
        this.params,
        undefined,
        true,
      );
      if (value === placeholder) {
        for (const g of grads) g?.dispose();
        return;
      }
      const fresh: tf.NamedTensorMap = {};
      this.params.forEach((p, i) => {
        const g = grads[i];
        if (g) fresh[p.name] = g;
      });
      this.fresh = fresh;
    } finally {
      (placeholder as tf.Scalar | null)?.dispose();
      this.marked = null;
    }
  }

  private keepBatchTensors() {
    const { ctx } = this.o;
    for (const t of [ctx.lastInput, ctx.lastTarget, ctx.lastOutput, ctx.lastLoss]) {
      if (t && !t.isDisposed) tf.keep(t);
    }
    for (const t of this.owned) if (!t.isDisposed) tf.keep(t);
  }

  accumulateGradients(): void {
    const { fresh, carried } = this;
    this.fresh = null;
    if (!fresh) {
      this.grads = carried;
      return;
    }
    if (!carried) {
      this.grads = fresh;
      return;
    }
    const summed: tf.NamedTensorMap = {};
    tf.tidy(() => {
      for (const name of new Set([...Object.keys(carried), ...Object.keys(fresh)])) {
        const a = carried[name];
        const b = fresh[name];
        summed[name] = tf.keep(a && b ? a.add(b) : (a ?? b)!.clone());
      }
    });
    disposeMap(fresh);
    this.grads = summed;
  }

  /** Replaces the gradients backwardEnd hooks see (e.g. clipped ones); the old ones are freed. */
  setGradients(grads: tf.NamedTensorMap): void {
    if (this.grads && this.grads !== grads) disposeMap(this.grads, [grads, this.carried]);
    this.grads = grads;
  }

  dropGradients(): void {
    if (this.fresh) disposeMap(this.fresh);
    this.fresh = null;
    if (this.grads && this.grads !== this.carried) disposeMap(this.grads, [this.carried]);
    this.grads = null;
  }

  step(): void {
    if (this.grads) this.o.optimizer.step(this.params, this.grads);
  }

  keepGradients(): void {
    if (this.grads === this.carried) return;
    if (this.carried) disposeMap(this.carried, [this.grads]);
    this.carried = this.grads;
    this.grads = null;
  }

  zeroGradients(): void {
    if (this.grads && this.grads !== this.carried) disposeMap(this.grads, [this.carried]);
    if (this.carried) disposeMap(this.carried);
    this.grads = null;
    this.carried = null;
  }

  /**
   * The gradients `skipZero` keeps for the next batch to add to, by parameter position (tfjs
   * names differ between two instances of one model), copied — a checkpoint at a quiet point
   * saves them, so a resume in the middle of an accumulation group steps exactly as the
   * uninterrupted run. Null when none are kept.
   */
  carriedGradients(): Array<{ index: number; name: string; shape: number[]; values: Float32Array }> | null {
    const carried = this.carried;
    if (!carried) return null;
    const out: Array<{ index: number; name: string; shape: number[]; values: Float32Array }> = [];
    this.params.forEach((p, index) => {
      const g = carried[p.name];
      if (g) out.push({ index, name: p.name, shape: [...g.shape], values: (g.dataSync() as Float32Array).slice() });
    });
    return out;
  }

  /** Resume: the kept gradients of a checkpoint (as `carriedGradients` gave them) are kept again. */
  restoreCarriedGradients(saved: ReadonlyArray<{ index: number; shape: number[]; values: Float32Array }> | null): void {
    if (this.carried) disposeMap(this.carried, [this.grads]);
    this.carried = null;
    if (!saved) return;
    const map: tf.NamedTensorMap = {};
    for (const { index, shape, values } of saved) {
      const p = this.params[index];
      if (!p) throw new Error(`a kept gradient is for parameter ${index}, but the model has ${this.params.length}`);
      map[p.name] = tf.tensor(values.slice(), shape, 'float32');
    }
    this.carried = map;
  }

  startValidation(): void {
    this.lossSum = 0;
    this.seen = 0;
    this.metricSums = this.o.metrics.map(() => 0);
  }

  accumulateMetrics(): void {
    const { ctx, metrics } = this.o;
    const n = this.batchSize;
    this.lossSum += ctx.lastLossValue! * n;
    this.seen += n;
    const output = ctx.lastOutput!;
    const target = ctx.lastTarget!;
    for (let i = 0; i < metrics.length; i++) {
      const value = tf.tidy(() => metrics[i]!.fn(output, target));
      this.metricSums[i]! += value.dataSync()[0]! * n;
      value.dispose();
    }
  }

  finalizeMetrics(): Record<string, number> {
    const result: Record<string, number> = { validLoss: this.lossSum / this.seen };
    this.o.metrics.forEach((m, i) => (result[m.name] = this.metricSums[i]! / this.seen));
    return result;
  }

  releaseBatch(): void {
    const { ctx } = this.o;
    for (const t of [ctx.lastInput, ctx.lastTarget, ctx.lastOutput, ctx.lastLoss]) t?.dispose();
    for (const t of this.owned) t.dispose();
    this.owned = [];
    ctx.lastInput = ctx.lastTarget = ctx.lastOutput = ctx.lastLoss = null;
  }

  releaseRun(): void {
    this.releaseBatch();
    if (this.fresh) disposeMap(this.fresh);
    this.fresh = null;
    this.zeroGradients();
  }
}

/** Disposes every tensor of `map` that none of `keep` also holds. */
function disposeMap(map: tf.NamedTensorMap, keep: Array<tf.NamedTensorMap | null> = []) {
  for (const [name, t] of Object.entries(map)) {
    if (keep.some((k) => k?.[name] === t)) continue;
    t.dispose();
  }
}
