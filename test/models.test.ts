import { beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/selectBackend.js';
import { ConfigError } from '../src/errors.js';
import { cnn, mlp, rngStatefulLayers, SeededDropout } from '../src/models/index.js';

const weightBytes = (model: tf.LayersModel): Uint8Array[] =>
  model.getWeights().map((w) => new Uint8Array(w.dataSync().slice().buffer));

const sameBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);

beforeAll(async () => {
  await selectBackend('cpu');
});

describe.each([
  ['mlp', mlp],
  ['cnn', cnn],
] as const)('%s preset', (_name, make) => {
  it('gives bit-identical weights for the same seed', () => {
    const a = weightBytes(make({ seed: 42 }));
    const b = weightBytes(make({ seed: 42 }));
    expect(a.length).toBe(b.length);
    a.forEach((bytes, i) => expect(sameBytes(bytes, b[i]!), `weight ${i}`).toBe(true));
  });

  it('gives different weights for a different seed, and different seeds per layer', () => {
    const model = make({ seed: 1 });
    const a = weightBytes(model);
    const b = weightBytes(make({ seed: 2 }));
    // kernels are random, biases start at zero
    const kernels = model.weights.flatMap((w, i) => (w.originalName.endsWith('kernel') ? [i] : []));
    expect(kernels.length).toBeGreaterThanOrEqual(3);
    for (const i of kernels) expect(sameBytes(a[i]!, b[i]!), `weight ${i}`).toBe(false);
    // two layers with the same kernel shape would have equal leading values if they shared a seed
    const firsts = kernels.map((i) => model.getWeights()[i]!.dataSync()[0]);
    expect(new Set(firsts).size).toBe(firsts.length);
  });

  it('maps a batch of 28x28x1 images to 10 class probabilities', () => {
    tf.tidy(() => {
      const model = make();
      const y = model.predict(tf.randomUniform([5, 28, 28, 1], 0, 1, 'float32', 3)) as tf.Tensor;
      expect(y.shape).toEqual([5, 10]);
      const sums = tf.sum(y, 1).dataSync();
      sums.forEach((s) => expect(s).toBeCloseTo(1, 5));
    });
  });

  it('honours inputShape and classes', () => {
    tf.tidy(() => {
      const model = make({ inputShape: [12, 10, 3], classes: 4 });
      expect(model.inputs[0]!.shape).toEqual([null, 12, 10, 3]);
      const y = model.predict(tf.zeros([2, 12, 10, 3])) as tf.Tensor;
      expect(y.shape).toEqual([2, 4]);
    });
  });

  it('rejects bad options with a ConfigError', () => {
    expect(() => make({ classes: 0 })).toThrow(ConfigError);
    expect(() => make({ dropout: 1 })).toThrow(ConfigError);
    expect(() => make({ seed: 0.5 })).toThrow(ConfigError);
    expect(() => make({ inputShape: [28, -1, 1] })).toThrow(ConfigError);
  });
});

describe('mlp', () => {
  it('has the requested hidden layers and no dropout by default', () => {
    const model = mlp({ hidden: [32, 16, 8] });
    const dense = model.layers.filter((l) => l.getClassName() === 'Dense');
    expect(dense.map((l) => l.outputShape)).toEqual([
      [null, 32],
      [null, 16],
      [null, 8],
      [null, 10],
    ]);
    expect(model.layers[0]!.getClassName()).toBe('Flatten');
    expect(rngStatefulLayers(model)).toEqual([]);
  });

  it('adds a SeededDropout after each hidden layer when asked', () => {
    const layers = rngStatefulLayers(mlp({ dropout: 0.5 }));
    expect(layers.map((l) => l.name)).toEqual(['dropout1', 'dropout2']);
  });

  it('keeps the output layer seed independent of the dropout rate', () => {
    const a = mlp({ seed: 5 }).getLayer('output').getWeights()[0]!.dataSync();
    const b = mlp({ seed: 5, dropout: 0.3 }).getLayer('output').getWeights()[0]!.dataSync();
    expect(sameBytes(new Uint8Array(a.buffer), new Uint8Array(b.buffer))).toBe(true);
  });

  it('accepts already-flat input and no hidden layers', () => {
    tf.tidy(() => {
      const flat = mlp({ inputShape: [6], hidden: [4], classes: 3 });
      expect(flat.layers.map((l) => l.getClassName())).toEqual(['Dense', 'Dense']);
      expect((flat.predict(tf.zeros([2, 6])) as tf.Tensor).shape).toEqual([2, 3]);
      const linear = mlp({ inputShape: [6], hidden: [], classes: 3 });
      expect((linear.predict(tf.zeros([2, 6])) as tf.Tensor).shape).toEqual([2, 3]);
    });
  });

  it('rejects a non-integer hidden width', () => {
    expect(() => mlp({ hidden: [10, 2.5] })).toThrow(ConfigError);
  });
});

