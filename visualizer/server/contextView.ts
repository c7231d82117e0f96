/**
 * What the training thread tells the page about where the run is: the state's path, and the
 * context a hook sees there as plain JSON (tensors by shape and dtype only — reading their
 * values would cost a device sync, and the page does not need them).
 */
import type * as tf from '@tensorflow/tfjs';
import type { TrainContext } from '../../src/loop/context.js';
import type { LoopSnapshot } from '../../src/loop/observer.js';
import type { JsonTensorInfo, PausedContext } from './protocol.js';

type StateValue = LoopSnapshot['value'] | string | { [key: string]: unknown };

/** `{ epoch: { train: 'lossBegin' } }` → `epoch.train.lossBegin` (the loop has no parallel states). */
export function statePathOf(value: StateValue): string {
  let path = '';
  let v: unknown = value;
  while (typeof v === 'object' && v !== null) {
    const key = Object.keys(v)[0];
    if (key === undefined) break;
    path += key + '.';
    v = (v as Record<string, unknown>)[key];
  }
  return path + String(v);
}

/** JSON has no NaN or Infinity: those are sent as null. */
export const finite = (v: number | null | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

function tensorInfo(t: tf.Tensor | null): JsonTensorInfo | null {
  return t ? { shape: [...t.shape], dtype: t.dtype } : null;
}

export function pausedContext(ctx: TrainContext): PausedContext {
  const metrics = ctx.lastMetrics;
  return {
    stage: ctx.stage,
    epoch: ctx.epoch,
    nEpochs: ctx.nEpochs,
    iteration: ctx.iteration,
    batchIndex: ctx.batchIndex,
    nBatches: ctx.nBatches,
    train: ctx.train,
    smoothLoss: finite(ctx.smoothLoss),
    lastLossValue: finite(ctx.lastLossValue),
    lastMetrics: metrics ? Object.fromEntries(Object.entries(metrics).map(([k, v]) => [k, finite(v)])) : null,
    controls: { ...ctx.controls },
    lr: ctx.learn.lr,
    momentum: ctx.learn.momentum,
    wd: ctx.learn.wd,
    lastInput: tensorInfo(ctx.lastInput),
    lastTarget: tensorInfo(ctx.lastTarget),
    lastOutput: tensorInfo(ctx.lastOutput),
    lastLoss: tensorInfo(ctx.lastLoss),
    error: ctx.error ? ctx.error.message : null,
  };
}
