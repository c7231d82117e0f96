/**
 * The loop's work with plain numbers instead of tensors, so the real machine and the real
 * driver can be run hundreds of times a second. Weights are a `number[]`; the gradient of
 * train batch (epoch e, batch b) is a fixed small-integer vector, tagged with the batch it
 * came from, so a step can tell exactly which batches' gradients it summed (skipZero); the
 * learning rate is a power of two, so every weight is exact and "unchanged" means `===`.
 */
import type { LoopEngine } from '../../src/loop/engine.js';
import type { BatchStep } from './traceChecker.js';

export const FAULTABLE = [
  'orderEpoch',
  'loadBatch',
  'forward',
  'computeLoss',
  'keepLoss',
  'readKeptLosses',
  'readLoss',
  'underTape',
  'accumulateGradients',
  'step',
  'keepGradients',
  'zeroGradients',
  'finalizeMetrics',
  'releaseBatch',
  'releaseRun',
] as const;
export type Faultable = (typeof FAULTABLE)[number];

/** Throw from the `call`-th call (1-based) of `method`. */
export interface EngineFaultPlan {
  method: Faultable;
  call: number;
}

interface Grads {
  from: string[];
  g: number[];
}

export const FAKE_LR = 1 / 8;
const DIMS = 3;

/** The gradient of train batch (epoch, batchIndex): distinct small integers, so sums stay exact. */
export function fakeGradient(epoch: number, batchIndex: number): number[] {
  return [epoch * 7 + batchIndex + 1, ((batchIndex * 3 + epoch) % 5) + 1, (epoch + 1) * (batchIndex + 2)];
}

export class FakeEngine implements LoopEngine {
  weights: number[] = new Array<number>(DIMS).fill(0);
  /** One record per train batch loaded, in order. */
  readonly steps: BatchStep[] = [];
  fault: { error: Error; afterCalls: number } | null = null;

  private epoch = 0;
  private current: { train: boolean; batchIndex: number; record: (BatchStep & { after: number[] | null; contributors: string[] | null }) | null } | null = null;
  private marked = false;
  private fresh: Grads | null = null;
  private grads: Grads | null = null;
  private carried: Grads | null = null;
  private readonly calls = new Map<string, number>();
  private readonly leaks: string[] = [];
  private releasedRun = 0;
  private validLoss = 0;
  private validSeen = 0;

  constructor(
    private readonly plan: EngineFaultPlan | null = null,
    /** How many hook calls have been made so far (to say where a fault fell in the trace). */
    private readonly hookCalls: () => number = () => 0,
  ) {}

  private enter(method: Faultable) {
    const n = (this.calls.get(method) ?? 0) + 1;
    this.calls.set(method, n);
    if (this.plan && this.fault === null && this.plan.method === method && this.plan.call === n) {
      const error = new Error(`fake ${method} failed (call ${n})`);
      this.fault = { error, afterCalls: this.hookCalls() };
      throw error;
    }
  }

  orderEpoch(epoch: number): void {
    this.enter('orderEpoch');
    this.epoch = epoch;
  }

  loadBatch(train: boolean, batchIndex: number, epoch: number): void {
    this.enter('loadBatch');
    // A batch is named by (epoch, index): a resumed half-done epoch has no startEpoch call.
    if (train) this.epoch = epoch;
    if (this.current) this.leaks.push(`batch ${this.current.batchIndex} was still held when batch ${batchIndex} was loaded`);
    const record = train ? { epoch: this.epoch, batchIndex, before: [...this.weights], after: null, contributors: null } : null;
    if (record) this.steps.push(record);
    this.current = { train, batchIndex, record };
  }

  forward(_train: boolean): void {
    this.enter('forward');
  }

  private loss: number | null = null;

  computeLoss(train: boolean): void {
    this.enter('computeLoss');
    const b = this.current?.batchIndex ?? 0;
    this.loss = train ? 1 / (1 + this.epoch + b) : 0.5 + b / 10;
  }