describe('cnn', () => {
  it('has the documented layer stack with a 0.25 SeededDropout', () => {
    const model = cnn();
    expect(model.layers.map((l) => l.getClassName())).toEqual([
      'Conv2D',
      'MaxPooling2D',
      'Conv2D',
      'MaxPooling2D',
      'Flatten',
      'Dense',
      'SeededDropout',
      'Dense',
    ]);
    const dropout = model.getLayer('dropout') as SeededDropout;
    expect(dropout.rate).toBe(0.25);
    expect(rngStatefulLayers(model).map((l) => l.name)).toEqual(['dropout']);
  });

  it('has no dropout layer when dropout is 0', () => {
    expect(rngStatefulLayers(cnn({ dropout: 0 }))).toEqual([]);
  });

  it('rejects an inputShape that is not [h, w, c]', () => {
    expect(() => cnn({ inputShape: [784] })).toThrow(ConfigError);
  });
});

describe('SeededDropout', () => {
  const ones = () => tf.ones([4, 64]);

  it('is the identity when not training', () => {
    tf.tidy(() => {
      const layer = new SeededDropout({ rate: 0.5, seed: 1 });
      const x = tf.randomNormal([4, 64], 0, 1, 'float32', 1);
      const before = layer.getRngState();
      for (const kwargs of [{}, { training: false }]) {
        const y = layer.apply(x, kwargs) as tf.Tensor;
        expect(Array.from(y.dataSync())).toEqual(Array.from(x.dataSync()));
      }
      // inference draws nothing from the stream
      expect(layer.getRngState()).toEqual(before);
    });
  });

  it('drops about `rate` of the inputs and scales the rest by 1 / (1 − rate) when training', () => {
    tf.tidy(() => {
      const layer = new SeededDropout({ rate: 0.25, seed: 2 });
      const y = (layer.apply(tf.ones([100, 100]), { training: true }) as tf.Tensor).dataSync();
      const zeros = y.filter((v) => v === 0).length;
      expect(y.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6)).toBe(true);
      expect(zeros / y.length).toBeGreaterThan(0.22);
      expect(zeros / y.length).toBeLessThan(0.28);
    });
  });

  it('draws a different mask on each call', () => {
    tf.tidy(() => {
      const layer = new SeededDropout({ rate: 0.5, seed: 3 });
      const a = (layer.apply(ones(), { training: true }) as tf.Tensor).dataSync();
      const b = (layer.apply(ones(), { training: true }) as tf.Tensor).dataSync();
      expect(Array.from(a)).not.toEqual(Array.from(b));
    });
  });

  it('repeats its masks after setRngState(getRngState()), also on another instance', () => {
    tf.tidy(() => {
      const layer = new SeededDropout({ rate: 0.5, seed: 4 });
      layer.apply(ones(), { training: true }); // advance the stream past its start
      const saved = layer.getRngState();
      const first = Array.from((layer.apply(ones(), { training: true }) as tf.Tensor).dataSync());
      const second = Array.from((layer.apply(ones(), { training: true }) as tf.Tensor).dataSync());

      layer.setRngState(saved);
      expect(Array.from((layer.apply(ones(), { training: true }) as tf.Tensor).dataSync())).toEqual(first);
      expect(Array.from((layer.apply(ones(), { training: true }) as tf.Tensor).dataSync())).toEqual(second);

      const other = new SeededDropout({ rate: 0.5, seed: 999 });
      other.setRngState(saved);
      expect(Array.from((other.apply(ones(), { training: true }) as tf.Tensor).dataSync())).toEqual(first);
    });
  });

  it('gives the same mask sequence for the same seed and a different one for another seed', () => {
    tf.tidy(() => {
      const mask = (seed: number) =>
        Array.from((new SeededDropout({ rate: 0.5, seed }).apply(ones(), { training: true }) as tf.Tensor).dataSync());
      expect(mask(7)).toEqual(mask(7));
      expect(mask(7)).not.toEqual(mask(8));
    });
  });

  it('passes gradients through the kept units only', () => {
    tf.tidy(() => {
      const layer = new SeededDropout({ rate: 0.5, seed: 6 });
      const saved = layer.getRngState();
      const y = (layer.apply(ones(), { training: true }) as tf.Tensor).dataSync();
      layer.setRngState(saved);
      const g = tf.grad((x: tf.Tensor) => tf.sum(layer.apply(x, { training: true }) as tf.Tensor))(ones()).dataSync();
      expect(Array.from(g)).toEqual(Array.from(y));
    });
  });

  it('rejects a rate outside [0, 1)', () => {
    expect(() => new SeededDropout({ rate: 1 })).toThrow(ConfigError);
    expect(() => new SeededDropout({ rate: -0.1 })).toThrow(ConfigError);
  });

  it('survives a save/load round trip of a model (registered class, rate and seed kept)', async () => {
    const model = cnn({ seed: 8, dropout: 0.4 });
    let artifacts: tf.io.ModelArtifacts | undefined;
    await model.save(
      tf.io.withSaveHandler(async (a) => {
        artifacts = a;
        return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
      }),
    );
    const loaded = await tf.loadLayersModel(tf.io.fromMemory(artifacts!));
    const dropout = loaded.getLayer('dropout');
    expect(dropout).toBeInstanceOf(SeededDropout);
    expect((dropout as SeededDropout).rate).toBe(0.4);
    expect((dropout as SeededDropout).getRngState()).toEqual((model.getLayer('dropout') as SeededDropout).getRngState());
  });
});

