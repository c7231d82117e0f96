import * as tf from '@tensorflow/tfjs';
import type { DataLoader } from '../data/dataLoader.js';
import { ConfigError } from '../errors.js';
import { checkOneNumber } from './evaluate.js';
import { forward } from './forward.js';
import type { HeldLosses, LoopEngine } from '../loop/engine.js';
import type { TrainContext } from '../loop/context.js';
import type { Metric } from '../metrics.js';
import { stableParamNames } from '../models/paramNames.js';
import type { Optimizer, ParamNames } from '../optim/optimizer.js';

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
 *
 * Ownership of gradient tensors is by identity, not by map: `handed` is every tensor handed to
 * the hooks in `grads` (or set by them), so a map edited in place (`grads[k] = …`) cannot hide
 * the tensor it replaced. Whenever gradients are let go, what goes is `grads` ∪ `handed` minus
 * what is still kept (the carried sum, or the map that replaces them).
 */
export class TfEngine implements LoopEngine {
  readonly params: tf.Variable[];
  /** Every variable of the model (frozen ones too) → its stable name: what the optimizer keys its saved state by. */
  readonly names: ParamNames;
  private current: tf.NamedTensorMap | null = null;
  private handed = new Set<tf.Tensor>();
  private carried: tf.NamedTensorMap | null = null;
  private fresh: tf.NamedTensorMap | null = null;
  private marked: tf.Scalar | null = null;
  /** Tensors this engine made for the current batch (hooks may have replaced the ctx fields). */
  private owned: tf.Tensor[] = [];
  private batchSize = 0;
  /** The train losses the loop has not read yet, on the device. */
  private readonly trainLosses = new KeptScalars();
  /** The current validation batch's loss, and its value once someone read it. */
  private validLoss: tf.Tensor | null = null;
  private validLossValue: number | null = null;
  /** The validation pass so far: per batch its size, loss and metric values (on the device until validateEnd). */
  private validBatches: { n: number; values: tf.Tensor[] }[] = [];

  constructor(private readonly o: TfEngineOptions) {
    this.params = o.model.trainableWeights.map((w) => w.read() as tf.Variable);
    this.names = stableParamNames(o.model);
  }

  /** The gradients backwardEnd hooks see; read-only here, replaced through `setGradients`. */
  get grads(): tf.NamedTensorMap | null {
    return this.current;
  }

