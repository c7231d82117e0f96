/**
 * The one-pass cpu Adam kernel (backend/cpuAdamUpdate.ts) against two references that do not
 * use it: the update composed of tfjs ops (what the optimizer runs without the kernel, with the
 * stock kernel set), bit for bit, and Adam's documented formula (PyTorch's torch.optim.Adam /
 * AdamW, float64), within float32 rounding.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/selectBackend.js';
import { useStockKernels, useTrainchartKernels } from '../src/backend/kernelSet.js';
import { ADAM_UPDATE } from '../src/backend/cpuAdamUpdate.js';
import { createOptimizer } from '../src/optim/optimizer.js';
import { Rng } from '../src/rng.js';
import { randomValues } from './support/matMulReference.js';

const rng = new Rng(5);

beforeAll(async () => {
  await selectBackend('cpu');
});

afterAll(() => {
  useTrainchartKernels();
});

type Kind = 'adam' | 'adamw';
const SETTINGS: Array<{ kind: Kind; wd: number }> = [
  { kind: 'adam', wd: 0 },
  { kind: 'adam', wd: 0.05 },
  { kind: 'adamw', wd: 0.05 },
  { kind: 'adamw', wd: 0 },
];
const SHAPES = [[1], [7], [33, 5], [784, 128]];
const STEPS = 4;

/** The same start and gradients every time: weights and per-step gradients for each shape. */
const start = SHAPES.map((s) => randomValues(rng, s));
const gradients = Array.from({ length: STEPS }, () => SHAPES.map((s) => randomValues(rng, s).map((x) => x * 3)));

/** STEPS optimizer steps; returns the weights and the optimizer state's buffers after each. */
function train(kind: Kind, wd: number) {
  const params = SHAPES.map((s, i) => tf.tidy(() => tf.variable(tf.tensor(start[i]!, s), true, `p${i}`)));
  const opt = createOptimizer(kind, { lr: 0.01, wd, momentum: 0.85, beta2: 0.95, eps: 1e-6 });
  const history: number[][][] = [];
  for (let t = 0; t < STEPS; t++) {
    // Step 2 leaves p1 out (no gradient): its step count must not move.
    const grads: tf.NamedTensorMap = {};
    SHAPES.forEach((s, i) => {
      if (!(t === 1 && i === 1)) grads[`p${i}`] = tf.tensor(gradients[t]![i]!, s);
    });
    opt.step(params, grads);
    tf.dispose(Object.values(grads));
    history.push(params.map((p) => Array.from(p.dataSync())));
  }
  const state = opt.getState();
  const result = { history, state: JSON.stringify(state) };
  opt.dispose();
  tf.dispose(params);
  return result;
}

describe('cpu one-pass Adam update', () => {
  it('is registered with the trainchart kernel set only', () => {
    expect(tf.getKernel(ADAM_UPDATE, 'cpu')).toBeDefined();
    useStockKernels();
    expect(tf.getKernel(ADAM_UPDATE, 'cpu')).toBeUndefined();
    useTrainchartKernels();
    expect(tf.getKernel(ADAM_UPDATE, 'cpu')).toBeDefined();
  });

  it.each(SETTINGS.map((s) => [`${s.kind} wd ${s.wd}`, s] as const))('%s: bit for bit the composed ops, state included', (_, s) => {
    let calls = 0;
    const kernel = tf.getKernel(ADAM_UPDATE, 'cpu');
    const run = kernel.kernelFunc;
    kernel.kernelFunc = (args) => {
      calls += 1;
      return run(args);
    };
    let fused;
    try {
      fused = train(s.kind, s.wd);
    } finally {
      kernel.kernelFunc = run;
    }
    // Every parameter that got a gradient went through the kernel.
    expect(calls).toBe(STEPS * SHAPES.length - 1);
    useStockKernels();
    const composed = train(s.kind, s.wd);
    useTrainchartKernels();
    expect(fused.history).toEqual(composed.history);
    expect(fused.state).toEqual(composed.state);
  });

  it('follows the documented Adam/AdamW update (float64 reference)', () => {
    for (const { kind, wd } of SETTINGS) {
      const got = train(kind, wd).history;
      const [lr, b1, b2, eps] = [0.01, 0.85, 0.95, 1e-6];
      SHAPES.forEach((_, i) => {
        const p = Float64Array.from(start[i]!);
        const m = new Float64Array(p.length);
        const v = new Float64Array(p.length);
        let t = 0;
        for (let step = 0; step < STEPS; step++) {
          if (!(step === 1 && i === 1)) {
            t += 1;
            const g0 = gradients[step]![i]!;
            for (let j = 0; j < p.length; j++) {
              let g = g0[j]!;
              if (kind === 'adam') g += wd * p[j]!;
              else p[j] = p[j]! * (1 - lr * wd);
              m[j] = b1 * m[j]! + (1 - b1) * g;
              v[j] = b2 * v[j]! + (1 - b2) * g * g;
              const mHat = m[j]! / (1 - b1 ** t);
              const vHat = v[j]! / (1 - b2 ** t);
              p[j] = p[j]! - (lr * mHat) / (Math.sqrt(vHat) + eps);
            }
          }
          const row = got[step]![i]!;
          let worst = 0;
          for (let j = 0; j < p.length; j++) worst = Math.max(worst, Math.abs(row[j]! - p[j]!));
          expect(worst, `${kind} wd ${wd}, param ${i}, step ${step}`).toBeLessThan(2e-6);
        }
      });
    }
  });

  it('steps float32 tensors stored as integers (casts share storage) as the composed ops do', () => {
    const step = () => {
      const p = tf.tidy(() => tf.variable(tf.tensor([1, 2, -3, 16777217], [4], 'int32').cast('float32'), true, 'q0'));
      const g = tf.tensor([true, false, true, true], [4], 'bool').cast('float32');
      const opt = createOptimizer('adamw', { lr: 0.5, wd: 0.1 });
      opt.step([p], { q0: g });
      opt.step([p], { q0: g });
      const out = Array.from(p.dataSync());
      opt.dispose();
      tf.dispose([p, g]);
      return out;
    };
    const fused = step();
    useStockKernels();
    const composed = step();
    useTrainchartKernels();
    expect(fused).toEqual(composed);
    expect(fused[1]).not.toBe(2); // it did step (adamw decays even without a gradient)
  });

  it('leaves no tensor or cpu data behind', () => {
    train('adam', 0);
    const before = { tensors: tf.memory().numTensors, dataIds: (tf.backend() as unknown as { numDataIds(): number }).numDataIds() };
    train('adamw', 0.05);
    expect(tf.memory().numTensors).toBe(before.tensors);
    expect((tf.backend() as unknown as { numDataIds(): number }).numDataIds()).toBe(before.dataIds);
  });
});