describe('rngStatefulLayers', () => {
  it('finds SeededDropout layers inside nested models and their state round-trips', () => {
    const inner = mlp({ inputShape: [6], hidden: [4], classes: 3, dropout: 0.5 });
    const outer = tf.sequential({
      layers: [inner, new SeededDropout({ rate: 0.2, seed: 1, name: 'outer_dropout' })],
    });
    const found = rngStatefulLayers(outer);
    expect(found.map((l) => l.name)).toEqual(['mlp/dropout1', 'outer_dropout']);
    const s = found[0]!.getRngState();
    found[0]!.setRngState([1, 2, 3, 4]);
    expect((inner.getLayer('dropout1') as SeededDropout).getRngState()).toEqual([1, 2, 3, 4]);
    found[0]!.setRngState(s);
    expect(found[0]!.getRngState()).toEqual(s);
  });

  it('makes a training forward pass of cnn() reproducible', () => {
    tf.tidy(() => {
      const model = cnn({ seed: 9 });
      const x = tf.randomUniform([3, 28, 28, 1], 0, 1, 'float32', 4);
      const states = rngStatefulLayers(model).map((l) => l.getRngState());
      const a = (model.apply(x, { training: true }) as tf.Tensor).dataSync();
      const b = (model.apply(x, { training: true }) as tf.Tensor).dataSync();
      expect(Array.from(a)).not.toEqual(Array.from(b));
      rngStatefulLayers(model).forEach((l, i) => l.setRngState(states[i]!));
      const c = (model.apply(x, { training: true }) as tf.Tensor).dataSync();
      expect(Array.from(c)).toEqual(Array.from(a));
    });
  });
});