  orderEpoch(epoch: number): void {
    this.o.train.orderEpoch(epoch);
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

  computeLoss(_train: boolean): void {
    const { ctx, lossFn } = this.o;
    const output = ctx.lastOutput!;
    const target = ctx.lastTarget!;
    const loss = tf.tidy(() => lossFn(output, target));
    this.owned.push(loss);
    ctx.lastLoss = loss;
  }

  keepLoss(train: boolean): void {
    const loss = this.o.ctx.lastLoss;
    if (!(loss instanceof tf.Tensor) || loss.isDisposed || loss.size !== 1) {
      const what = loss === null ? 'null' : !(loss instanceof tf.Tensor) ? String(loss) : loss.isDisposed ? 'a disposed tensor' : `a tensor of shape [${loss.shape}]`;
      throw new ConfigError(`ctx.lastLoss is ${what} after the hooks of ${this.o.ctx.stage}; a hook that replaces the loss must put a scalar tensor there`);
    }
    // A clone (sharing the data on cpu and with trainchart's wasm kernels) is the log's own: the log may free it whenever it
    // reads, and a hook that frees (or holds on to) ctx.lastLoss cannot take it from the log.
    const kept = tf.keep(loss.clone());
    if (train) this.trainLosses.keep(kept);
    else {
      this.validLoss?.dispose();
      this.validLoss = kept;
      this.validLossValue = null;
    }
  }

  readKeptLosses(): Float32Array {
    return this.trainLosses.read();
  }

  holdKeptLosses(): HeldLosses | null {
    const all = this.trainLosses.take();
    return all ? new HeldLossTensor(all) : null;
  }

  readLoss(): number {
    if (this.validLossValue === null) {
      if (!this.validLoss) throw new ConfigError('no validation loss was kept for this batch');
      this.validLossValue = this.validLoss.dataSync()[0]!;
    }
    return this.validLossValue;
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
    let grads: tf.NamedTensorMap | null;
    if (!fresh) {
      // A copy of the map, not the map: a hook editing `grads` in place must not edit the carried sum.
      grads = carried && { ...carried };
    } else if (!carried) {
      grads = fresh;
    } else {
      const summed: tf.NamedTensorMap = {};
      tf.tidy(() => {
        for (const name of new Set([...Object.keys(carried), ...Object.keys(fresh)])) {
          const a = carried[name];
          const b = fresh[name];
          summed[name] = tf.keep(a && b ? a.add(b) : (a ?? b)!.clone());
        }
      });
      release([fresh]);
      grads = summed;
    }
    this.hand(grads);
  }

  /**
   * `learn.grads = …`: replaces the gradients the step will use. Only at backwardEnd (they exist
   * from there, and the step follows it); what it replaces is freed, except the tensors `grads`
   * still holds and the sum carried by skipZero (which is let go as usual: added to, or zeroed).
   * `null` means no gradients for this step: the carried sum, if any, stays carried.
   */
  setGradients(grads: tf.NamedTensorMap | null): void {
    const { stage, train } = this.o.ctx;
    if (stage !== 'backwardEnd' || !train) {
      throw new ConfigError(
        `learn.grads can only be set at backwardEnd (when the gradients exist and the step has not run), not at ${stage}${train ? '' : ' (validation)'}; ` +
          'replace them in onBackwardEnd',
      );
    }
    if (grads !== null) checkGradients(grads);
    const keep = new Set([...tensorsOf(grads), ...tensorsOf(this.carried)]);
    for (const t of [...this.handed, ...tensorsOf(this.current)]) if (!keep.has(t)) t.dispose();
    this.handed.clear();
    this.hand(grads);
  }

  /** cancelBatch: this batch's gradients go; the sum kept from earlier batches stays. */
  dropGradients(): void {
    if (this.fresh) release([this.fresh]);
    this.fresh = null;
    this.letGo([this.carried]);
  }

  step(): void {
    if (this.current) this.o.optimizer.step(this.params, this.current, this.names);
  }

  /** skipZero: the step's gradients become the carried sum (none set: the old sum stays). */
  keepGradients(): void {
    if (!this.current) {
      this.letGo([this.carried]);
      return;
    }
    const next = this.current;
    const old = this.carried;
    this.carried = next;
    this.letGo([next]);
    if (old) release([old], [next]);
  }

  zeroGradients(): void {
    const { current, carried, handed } = this;
    this.current = this.carried = null;
    // Everything goes, each tensor once: a tensor may be both handed and in a map (and a
    // tf.Variable set as a gradient is not safe to dispose twice).
    for (const t of handed) t.dispose();
    for (const map of [current, carried]) {
      if (!map) continue;
      for (const name in map) {
        const t = map[name]!;
        if (handed.has(t)) continue;
        handed.add(t);
        t.dispose();
      }
    }
    handed.clear();
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
    if (this.carried) release([this.carried], [this.current]);
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
    this.releaseValidation();
  }

  /** Keeps the batch's loss and metric values on the device; validateEnd reads them all at once. */
  accumulateMetrics(): void {
    const { ctx, metrics } = this.o;
    const values: tf.Tensor[] = [tf.keep(this.validLoss!.clone())];
    this.validBatches.push({ n: this.batchSize, values });
    const output = ctx.lastOutput!;
    const target = ctx.lastTarget!;
    for (let i = 0; i < metrics.length; i++) {
      const value = tf.tidy(() => metrics[i]!.fn(output, target));
      try {
        // A per-sample tensor read as its first element would be a silently wrong metric.
        checkOneNumber(value, `metric ${metrics[i]!.name}`);
        // float32 for all: one stack, one read (a metric may compute in int32 or bool).
        values.push(tf.keep(tf.tidy(() => value.reshape([]).cast('float32'))));
      } finally {
        if (value instanceof tf.Tensor) value.dispose();
      }
    }
  }

  /**
   * The pass's validation loss and metrics: one host read of every batch's values, then the
   * size-weighted means summed in float64 in batch order.
   */
  finalizeMetrics(): Record<string, number> {
    const { metrics } = this.o;
    const batches = this.validBatches;
    const width = metrics.length + 1;
    const all = batches.length ? tf.tidy(() => tf.stack(batches.flatMap((b) => b.values))) : null;
    const read = all ? (all.dataSync() as Float32Array) : new Float32Array(0);
    all?.dispose();
    const sums = new Array<number>(width).fill(0);
    let seen = 0;
    batches.forEach((b, j) => {
      for (let i = 0; i < width; i++) sums[i]! += read[j * width + i]! * b.n;
      seen += b.n;
    });
    if (batches.length) this.validLossValue ??= read[(batches.length - 1) * width]!;
    this.releaseValidation();
    const result: Record<string, number> = { validLoss: sums[0]! / seen };
    metrics.forEach((m, i) => (result[m.name] = sums[i + 1]! / seen));
    return result;
  }

  /** Lets go of the validation pass's kept values; the last loss's value stays readable (ctx.lastLossValue). */
  private releaseValidation() {
    for (const b of this.validBatches) for (const t of b.values) t.dispose();
    this.validBatches = [];
    try {
      if (this.validLoss && this.validLossValue === null) this.validLossValue = this.validLoss.dataSync()[0]!;
    } finally {
      this.validLoss?.dispose();
    }
    this.validLoss = null;
  }

  releaseBatch(): void {
    const { ctx } = this.o;
    for (const t of [ctx.lastInput, ctx.lastTarget, ctx.lastOutput, ctx.lastLoss]) t?.dispose();
    for (const t of this.owned) t.dispose();
    this.owned = [];
    ctx.lastInput = ctx.lastTarget = ctx.lastOutput = ctx.lastLoss = null;
  }

  releaseRun(): void {
    // Each part is let go even when one before it throws: tensors are disposed on every path.
    const parts = [
      () => this.releaseBatch(),
      () => this.releaseValidation(),
      () => this.trainLosses.release(),
      () => {
        if (this.fresh) release([this.fresh]);
        this.fresh = null;
      },
      () => this.zeroGradients(),
    ];
    let failure: { error: unknown } | null = null;
    for (const part of parts) {
      try {
        part();
      } catch (error) {
        failure ??= { error };
      }
    }
    if (failure) throw failure.error;
  }

  private hand(grads: tf.NamedTensorMap | null) {
    this.current = grads;
    for (const t of tensorsOf(grads)) this.handed.add(t);
  }

  /** The step's gradients are done with: frees them (and any replaced in place) but what `keep` holds. */
  private letGo(keep: Array<tf.NamedTensorMap | null>) {
    release([{ ...this.current }, [...this.handed]], keep);
    this.current = null;
    this.handed.clear();
  }
}

function tensorsOf(map: tf.NamedTensorMap | null): tf.Tensor[] {
  return map ? Object.values(map) : [];
}

/** Disposes every tensor of `groups` (each counted once) that none of `keep` holds. */
function release(groups: Array<tf.NamedTensorMap | tf.Tensor[]>, keep: Array<tf.NamedTensorMap | null> = []) {
  const kept = new Set(keep.flatMap(tensorsOf));
  const gone = new Set(groups.flatMap((g) => (Array.isArray(g) ? g : Object.values(g))));
  for (const t of gone) if (!kept.has(t)) t.dispose();
}

/** A map set by a hook: tensor values that are still alive, so the step gets what it can use. */
function checkGradients(grads: unknown) {
  if (typeof grads !== 'object' || grads === null || Array.isArray(grads)) {
    throw new ConfigError(`learn.grads must be a map of tensors keyed by variable name (or null), got ${Array.isArray(grads) ? 'an array' : String(grads)}`);
  }
  for (const [name, t] of Object.entries(grads)) {
    if (!(t instanceof tf.Tensor)) throw new ConfigError(`learn.grads["${name}"] is not a tensor (got ${typeof t}); every value must be a gradient tensor`);
    if (t.isDisposed) throw new ConfigError(`learn.grads["${name}"] is a disposed tensor; keep the gradients you set alive (no tf.tidy around the assignment's result)`);
  }
}

/**
 * Scalars kept on the device in order, read in one host read. Every `COMPACT_EVERY` they are
 * stacked (on the device) into one tensor, so a run nobody reads holds a few tensors, not one per batch.
 */
class KeptScalars {
  private static readonly COMPACT_EVERY = 256;
  private scalars: tf.Tensor[] = [];
  private packed: tf.Tensor1D | null = null;

