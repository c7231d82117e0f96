/**
 * Where `fit`'s cost over the hand loop goes, one step at a time (docs/benchmarks.md, "Where d
 * still trails a"). Run after `npm run build`:
 *
 *   node --expose-gc dist/bench/decompose.js [wasm|cpu] [batch size] [rounds]
 *
 * In one process, alternating block by block (`roundOrder`), the MLP 784-128-10 on the
 * same batches:
 *   a       the hand loop (bench/contenders.ts);
 *   engine  trainchart's TfEngine driven by hand in the loop's order, no machine, its loss kept
 *           on the device as the loop keeps it (read once per block);
 *   bare    the same, keeping nothing across batches;
 *   fresh   as engine, but with a TfEngine (and context) made anew for every block, the previous
 *           one released as the next block begins (not timed), as `fit` makes its own every fit;
 *   fit     `learn.fit(1)` with no callback but the clock;
 *   d       `learn.fit(1)` with the default callbacks (bench contender d).
 * Prints each one's median per-batch time and its speed against a, paired by round (median
 * over rounds). A script, not a test: its numbers are timings.
 */
import { BatchClock, BatchClockCallback, CONTENDERS, newLearner, roundOrder, settleEventLoop, type Setup } from './contenders.js';
import { selectBackend } from '../src/backend/selectBackend.js';
import { TfEngine } from '../src/engine/tfEngine.js';
import { newTrainContext } from '../src/loop/context.js';

type Block = () => Promise<number[]>;

async function engineByHand(setup: Setup, keepLoss: boolean, freshEveryBlock = false): Promise<Block> {
  const learn = await newLearner(setup, 0, false);
  const newEngine = () =>
    new TfEngine({ model: learn.model, lossFn: learn.loss.fn, metrics: [], optimizer: learn.optimizer, train: learn.data.train, valid: null, ctx: newTrainContext(learn, 1, setup.batches) });
  let engine = newEngine();
  const clock = new BatchClock();
  return async () => {
    if (freshEveryBlock) {
      engine.releaseRun();
      engine = newEngine();
    }
    engine.orderEpoch(0);
    for (let i = 0; i < setup.batches; i++) {
      clock.start();
      engine.loadBatch(true, i, 0);
      engine.underTape(() => {
        engine.forward(true);
        engine.computeLoss(true);
        if (keepLoss) engine.keepLoss(true);
        engine.markLossForBackward();
      });
      engine.accumulateGradients();
      engine.step();
      engine.zeroGradients();
      engine.releaseBatch();
    }
    const end = performance.now();
    if (keepLoss) engine.readKeptLosses();
    return clock.durations(end);
  };
}

/** fit(1) with no callback but the clock: the machine and driver without the default callbacks. */
async function fitAlone(setup: Setup): Promise<Block> {
  const learn = await newLearner(setup, 0, false);
  const clock = new BatchClockCallback();
  learn.addCallback(clock);
  return async () => {
    await learn.fit(1);
    return clock.durations();
  };
}

async function main() {
  const [backend = 'wasm', batch = '64', roundsArg = '30'] = process.argv.slice(2);
  if (backend !== 'wasm' && backend !== 'cpu') throw new Error(`decompose: backend must be wasm or cpu, got ${backend}`);
  const rounds = Number(roundsArg);
  if (!Number.isInteger(rounds) || rounds < 2) throw new Error(`decompose: rounds must be an integer ≥ 2, got ${roundsArg}`);
  await selectBackend(backend);
  const setup: Setup = { model: 'mlp', batchSize: Number(batch), batches: backend === 'cpu' ? (Number(batch) >= 256 ? 8 : 32) : 20 };
  const blocks: Array<[string, Block]> = [
    ['a', (await CONTENDERS.a(setup)).runBlock],
    ['engine', await engineByHand(setup, true)],
    ['bare', await engineByHand(setup, false)],
    ['fresh', await engineByHand(setup, true, true)],
    ['fit', await fitAlone(setup)],
    ['d', (await CONTENDERS.d(setup)).runBlock],
  ];
  const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[xs.length >> 1]!;
  const perRound = new Map<string, number[]>(blocks.map(([k]) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [key, run] of roundOrder(blocks, r)) {
      await settleEventLoop();
      const times = await run();
      if (r > 0) perRound.get(key)!.push(median(times));
    }
  }
  const a = perRound.get('a')!;
  for (const [key] of blocks) {
    const t = perRound.get(key)!;
    console.log(`${key.padEnd(7)} ${median(t).toFixed(3)} ms/batch   speed vs a ${median(t.map((x, i) => a[i]! / x)).toFixed(3)}`);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
