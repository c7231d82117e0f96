import type * as tf from '@tensorflow/tfjs';
import { Callback } from '../../src/loop/callback.js';
import type { TrainContext } from '../../src/loop/context.js';

/**
 * Scripts the validation metrics: at validateEnd of epoch e, `ctx.lastMetrics[key]` becomes
 * `values[key][e]`. Its order (-100) puts it before every callback that reads the metrics.
 */
export class ScriptedMetrics extends Callback {
  override order = -100;
  constructor(readonly values: Record<string, number[]>) {
    super();
  }
  onValidateEnd(ctx: TrainContext) {
    const metrics = { ...(ctx.lastMetrics ?? {}) };
    for (const [key, series] of Object.entries(this.values)) {
      const v = series[ctx.epoch];
      if (v === undefined) throw new Error(`ScriptedMetrics: no ${key} value for epoch ${ctx.epoch}`);
      metrics[key] = v;
    }
    ctx.lastMetrics = metrics;
  }
}

/** Copies every weight's bytes at each epochEnd (order chosen by the test). */
export class WeightsAtEpochEnd extends Callback {
  byEpoch: Buffer[][] = [];
  constructor(order: number) {
    super();
    this.order = order;
  }
  onEpochEnd(ctx: TrainContext) {
    this.byEpoch[ctx.epoch] = modelBytes(this.learn.model);
  }
}

/** The raw bytes of every weight of `model`, in model order. */
export function modelBytes(model: tf.LayersModel): Buffer[] {
  return model.weights.map((w) => {
    const v = w.read().dataSync() as Float32Array;
    return Buffer.from(v.slice().buffer);
  });
}

export function sameBytes(a: Buffer[], b: Buffer[]): boolean {
  return a.length === b.length && a.every((x, i) => x.equals(b[i]!));
}
