// A short real training with the visualizer, in a process of its own: a paused run blocks its
// thread (that is the design), so the WebSocket client driving it must live elsewhere — in the
// test. Built code (dist/), as the CLI tests use.
//
//   node test/support/vizTrain.mjs '{"epochs":1,"samples":192,"batchSize":16,"sleepMs":0,"break":"lossBegin"}'
//
// Prints `visualizer: URL` once listening, `ready` once training starts (with `waitForGo`, after a
// line on stdin), `finished` after the fit (with `waitAfter`, it then serves until another line),
// and the fit's result as the last line: `result: {json}`.
import * as tf from '@tensorflow/tfjs';
import { Callback, DataLoader, Learner, selectBackend } from '../../dist/src/index.js';
import { Visualizer } from '../../dist/visualizer/index.js';

const cfg = { epochs: 1, samples: 192, batchSize: 16, validSamples: 32, sleepMs: 0, ...JSON.parse(process.argv[2] ?? '{}') };
await selectBackend('cpu');

// 4 features, 3 classes, labels a fixed function of the features: a tiny, seeded problem.
function data(n, offset) {
  const x = new Float32Array(n * 4);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 4; j++) x[i * 4 + j] = Math.sin((i + offset) * (j + 1) * 0.7);
    y[i] = (x[i * 4] + x[i * 4 + 1] > 0 ? 1 : 0) + (x[i * 4 + 2] > 0.5 ? 1 : 0);
  }
  return DataLoader.fromArrays(x, y, { batchSize: cfg.batchSize, seed: 1 });
}

const model = tf.sequential({
  layers: [
    tf.layers.dense({ inputShape: [4], units: 8, activation: 'relu', kernelInitializer: tf.initializers.glorotUniform({ seed: 1 }) }),
    tf.layers.dense({ units: 3, activation: 'softmax', kernelInitializer: tf.initializers.glorotUniform({ seed: 2 }) }),
  ],
});

/** Makes a run last long enough to measure the state rate, without using CPU: sleeps at every batchEnd. */
class Sleep extends Callback {
  onBatchEnd() {
    if (cfg.sleepMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, cfg.sleepMs);
  }
}

/** Counts the hooks that ran, so the paused ctx can be checked against them. */
class LossBeginProbe extends Callback {
  calls = 0;
  onLossBegin() {
    this.calls += 1;
  }
}

const learn = new Learner({
  model,
  data: { train: data(cfg.samples, 0), valid: cfg.validSamples ? data(cfg.validSamples, 10_000) : null },
  loss: 'sparseCategoricalCrossentropy',
  metrics: ['accuracy'],
  callbacks: [new Sleep(), new LossBeginProbe()],
  seed: 1,
});

const viz = new Visualizer({ port: 0, ...(cfg.break ? { break: cfg.break } : {}), ...(cfg.stopOnSigint ? { stopOnSigint: true } : {}) });
const url = await viz.start();
process.stdout.write(`visualizer: ${url}\n`);

// The test connects its clients and sets its breakpoints, then says go on stdin.
if (cfg.waitForGo) {
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
}
process.stdout.write('ready\n');
const started = performance.now();
const result = await learn.fit(cfg.epochs, { viz, lr: 0.01 });
const seconds = (performance.now() - started) / 1000;
// The test may look at the finished run's server before it closes.
if (cfg.waitAfter) {
  process.stdout.write('finished\n');
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
}
await viz.close();
process.stdout.write(`result: ${JSON.stringify({ ...result, seconds })}\n`);
