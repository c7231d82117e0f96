/**
 * Training on wasm with trainchart's kernels: reproducible from the seed, no growth of tensors
 * or wasm buffers across epochs, and the same accuracy as with tfjs's stock kernels.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { selectBackend } from '../src/backend/selectBackend.js';
import { getKernelSet, setKernelSet, type KernelSet } from '../src/backend/kernelSet.js';
import { Callback } from '../src/loop/callback.js';
import type { TrainContext } from '../src/loop/context.js';
import { Learner } from '../src/learner.js';
import { mnist } from '../src/data/index.js';
import { cnn, mlp } from '../src/models/presets.js';
import { weightsSha256 } from '../src/weightsHash.js';

/** What is allocated after each epoch (validation included). */
class MemoryPerEpoch extends Callback {
  readonly epochs: Array<{ tensors: number; dataIds: number }> = [];
  onEpochEnd(_ctx: TrainContext) {
    this.epochs.push({ tensors: tf.memory().numTensors, dataIds: (tf.backend() as unknown as BackendWasm).numDataIds() });
  }
}

async function train(model: 'mlp' | 'cnn', epochs: number, set: KernelSet, limitTrain: number) {
  setKernelSet(set);
  const { train, valid } = await mnist({ batchSize: 32, seed: 4, limitTrain, limitValid: 64 });
  const net = model === 'cnn' ? cnn({ seed: 4 }) : mlp({ seed: 4 });
  const memory = new MemoryPerEpoch();
  const learn = new Learner({
    model: net,
    data: { train, valid },
    loss: 'categoricalCrossentropy',
    optimizer: 'adam',
    metrics: ['accuracy'],
    callbacks: [memory],
    seed: 4,
  });
  const result = await learn.fit(epochs, { lr: 2e-3 });
  const out = { hash: weightsSha256(net), accuracy: result.metrics!.accuracy!, validLoss: result.metrics!.validLoss!, memory: memory.epochs };
  learn.optimizer.dispose();
  net.dispose();
  return out;
}

beforeAll(async () => {
  await selectBackend('wasm');
});

describe.each(['mlp', 'cnn'] as const)('training the %s preset on wasm', (model) => {
  const limit = model === 'cnn' ? 96 : 320;

  it("the same seed gives the same weightsSha256 run to run (trainchart's kernels)", async () => {
    expect(getKernelSet()).toBe('trainchart');
    const a = await train(model, 1, 'trainchart', limit);
    const b = await train(model, 1, 'trainchart', limit);
    expect(b.hash).toBe(a.hash);
  }, 120_000);

  it('no tensor and no wasm buffer more after epoch 3 than after epoch 1', async () => {
    const { memory } = await train(model, 3, 'trainchart', limit);
    expect(memory).toHaveLength(3);
    expect(memory[1]).toEqual(memory[0]);
    expect(memory[2]).toEqual(memory[0]);
  }, 120_000);

  it("learns the same as with tfjs's stock kernels (float32 rounding apart)", async () => {
    try {
      const stock = await train(model, 1, 'stock', limit);
      const ours = await train(model, 1, 'trainchart', limit);
      expect(Math.abs(ours.validLoss - stock.validLoss)).toBeLessThan(1e-3 * Math.max(1, stock.validLoss));
      expect(Math.abs(ours.accuracy - stock.accuracy)).toBeLessThanOrEqual(1 / 64);
    } finally {
      setKernelSet('trainchart');
    }
  }, 180_000);
});
