import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Callback } from '../src/loop/callback.js';
import { ControlError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import {
  expectedRun,
  stagesOf,
  tinyLearner,
  TRAIN_BATCH,
  TraceCallback,
  VALID_BATCH,
  weightsOf,
  type TraceEntry,
} from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const at = (epoch: number, batch: number) => (ctx: TrainContext) => ctx.train && ctx.epoch === epoch && ctx.batchIndex === batch;

/** Watches the weights around one train batch. */
class WeightWatch extends Callback {
  before: Float32Array[] = [];
  after: Float32Array[] = [];
  constructor(private readonly when: (ctx: TrainContext) => boolean) {
    super();
  }
  onBatchBegin(ctx: TrainContext) {
    if (this.when(ctx)) this.before = weightsOf(this.learn);
  }
  onBatchEnd(ctx: TrainContext) {
    if (this.when(ctx)) this.after = weightsOf(this.learn);
  }
  changed() {
    return this.before.some((w, i) => w.some((v, j) => v !== this.after[i]![j]));
  }
}

async function run(plan: ConstructorParameters<typeof TraceCallback>[3], nEpochs = 2, watch?: WeightWatch) {
  const trace: TraceEntry[] = [];
  const learn = tinyLearner([new TraceCallback('t', trace, 0, plan), ...(watch ? [watch] : [])]);
  const result = await learn.fit(nEpochs);
  return { trace, stages: stagesOf(trace, 't'), result, learn };
}

/** The expected run with the stages of train batch (epoch 0, batch 1) replaced. */
function withBatch1(stages: string[]) {
  const full = expectedRun(2, 3, 2);
  const start = 2 + TRAIN_BATCH.length; // trainBegin, epochBegin, batch 0
  return [...full.slice(0, start), ...stages, ...full.slice(start + TRAIN_BATCH.length)];
}

describe('flow control (contract §3), one test per control', () => {
  it('a normal batch changes the weights (so the checks below can fail)', async () => {
    const watch = new WeightWatch(at(0, 1));
    await run({}, 2, watch);
    expect(watch.changed()).toBe(true);
  });

  for (const [stage, kept] of [
    ['batchBegin', ['batchBegin', 'batchEnd']],
    ['lossBegin', ['batchBegin', 'lossBegin', 'batchEnd']],
    ['backwardBegin', ['batchBegin', 'lossBegin', 'backwardBegin', 'batchEnd']],
    ['backwardEnd', ['batchBegin', 'lossBegin', 'backwardBegin', 'backwardEnd', 'batchEnd']],
  ] as const) {
    it(`cancelBatch from ${stage}: rest of the batch skipped, no step, batchEnd still runs`, async () => {
      const watch = new WeightWatch(at(0, 1));
      const { stages, result } = await run({ [stage]: (ctx: TrainContext) => (at(0, 1)(ctx) ? { cancelBatch: true } : undefined) }, 2, watch);
      expect(stages).toEqual(withBatch1(kept as unknown as string[]));
      expect(watch.changed()).toBe(false);
      expect(result.status).toBe('completed');
      expect(result.iterations).toBe(6);
    });
  }

  it('skipBackward: no gradients this batch, backwardEnd and stepEnd still run, weights unchanged', async () => {
    const watch = new WeightWatch(at(0, 1));
    let gradsAtBackwardEnd: unknown = 'unset';
    const { stages } = await run(
      {
        backwardBegin: (ctx) => (at(0, 1)(ctx) ? { skipBackward: true } : undefined),
        backwardEnd: (ctx) => {
          if (at(0, 1)(ctx)) gradsAtBackwardEnd = ctx.learn.grads;
        },
      },
      2,
      watch,
    );
    expect(stages).toEqual(expectedRun(2, 3, 2));
    expect(gradsAtBackwardEnd).toBeNull();
    expect(watch.changed()).toBe(false);
  });

  it('skipStep: optimizer step not applied, stepEnd still runs', async () => {
    const watch = new WeightWatch(at(0, 1));
    const { stages } = await run({ backwardEnd: (ctx) => (at(0, 1)(ctx) ? { skipStep: true } : undefined) }, 2, watch);
    expect(stages).toEqual(expectedRun(2, 3, 2));
    expect(watch.changed()).toBe(false);
  });

  it('skipZero: gradients are kept and the next batch adds its own to them', async () => {
    let g0: Float32Array[] = [];
    let sumSeen: Float32Array[] = [];
    let g1: Float32Array[] = [];
    const read = (ctx: TrainContext) => ctx.learn.params.map((p) => ctx.learn.grads![p.name]!.dataSync().slice() as Float32Array);
    const { stages } = await run({
      backwardEnd: (ctx) => {
        if (at(0, 0)(ctx)) {
          g0 = read(ctx);
          return { skipStep: true };
        }
        if (at(0, 1)(ctx)) {
          sumSeen = read(ctx);
          // This batch's own gradient, computed independently (weights unchanged since skipStep).
          const { learn } = ctx;
          const { grads } = tf.variableGrads(
            () => learn.loss.fn(learn.model.apply(ctx.lastInput!) as tf.Tensor, ctx.lastTarget!),
            learn.params,
          );
          g1 = learn.params.map((p) => grads[p.name]!.dataSync().slice() as Float32Array);
          tf.dispose(grads);
        }
      },
      stepEnd: (ctx) => (at(0, 0)(ctx) ? { skipZero: true } : undefined),
    });
    expect(stages).toEqual(expectedRun(2, 3, 2));
    expect(g0.length).toBeGreaterThan(0);
    sumSeen.forEach((s, i) => s.forEach((v, j) => expect(v).toBeCloseTo(g0[i]![j]! + g1[i]![j]!, 5)));
  });

  it('stopEpoch: after this batchEnd no more train batches; validation and epochEnd still run', async () => {
    const { stages, result } = await run({ batchEnd: (ctx) => (at(0, 0)(ctx) ? { stopEpoch: true } : undefined) });
    const epoch0 = ['epochBegin', ...TRAIN_BATCH, 'validateBegin(valid)', ...VALID_BATCH, ...VALID_BATCH, 'validateEnd(valid)', 'epochEnd'];
    expect(stages).toEqual(['trainBegin', ...epoch0, ...expectedRun(1, 3, 2).slice(1)]);
    expect(result.status).toBe('completed');
  });

  it('stopEpoch from epochBegin: no train batch at all that epoch', async () => {
    const { stages } = await run({ epochBegin: (ctx) => (ctx.epoch === 0 ? { stopEpoch: true } : undefined) });
    const epoch0 = ['epochBegin', 'validateBegin(valid)', ...VALID_BATCH, ...VALID_BATCH, 'validateEnd(valid)', 'epochEnd'];
    expect(stages).toEqual(['trainBegin', ...epoch0, ...expectedRun(1, 3, 2).slice(1)]);
  });

  it('skipValidate: this epoch has no validation pass, the next one does', async () => {
    const { stages } = await run({ batchBegin: (ctx) => (at(0, 2)(ctx) ? { skipValidate: true } : undefined) });
    const epoch0 = ['epochBegin', ...TRAIN_BATCH, ...TRAIN_BATCH, ...TRAIN_BATCH, 'epochEnd'];
    expect(stages).toEqual(['trainBegin', ...epoch0, ...expectedRun(1, 3, 2).slice(1)]);
  });

  it('stopTraining: the batch finishes, validation and epochEnd run, then trainEnd; status stopped', async () => {
    const { stages, result } = await run({ lossBegin: (ctx) => (at(0, 1)(ctx) ? { stopTraining: true } : undefined) });
    const epoch0 = ['epochBegin', ...TRAIN_BATCH, ...TRAIN_BATCH, 'validateBegin(valid)', ...VALID_BATCH, ...VALID_BATCH, 'validateEnd(valid)', 'epochEnd'];
    expect(stages).toEqual(['trainBegin', ...epoch0, 'trainEnd']);
    expect(result.status).toBe('stopped');
    expect(result.epochs).toBe(1);
    expect(result.iterations).toBe(2);
  });

  it('stopTraining from trainBegin: no epoch runs', async () => {
    const { stages, result } = await run({ trainBegin: () => ({ stopTraining: true }) });
    expect(stages).toEqual(['trainBegin', 'trainEnd']);
    expect(result.status).toBe('stopped');
  });

  it('epoch: N from trainBegin: jumpToEpoch(N) on every callback, then epochs N…', async () => {
    const trace: TraceEntry[] = [];
    const a = new TraceCallback('a', trace, 0, { trainBegin: () => ({ epoch: 1 }) });
    const b = new TraceCallback('b', trace, 1);
    const learn = tinyLearner([a, b]);
    const result = await learn.fit(3);
    const stages = stagesOf(trace, 'b');
    expect(stages.slice(0, 3)).toEqual(['trainBegin', 'jumpToEpoch', 'epochBegin']);
    expect(stagesOf(trace, 'a').slice(0, 3)).toEqual(['trainBegin', 'jumpToEpoch', 'epochBegin']);
    expect(trace.filter((e) => e.stage === 'jumpToEpoch').map((e) => [e.callback, e.epoch])).toEqual([
      ['a', 1],
      ['b', 1],
    ]);
    expect([...new Set(trace.filter((e) => e.stage === 'epochBegin').map((e) => e.epoch))]).toEqual([1, 2]);
    expect(result.epochs).toBe(2);
  });

  it('epoch: N ≥ nEpochs runs no epoch', async () => {
    const { stages, result } = await run({ trainBegin: () => ({ epoch: 2 }) });
    expect(stages).toEqual(['trainBegin', 'jumpToEpoch', 'trainEnd']);
    expect(result.status).toBe('completed');
  });

  for (const bad of [-1, 1.5]) {
    it(`epoch: ${bad} is an error naming callback, stage and key`, async () => {
      const trace: TraceEntry[] = [];
      const learn = tinyLearner([new TraceCallback('t', trace, 0, { trainBegin: () => ({ epoch: bad }) })]);
      const err = await learn.fit(1).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ControlError);
      expect((err as ControlError).message).toMatch(/t\.onTrainBegin.*epoch.*integer ≥ 0/);
      expect(stagesOf(trace, 't')).toEqual(['trainBegin', 'trainEnd']);
    });
  }

  it('an unknown control key is an error naming the callback, the stage and the key', async () => {
    const trace: TraceEntry[] = [];
    const learn = tinyLearner([new TraceCallback('t', trace, 0, { epochBegin: () => ({ stopEpok: true }) as never })]);
    const err = (await learn.fit(1).catch((e: unknown) => e)) as ControlError;
    expect(err).toBeInstanceOf(ControlError);
    expect(err.callback).toBe('t');
    expect(err.stage).toBe('epochBegin');
    expect(err.key).toBe('stopEpok');
    expect(err.message).toContain('unknown control "stopEpok"');
  });

  it('a control returned where it has no meaning is an error, not a silent no-op', async () => {
    const learn = tinyLearner([new TraceCallback('t', [], 0, { batchBegin: () => ({ skipStep: true }) })]);
    const err = (await learn.fit(1).catch((e: unknown) => e)) as ControlError;
    expect(err).toBeInstanceOf(ControlError);
    expect(err.message).toMatch(/"skipStep".*no meaning at batchBegin.*backwardEnd/);
    const learnValid = tinyLearner([new TraceCallback('v', [], 0, { batchBegin: (ctx) => (ctx.train ? undefined : { cancelBatch: true }) })]);
    const errValid = (await learnValid.fit(1).catch((e: unknown) => e)) as ControlError;
    expect(errValid).toBeInstanceOf(ControlError);
    expect(errValid.message).toContain('during validation');
  });
});

