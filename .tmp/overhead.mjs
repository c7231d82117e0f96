import * as tf from '@tensorflow/tfjs';
import WebSocket from 'ws';
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
const url = await viz.start();
async function time(label, opts) { const learn = make(); const t = performance.now(); await learn.fit(1, opts); const ms = (performance.now() - t) / (n / bs); return ms; }
const res = { plain: [], viz: [], vizClient: [] };
await time('warm', {});
for (let r = 0; r < 3; r++) {
  res.plain.push(await time('plain', {}));
  res.viz.push(await time('viz', { viz }));
  const ws = new WebSocket(url.replace('http', 'ws') + 'ws'); let msgs = 0; ws.on('message', () => msgs++);
  await new Promise((r) => ws.once('open', r));
  res.vizClient.push(await time('vizClient', { viz }));
  ws.close();
  res.plain.push(await time('plain', {}));
}
const med = (a) => a.sort((p, q) => p - q)[Math.floor(a.length / 2)].toFixed(3);
console.log('ms/batch median of 3: plain', med(res.plain), 'viz', med(res.viz), 'viz+client', med(res.vizClient));
await viz.close();