  /** Train losses kept and not read yet; the validation batch's loss kept. */
  private keptTrain: number[] = [];
  private keptValid: number | null = null;

  keepLoss(train: boolean): void {
    this.enter('keepLoss');
    if (this.loss === null) throw new Error('fake keepLoss: no loss was computed for this batch');
    if (train) this.keptTrain.push(this.loss);
    else this.keptValid = this.loss;
  }

  readKeptLosses(): number[] {
    this.enter('readKeptLosses');
    const read = this.keptTrain;
    this.keptTrain = [];
    return read;
  }

  readLoss(): number {
    this.enter('readLoss');
    if (this.keptValid === null) throw new Error('fake readLoss: no validation loss was kept');
    return this.keptValid;
  }

  markLossForBackward(): void {
    this.marked = true;
  }

  underTape(run: () => void): void {
    this.marked = false;
    run();
    const marked = this.marked;
    this.marked = false;
    this.enter('underTape');
    if (marked && this.current?.train) {
      const { batchIndex } = this.current;
      this.fresh = { from: [`e${this.epoch}b${batchIndex}`], g: fakeGradient(this.epoch, batchIndex) };
    }
  }

  accumulateGradients(): void {
    this.enter('accumulateGradients');
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
    this.grads = { from: [...carried.from, ...fresh.from], g: carried.g.map((x, i) => x + fresh.g[i]!) };
  }

  /** cancelBatch: this batch's gradients go; what skipZero kept from earlier batches stays. */
  dropGradients(): void {
    this.fresh = null;
    this.grads = null;
  }

  step(): void {
    this.enter('step');
    if (!this.grads) return;
    const g = this.grads.g;
    this.weights = this.weights.map((w, i) => w - FAKE_LR * g[i]!);
    const record = this.current?.record;
    if (record) record.contributors = [...this.grads.from];
  }

  keepGradients(): void {
    this.enter('keepGradients');
    this.carried = this.grads;
    this.grads = null;
  }

  zeroGradients(): void {
    this.enter('zeroGradients');
    this.grads = null;
    this.carried = null;
  }

  /** Resume: the gradients a checkpoint kept (skipZero) are kept again, tagged with their batches. */
  restoreCarried(from: readonly string[]): void {
    if (from.length === 0) return;
    const g = new Array<number>(DIMS).fill(0);
    for (const key of from) {
      const [e, b] = key.slice(1).split('b').map(Number) as [number, number];
      fakeGradient(e, b).forEach((x, i) => (g[i]! += x));
    }
    this.carried = { from: [...from], g };
  }

  startValidation(): void {
    this.validLoss = 0;
    this.validSeen = 0;
  }

  accumulateMetrics(): void {
    this.validLoss += 0.5;
    this.validSeen += 1;
  }

  finalizeMetrics(): Record<string, number> {
    this.enter('finalizeMetrics');
    return { validLoss: this.validSeen ? this.validLoss / this.validSeen : Number.NaN };
  }

  releaseBatch(): void {
    this.release();
    this.enter('releaseBatch');
  }

  private release() {
    if (this.current?.record) this.current.record.after = [...this.weights];
    this.current = null;
    this.loss = null;
  }

  /** trainEnd: whatever path the run took, nothing may stay held (the contract's "disposed on every path"). */
  releaseRun(): void {
    this.releasedRun++;
    this.release();
    this.fresh = this.grads = this.carried = null;
    this.enter('releaseRun');
  }

  /** What the run failed to release: every batch before the next one, everything once at trainEnd. */
  leftovers(): string[] {
    const out = [...this.leaks];
    if (this.releasedRun !== 1) out.push(`releaseRun ran ${this.releasedRun} times, not once`);
    if (this.current) out.push(`batch ${this.current.train ? 'train' : 'valid'} ${this.current.batchIndex} still loaded`);
    if (this.fresh || this.grads || this.carried) out.push('gradients still held');
    return out;
  }
}
