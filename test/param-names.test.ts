import * as tf from '@tensorflow/tfjs';
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { mlp } from '../src/models/presets.js';
import { stableParamNames } from '../src/models/paramNames.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const named = (m: tf.LayersModel) => [...stableParamNames(m)].map(([v, n]) => [n, v.shape] as const);
const build = () => mlp({ seed: 1, inputShape: [6], hidden: [5, 4], classes: 3 });

/** Dense → (Dense → BatchNorm, as a nested model) → Dense, the first layer named by the user. */
function nested() {
  const inner = tf.sequential({ layers: [tf.layers.dense({ inputShape: [3], units: 2 }), tf.layers.batchNormalization()] });
  const outer = tf.sequential();
  outer.add(tf.layers.dense({ inputShape: [4], units: 3, name: 'fc' }));
  outer.add(inner);
  outer.add(tf.layers.dense({ units: 2 }));
  return outer;
}

describe('stableParamNames', () => {
  it('names each weight by its layer position and its own name, the same in a second instance whose tfjs names differ', () => {
    const a = build();
    const b = build();
    // The premise: tfjs's names come from process-wide counters.
    expect(b.weights.map((w) => w.name)).not.toEqual(a.weights.map((w) => w.name));
    const expected = [
      ['layers.0/kernel', [6, 5]],
      ['layers.0/bias', [5]],
      ['layers.1/kernel', [5, 4]],
      ['layers.1/bias', [4]],
      ['layers.2/kernel', [4, 3]],
      ['layers.2/bias', [3]],
    ];
    expect(named(a)).toEqual(expected);
    expect(named(b)).toEqual(expected);
    // The keys are the model's own variables, all of them.
    expect(new Set(stableParamNames(a).keys())).toEqual(new Set(a.weights.map((w) => w.read())));
    a.dispose();
    b.dispose();
  });

  it('gives nested models a path, names non-trainable weights, and ignores the _1 tfjs adds to a repeated user-given layer name', () => {
    const first = nested();
    const second = nested();
    expect(second.layers[0]!.weights[0]!.name).toMatch(/^fc\/kernel_\d+$/);
    const expected = [
      ['layers.0/kernel', [4, 3]],
      ['layers.0/bias', [3]],
      ['layers.1/layers.0/kernel', [3, 2]],
      ['layers.1/layers.0/bias', [2]],
      ['layers.1/layers.1/gamma', [2]],
      ['layers.1/layers.1/beta', [2]],
      ['layers.1/layers.1/moving_mean', [2]],
      ['layers.1/layers.1/moving_variance', [2]],
      ['layers.2/kernel', [2, 2]],
      ['layers.2/bias', [2]],
    ];
    expect(named(first)).toEqual(expected);
    expect(named(second)).toEqual(expected);
    first.dispose();
    second.dispose();
  });

  it('does not depend on which layers are frozen (model.weights reorders, the names do not move)', () => {
    const m = nested();
    const before = named(m);
    const byVariable = new Map(stableParamNames(m));
    m.layers[0]!.trainable = false;
    m.layers[1]!.trainable = false;
    const after = stableParamNames(m);
    // tfjs lists trainable weights first, so freezing changes model.weights' order...
    expect(m.weights[0]!.read()).not.toBe(m.layers[0]!.weights[0]!.read());
    // ...but every variable keeps its name.
    for (const [v, n] of after) expect(byVariable.get(v)).toBe(n);
    expect(named(m).sort()).toEqual([...before].sort());
    m.dispose();
  });

  it('falls back to weights.<k> for a weight that does not carry its layer name', () => {
    class Scale extends tf.layers.Layer {
      constructor() {
        super({ name: 'scale_custom' });
        // Made in the constructor, outside tfjs's name scope: its originalName is just 'w'.
        this.addWeight('w', [2], 'float32', tf.initializers.ones());
      }
      override call(inputs: tf.Tensor | tf.Tensor[]) {
        return Array.isArray(inputs) ? inputs[0]! : inputs;
      }
      static className = 'ScaleCustom';
      override getClassName() {
        return 'ScaleCustom';
      }
    }
    const m = tf.sequential({ layers: [tf.layers.dense({ inputShape: [2], units: 2 }), new Scale()] });
    expect(m.layers[1]!.weights[0]!.originalName).toBe('w');
    expect(named(m).map(([n]) => n)).toEqual(['layers.0/kernel', 'layers.0/bias', 'layers.1/weights.0']);
    m.dispose();
  });

  it('are the same in a fresh process building the same architecture', () => {
    // This process has built models of this architecture before, so tfjs names this one differently from a fresh process.
    const here = build();
    const script = `
      import * as tf from '@tensorflow/tfjs';
      import { models, stableParamNames } from './dist/src/index.js';
      await tf.setBackend('cpu');
      const m = models.mlp({ seed: 1, inputShape: [6], hidden: [5, 4], classes: 3 });
      const out = [...stableParamNames(m)].map(([v, n]) => [n, v.shape]);
      console.log('NAMES ' + JSON.stringify({ tfjs: m.weights[0].read().name, out }));
    `;
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const line = stdout.split('\n').find((l) => l.startsWith('NAMES '))!;
    const fresh = JSON.parse(line.slice('NAMES '.length)) as { tfjs: string; out: Array<[string, number[]]> };
    expect(fresh.tfjs).not.toBe(here.weights[0]!.name);
    expect(fresh.out).toEqual(named(here));
    here.dispose();
  });
});