describe('ctx.controls: the controls in force, as later hooks of a stage see them', () => {
  it('a later hook sees the skipStep an earlier hook returned; the next batch starts clean', async () => {
    const seen: Array<[number, boolean]> = [];
    const first = new TraceCallback('first', [], 0, { backwardEnd: (ctx) => (ctx.batchIndex === 0 ? { skipStep: true } : undefined) });
    const second = new TraceCallback('second', [], 1, {
      backwardEnd: (ctx) => void seen.push([ctx.batchIndex, ctx.controls.skipStep]),
    });
    await tinyLearner([second, first]).fit(1);
    expect(seen).toEqual([
      [0, true],
      [1, false],
      [2, false],
    ]);
  });
});

describe('hooks must be synchronous plain functions returning plain controls', () => {
  it('an async hook is refused when fit starts', async () => {
    class AsyncHook extends Callback {
      // @ts-expect-error TypeScript already rejects an async hook; this checks the run-time guard JavaScript users get.
      async onEpochEnd() {}
    }
    await expect(tinyLearner([new AsyncHook() as Callback]).fit(1)).rejects.toThrow(/onEpochEnd is async; hooks must be synchronous/);
  });

  it('a hook returning a Promise fails the run with a ControlError', async () => {
    const learn = tinyLearner([new TraceCallback('p', [], 0, { epochEnd: () => Promise.resolve() as never })]);
    const err = (await learn.fit(1).catch((e: unknown) => e)) as ControlError;
    expect(err).toBeInstanceOf(ControlError);
    expect(err.message).toMatch(/returned a Promise/);
  });

  it('a Map or class instance is not a control object', async () => {
    const learn = tinyLearner([new TraceCallback('m', [], 0, { epochEnd: () => new Map([['stopTraining', true]]) as never })]);
    await expect(learn.fit(1)).rejects.toThrow(ControlError);
  });

  it('a misspelled hook is refused, naming the real hook names', async () => {
    class Typo extends Callback {
      onEpochStart() {}
    }
    await expect(tinyLearner([new Typo()]).fit(1)).rejects.toThrow(/onEpochStart, which is not a stage hook.*onEpochBegin/);
  });

  it('a callback class instead of an instance is a ConfigError', async () => {
    class Plain extends Callback {}
    expect(() => tinyLearner([Plain as never])).toThrow(/callbacks must be Callback instances, got the class Plain/);
  });
});

describe('controls are set only by returning them', () => {
  it('writing to ctx.controls fails the run (it is frozen) instead of skipping validation', async () => {
    const learn = tinyLearner([
      new TraceCallback('w', [], 0, {
        batchBegin: (ctx) => {
          (ctx.controls as { skipStep: boolean }).skipStep = true;
        },
      }),
    ]);
    await expect(learn.fit(1)).rejects.toThrow(/w, hook of stage batchBegin.*read only|w, hook of stage batchBegin.*Cannot assign/);
  });

  it('a hook returning a rejecting Promise fails the run without an unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      const learn = tinyLearner([new TraceCallback('r', [], 0, { epochEnd: () => Promise.reject(new Error('save failed')) as never })]);
      await expect(learn.fit(1)).rejects.toThrow(/returned a Promise/);
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('an option field named on… is not taken for a misspelled hook', async () => {
    class WithHandler extends Callback {
      onSaved = () => {};
    }
    await expect(tinyLearner([new WithHandler()]).fit(1)).resolves.toMatchObject({ status: 'completed' });
  });
});
