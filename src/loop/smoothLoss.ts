/**
 * The debiased exponential moving average of the train loss (fastai's SmoothenValue,
 * β = 0.98). Its two numbers are all its state, so a checkpoint restores it exactly.
 */
export interface SmoothLossState {
  beta: number;
  avg: number;
  count: number;
}

export class SmoothLoss {
  private beta: number;
  private avg: number;
  private count: number;

  constructor(state?: SmoothLossState) {
    this.beta = state?.beta ?? 0.98;
    this.avg = state?.avg ?? 0;
    this.count = state?.count ?? 0;
  }

  add(value: number): number {
    this.count += 1;
    this.avg = this.beta * this.avg + (1 - this.beta) * value;
    return this.value;
  }

  /** NaN until the first value: there is nothing to smooth yet. */
  get value(): number {
    return this.count === 0 ? Number.NaN : this.avg / (1 - this.beta ** this.count);
  }

  getState(): SmoothLossState {
    return { beta: this.beta, avg: this.avg, count: this.count };
  }

  /** Continues from a state of `getState` (a checkpoint's), exactly. */
  setState(state: SmoothLossState): void {
    this.beta = state.beta;
    this.avg = state.avg;
    this.count = state.count;
  }
}
