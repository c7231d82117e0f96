/**
 * Contender (g): the machine and its driver alone, with a tensor-free engine, so what is left
 * is the loop's own cost per train batch cycle (7 NEXT events, every stage's hooks).
 */
import { runLoop } from '../src/loop/runLoop.js';
import { HookTable } from '../src/loop/hookTable.js';
import { Callback } from '../src/loop/callback.js';
import { newTrainContext } from '../src/loop/context.js';
import type { LoopEngine } from '../src/loop/engine.js';
import type { LearnerApi } from '../src/loop/learnerApi.js';

/** Does nothing, as fast as it can: what remains is the driver and the machine. */
export class NoWorkEngine implements LoopEngine {
  private kept = 0;
  orderEpoch() {}
  loadBatch() {}
  forward() {}
  computeLoss() {}
  keepLoss(train: boolean) {
    if (train) this.kept += 1;
  }
  readKeptLosses() {
    const read = new Float32Array(this.kept).fill(1);
    this.kept = 0;
    return read;
  }
  readLoss() {
    return 1;
  }
  markLossForBackward() {}
  underTape(run: () => void) {
    run();
  }
  accumulateGradients() {}
  dropGradients() {}
  step() {}
  keepGradients() {}
  zeroGradients() {}
  startValidation() {}
  accumulateMetrics() {}
  finalizeMetrics() {
    return { validLoss: 1 };
  }
  releaseBatch() {}
  releaseRun() {}
}

/** A callback with a hook at every stage that does nothing (the "10 no-op callbacks" of contender e). */
export class NoOpCallback extends Callback {
  onTrainBegin() {}
  onEpochBegin() {}
  onBatchBegin() {}
  onLossBegin() {}
  onBackwardBegin() {}
  onBackwardEnd() {}
  onStepEnd() {}
  onBatchEnd() {}
  onValidateBegin() {}
  onValidateEnd() {}
  onEpochEnd() {}
  onTrainEnd() {}
}

export function noOpCallbacks(n: number): Callback[] {
  return Array.from({ length: n }, () => new NoOpCallback());
}

/**
 * A tensor-free engine whose step reads and writes `mb` MB of memory, as a real batch's kernels
 * stream its tensors through the caches: the loop's own code and data are then cold at every
 * batch, as they are between real kernels. It times its own steps (`stepMs`), so what the loop
 * costs is the rest.
 */
export class CacheEvictingEngine extends NoWorkEngine {
  private readonly memory: Float64Array;
  private readonly sum = new Float64Array(1);
  /** Time spent in step(), ms. */
  stepMs = 0;
  constructor(mb: number) {
    super();
    this.memory = new Float64Array((mb * 1024 * 1024) / 8);
  }
  override step() {
    const started = performance.now();
    // One write per 64-byte line; the running sum stays unboxed (no allocation, no GC).
    const m = this.memory;
    let s = 0;
    for (let i = 0; i < m.length; i += 8) {
      s += m[i]!;
      m[i] = s;
    }
    this.sum[0]! += s;
    this.stepMs += performance.now() - started;
  }
}

/** µs per train batch cycle of the machine and driver (10 no-op callbacks) with the caches evicted by every step. */
export async function machineAloneCacheColdMicros(mb: number, nTrainBatches: number): Promise<number> {
  const engine = new CacheEvictingEngine(mb);
  const ctx = newTrainContext({} as LearnerApi, 1, nTrainBatches);
  const started = performance.now();
  await runLoop({
    engine,
    table: new HookTable(noOpCallbacks(10)),
    ctx,
    input: { nEpochs: 1, nTrainBatches, nValidBatches: 0, validate: false },
  });
  return ((performance.now() - started - engine.stepMs) * 1000) / nTrainBatches;
}

/**
 * µs per train batch cycle of the bare machine and driver with `nCallbacks` no-op callbacks
 * (`live`: on XState's live actor, as when the loop is inspected, instead of the resolved one).
 */
export async function machineAloneMicros(nCallbacks: number, nTrainBatches: number, live = false): Promise<number> {
  const callbacks = noOpCallbacks(nCallbacks);
  const ctx = newTrainContext({} as LearnerApi, 1, nTrainBatches);
  const started = performance.now();
  await runLoop({
    engine: new NoWorkEngine(),
    table: new HookTable(callbacks),
    ctx,
    input: { nEpochs: 1, nTrainBatches, nValidBatches: 0, validate: false },
    ...(live ? { liveActor: true } : {}),
  });
  return ((performance.now() - started) * 1000) / nTrainBatches;
}
