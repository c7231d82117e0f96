import * as tf from '@tensorflow/tfjs';
import { DataLoader, Learner, selectBackend } from '../dist/src/index.js';
import { Visualizer } from '../dist/visualizer/index.js';
await selectBackend('cpu');
const n = 4096, bs = 4;
const x = new Float32Array(n * 4).map((_, i) => Math.sin(i));
const y = new Int32Array(n).map((_, i) => i % 3);
const make = () => new Learner({
  model: tf.sequential({ layers: [tf.layers.dense({ inputShape: [4], units: 8, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }), tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) })] }),
  data: { train: DataLoader.fromArrays(x, y, { batchSize: bs, seed: 1 }) }, loss: 'sparseCategoricalCrossentropy', seed: 1,
});
const viz = new Visualizer({ port: 0 });
await viz.start();
const noInspect = { callbacks: viz.callbacks, loopObserver: viz.loopObserver, runStarting: (r) => viz.runStarting(r), runEnded: (e) => viz.runEnded(e), close: () => viz.close() };
const onlyInspect = { inspect: () => {} };
const variants = {
  plain: () => ({}),
  viz: () => ({ viz }),
  vizNoInspect: () => ({ viz: noInspect }),
  inspectNoop: () => ({ inspect: () => {} }),
};
const res = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
async function time(opts) { const learn = make(); const t = performance.now(); await learn.fit(1, opts); return (performance.now() - t) / (n / bs); }
await time({});
for (let r = 0; r < 5; r++) for (const [k, f] of Object.entries(variants)) res[k].push(await time(f()));
const med = (a) => a.sort((p, q) => p - q)[Math.floor(a.length / 2)].toFixed(3);
console.log(Object.entries(res).map(([k, a]) => `${k} ${med(a)}`).join('  '));
await viz.close();