  keep(t: tf.Tensor): void {
    this.scalars.push(t);
    if (this.scalars.length >= KeptScalars.COMPACT_EVERY) this.packed = this.pack();
  }

  read(): Float32Array {
    if (!this.packed && this.scalars.length === 1) {
      // Read every batch (someone asks each time): the scalar itself, no stacking kernels.
      const [only] = this.scalars as [tf.Tensor];
      this.scalars = [];
      try {
        return Float32Array.from(only.dataSync());
      } finally {
        only.dispose();
      }
    }
    const all = this.take();
    if (!all) return new Float32Array(0);
    try {
      return all.dataSync() as Float32Array;
    } finally {
      all.dispose();
    }
  }

  release(): void {
    for (const t of this.scalars) t.dispose();
    this.scalars = [];
    this.packed?.dispose();
    this.packed = null;
  }

  /** Everything kept, as one tensor the caller owns (null: nothing); nothing is kept after. */
  take(): tf.Tensor1D | null {
    const all = this.pack();
    this.packed = null;
    return all;
  }

  /** Everything kept, as one tensor (null: nothing); the parts are let go. */
  private pack(): tf.Tensor1D | null {
    const { scalars, packed } = this;
    if (!scalars.length) return packed;
    // Kept: the loop may pack inside the gradient tape, whose scope would free it on closing.
    const joined = tf.keep(
      tf.tidy(() => {
        const fresh = tf.stack(scalars.map((s) => (s.rank === 0 ? s : s.reshape([]))));
        return packed ? tf.concat([packed, fresh]) : fresh;
      }),
    ) as tf.Tensor1D;
    // Only once packed: a failure above leaves them where release() finds them.
    this.scalars = [];
    for (const t of scalars) t.dispose();
    packed?.dispose();
    return joined;
  }
}

/** Train losses held on the device past their run, as one 1-D tensor (src/loop/unreadLosses.ts). */
class HeldLossTensor implements HeldLosses {
  constructor(private tensor: tf.Tensor1D) {}

  get count(): number {
    return this.tensor.size;
  }

  read(): Float32Array {
    try {
      return Float32Array.from(this.tensor.dataSync());
    } finally {
      this.tensor.dispose();
    }
  }

  release(): void {
    this.tensor.dispose();
  }

  join(later: HeldLosses): HeldLosses {
    if (!(later instanceof HeldLossTensor)) throw new TypeError('HeldLossTensor.join: the later losses are not held by a tfjs engine');
    // Kept: outside any tidy scope the join must outlive whoever calls it. A failed concat leaves both as they were.
    const joined = new HeldLossTensor(tf.keep(tf.concat([this.tensor, later.tensor])));
    this.tensor.dispose();
    later.release();
    return joined;
  }
}
