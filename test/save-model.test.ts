import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EarlyStopping } from '../callbacks/earlyStopping.js';
import { SaveModel } from '../callbacks/saveModel.js';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import { loadWeights, readWeights } from '../src/io/weightsFile.js';
import type { TrainContext } from '../src/loop/context.js';
import { modelBytes, sameBytes, ScriptedMetrics, WeightsAtEpochEnd } from './support/scripted.js';
import { tinyLearner, tinyModel } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const dirs: string[] = [];
function tempDir() {
  const d = mkdtempSync(join(tmpdir(), 'trainchart-save-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** After SaveModel at each epochEnd: the bytes the best file holds then (null if none yet). */
class FileAtEpochEnd extends Callback {
  override order = 90;
  held: Array<Buffer[] | null> = [];
  constructor(readonly path: string) {
    super();
  }
  onEpochEnd(ctx: TrainContext) {
    this.held[ctx.epoch] = existsSync(this.path)
      ? readWeights(this.path).values.map((v) => Buffer.from(v.slice().buffer))
      : null;
  }
}

describe('SaveModel', () => {
  it("every 'improvement': the file always holds the weights of the best epoch so far", async () => {
    const dir = join(tempDir(), 'nested', 'runs');
    // Improvements at e0, e1, e3 (validLoss, min mode).
    const validLoss = [1.0, 0.5, 0.7, 0.4, 0.45];
    const save = new SaveModel({ dir, name: 'best' });
    const weights = new WeightsAtEpochEnd(0);
    const file = new FileAtEpochEnd(join(dir, 'best.weights'));
    const learn = tinyLearner([new ScriptedMetrics({ validLoss }), weights, save, file]);
    await learn.fit(5);
    const bestSoFar = [0, 1, 1, 3, 3];
    bestSoFar.forEach((b, e) => expect(sameBytes(file.held[e]!, weights.byEpoch[b]!), `after epoch ${e}`).toBe(true));
    expect(save.saved).toEqual([0, 1, 3].map(() => join(dir, 'best.weights')));
    expect(readdirSync(dir)).toEqual(['best.weights']); // no temp file left behind

    const fresh = tinyModel(42);
    loadWeights(fresh, save.bestPath);
    expect(sameBytes(modelBytes(fresh), weights.byEpoch[3]!)).toBe(true);
    fresh.dispose();
  });

  it("every 'epoch': one file per epoch, name_<epoch>.weights, each with that epoch's weights", async () => {
    const dir = tempDir();
    const save = new SaveModel({ every: 'epoch', dir, name: 'm' });
    const weights = new WeightsAtEpochEnd(0);
    const learn = tinyLearner([weights, save], {}, 6, 0);
    await learn.fit(3);
    expect(readdirSync(dir).sort()).toEqual(['m_0.weights', 'm_1.weights', 'm_2.weights']);
    for (let e = 0; e < 3; e++) {
      const held = readWeights(save.epochPath(e)).values.map((v) => Buffer.from(v.slice().buffer));
      expect(sameBytes(held, weights.byEpoch[e]!)).toBe(true);
    }
  });

  it('saves the epoch that EarlyStopping stops at before the run ends (order 65 < 70)', async () => {
    const dir = tempDir();
    const save = new SaveModel({ dir, monitor: 'accuracy' });
    const learn = tinyLearner([
      new ScriptedMetrics({ accuracy: [0.2, 0.1, 0.3] }),
      save,
      new EarlyStopping({ monitor: 'accuracy', patience: 1 }),
    ]);
    const result = await learn.fit(3);
    expect(result.status).toBe('stopped');
    expect(save.bestEpoch).toBe(0);
    expect(save.saved.length).toBe(1);
  });

  it('bad options are ConfigErrors', () => {
    expect(() => new SaveModel({ every: 'batch' as never })).toThrow(ConfigError);
    expect(() => new SaveModel({ name: 'a/b' })).toThrow(/without slashes/);
  });

  it('weights that are not all finite are never written nor counted as an improvement: the file keeps the last good ones', async () => {
    /** Corrupts one weight at the end of epoch 1's last train batch (after its step). */
    class Corrupt extends Callback {
      onBatchEnd(ctx: TrainContext) {
        if (!ctx.train || ctx.epoch !== 1 || ctx.batchIndex !== ctx.nBatches - 1) return;
        const v = this.learn.params[0]!;
        v.assign(tf.tidy(() => tf.fill(v.shape, Number.NaN)));
      }
    }
    const dir = tempDir();
    const save = new SaveModel({ dir, name: 'best' });
    const weights = new WeightsAtEpochEnd(0);
    // validLoss improves at every epoch, epoch 1's included (scripted, whatever the weights).
    const learn = tinyLearner([new ScriptedMetrics({ validLoss: [1.0, 0.5] }), new Corrupt(), weights, save]);
    await learn.fit(2);
    expect(save.saved).toEqual([join(dir, 'best.weights')]);
    expect(save.bestEpoch).toBe(0);
    expect(save.best).toBe(1.0);
    const held = readWeights(save.bestPath).values.map((v) => Buffer.from(v.slice().buffer));
    expect(sameBytes(held, weights.byEpoch[0]!)).toBe(true);
    expect(sameBytes(held, weights.byEpoch[1]!)).toBe(false);
  });
});
