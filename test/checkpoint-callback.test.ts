/**
 * The Checkpoint callback's options as the issue defines them: everyBatches (after every N
 * train batches of the run, at batchEnd), everyEpochs (at the end of every N-th epoch), keep
 * (the newest N stay), onStop; listCheckpoints' order and fields; bad options are ConfigErrors.
 */
import * as tf from '@tensorflow/tfjs';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Checkpoint } from '../callbacks/checkpoint.js';
import { Callback } from '../src/loop/callback.js';
import { listCheckpoints } from '../src/checkpoint/index.js';
import { CheckpointError, ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { tinyLearner } from './support/tracing.js';

let root: string;
beforeAll(async () => {
  await tf.setBackend('cpu');
  root = mkdtempSync(join(tmpdir(), 'trainchart-ckpt-cb-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

// tinyLearner: 6 samples in batches of 2 → 3 train batches per epoch.
const positions = (dir: string) => listCheckpoints(dir).map(({ epoch, iteration, batchIndex }) => [iteration, epoch, batchIndex]);

describe('Checkpoint', () => {
  it('everyBatches: after batches 2, 4, 6, … of the run (mid-epoch too); everyEpochs 2: after epochs 2 and 4', async () => {
    const dir = join(root, 'every');
    await tinyLearner([new Checkpoint({ dir, everyBatches: 2, everyEpochs: 2, keep: Infinity })]).fit(4);
    expect(positions(dir)).toEqual([
      [2, 0, 2],
      [4, 1, 1],
      [6, 1, 3],
      [6, 2, 0], // end of epoch 2 (1-based)
      [8, 2, 2],
      [10, 3, 1],
      [12, 3, 3],
      [12, 4, 0],
    ]);
    expect(basename(listCheckpoints(dir).at(-1)!.path)).toBe(readFileSync(join(dir, 'latest'), 'utf8').trim());
  });

  it('keep: only the newest stay; Infinity keeps all', async () => {
    const dir = join(root, 'keep');
    await tinyLearner([new Checkpoint({ dir, everyBatches: 1, keep: 2 })]).fit(2);
    expect(positions(dir)).toEqual([
      [6, 1, 3],
      [6, 2, 0],
    ]);
  });

  it('onStop: a stop during a batch writes there (not at that epoch end); onStop false writes nothing for it', async () => {
    class StopAfter extends Callback {
      onBatchEnd(ctx: TrainContext) {
        if (ctx.train && ctx.iteration === 3) return { stopTraining: true };
      }
    }
    const dir = join(root, 'stop');
    const cp = new Checkpoint({ dir });
    const result = await tinyLearner([new StopAfter(), cp]).fit(3);
    expect(result.status).toBe('stopped');
    // Epoch 0 ended (the everyEpochs write), then the stop after the run's 4th batch (batch 0 of
    // epoch 1): the next batch is 1 — and nothing after it, not that epoch's end.
    expect(cp.written.map((c) => [c.iteration, c.epoch, c.batchIndex])).toEqual([
      [3, 1, 0],
      [4, 1, 1],
    ]);
    const quiet = join(root, 'stop-off');
    const off = new Checkpoint({ dir: quiet, onStop: false });
    await tinyLearner([new StopAfter(), off]).fit(3);
    expect(off.written.map((c) => c.iteration)).toEqual([3]);
  });

  it('bad options are ConfigErrors that say what is wanted', () => {
    expect(() => new Checkpoint({ dir: '' })).toThrow(/dir must be a directory path/);
    expect(() => new Checkpoint({ dir: 'x', everyBatches: 0 })).toThrow(/everyBatches must be an integer ≥ 1/);
    expect(() => new Checkpoint({ dir: 'x', everyEpochs: 1.5 })).toThrow(/everyEpochs must be an integer ≥ 1 or Infinity/);
    expect(() => new Checkpoint({ dir: 'x', keep: 0 })).toThrow(/keep must be an integer ≥ 1 or Infinity/);
    expect(() => new Checkpoint({ dir: 'x', onStop: 'yes' as never })).toThrow(/onStop must be true or false/);
    expect(() => new Checkpoint({ dir: 'x', every: 5 } as never)).toThrow(/unknown option "every"; known options: dir, everyBatches, everyEpochs, keep, onStop/);
    expect(() => new Checkpoint(undefined as never)).toThrow(ConfigError);
  });

  it('an async atQuietPoint is refused when the fit starts (the run waits at the quiet point for it)', async () => {
    class Late extends Callback {
      async atQuietPoint() {}
    }
    await expect(tinyLearner([new Late()]).fit(1)).rejects.toThrow(/atQuietPoint is async; it must be synchronous/);
  });

  it('listCheckpoints of a missing directory is a CheckpointError', () => {
    expect(() => listCheckpoints(join(root, 'none'))).toThrow(CheckpointError);
    expect(() => listCheckpoints(join(root, 'none'))).toThrow(/does not exist/);
  });
});
