import { join } from 'node:path';
import { BACKEND_HELP, BACKEND_OPTIONS, backendArgs, selectBackendFromArgs } from './backendArgs.js';
import { mnist } from '../data/mnist.js';
import { Learner } from '../learner.js';
import { suggestionMarks } from '../lrFind.js';
import { cnn, mlp } from '../models/presets.js';
import type { OptimizerKind } from '../optim/optimizer.js';
import { ConfigError } from '../errors.js';
import { choiceOption, intOption, parseCommandArgs, positiveNumberOption } from './args.js';
import { prepareOutputDir } from './outputDir.js';

export const LR_FIND_HELP = `Usage: trainchart lr-find [options]

Runs the LR finder on the bundled MNIST: a mock training whose learning rate grows
exponentially from --start-lr to --end-lr, then suggests learning rates (fastai's valley,
steep, minimum, slide; valley is the recommended one) and plots loss against lr.
The model and optimizer are left untouched. When the curve gives no meaningful suggestion
(too few batches, a loss that diverges at once or never falls) it says why and exits with 1.

  --model mlp|cnn        model preset (default mlp)
  --batch-size B         batch size (default 64)
  --optimizer O          sgd | adam | adamw (default adam)
  --seed S               seed of init and shuffle (default 1)
  --limit-train N        use the first N training images only
  --start-lr X           lr of the first batch (default 1e-7)
  --end-lr X             lr the schedule heads for (default 10)
  --num-it N             batches to run at most (default 100)
${BACKEND_HELP}  --out DIR              where lr-find.svg and lr-find.png go (default runs/lr-find)
  --json                 print one JSON object as the last line of stdout
`;

export async function lrFindCommand(argv: string[]): Promise<number> {
  const v = parseCommandArgs('lr-find', argv, {
    model: { type: 'string' },
    'batch-size': { type: 'string' },
    optimizer: { type: 'string' },
    seed: { type: 'string' },
    'limit-train': { type: 'string' },
    'start-lr': { type: 'string' },
    'end-lr': { type: 'string' },
    'num-it': { type: 'string' },
    ...BACKEND_OPTIONS,
    out: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    process.stdout.write(LR_FIND_HELP);
    return 0;
  }
  const modelName = choiceOption('model', v.model, ['mlp', 'cnn'] as const, 'mlp');
  const batchSize = intOption('batch-size', v['batch-size'], 64);
  const optimizer = choiceOption<OptimizerKind>('optimizer', v.optimizer, ['sgd', 'adam', 'adamw'], 'adam');
  const seed = intOption('seed', v.seed, 1, 0);
  const limitTrain = v['limit-train'] === undefined ? undefined : intOption('limit-train', v['limit-train'], 0, 1);
  const startLr = positiveNumberOption('start-lr', v['start-lr'], 1e-7);
  const endLr = positiveNumberOption('end-lr', v['end-lr'], 10);
  const numIt = intOption('num-it', v['num-it'], 100);
  const backendChoice = backendArgs(v);
  // Checked here, before any data is loaded (LRFinder checks it too, for API users).
  if (!(startLr < endLr)) {
    throw new ConfigError(`--start-lr (${startLr}) must be below --end-lr (${endLr}): the search raises the lr from one to the other`);
  }
  const outDir = typeof v.out === 'string' ? v.out : 'runs/lr-find';
  prepareOutputDir(outDir, '--out');
  const json = Boolean(v.json);
  // With --json, stdout carries only the result; everything for people goes to stderr.
  const human = json ? process.stderr : process.stdout;
  const say = (line: string) => human.write(line + '\n');

  const backend = await selectBackendFromArgs(backendChoice, say);
  const started = performance.now();
  const { train } = await mnist({ batchSize, seed, ...(limitTrain !== undefined ? { limitTrain } : {}) });
  say(`data: MNIST ${train.length} train images, batch size ${batchSize}`);
  const model = modelName === 'cnn' ? cnn({ seed }) : mlp({ seed });
  const learn = new Learner({ model, data: { train }, loss: 'categoricalCrossentropy', optimizer, seed });
  const result = await learn.lrFind({ startLr, endLr, numIt });
  const seconds = (performance.now() - started) / 1000;
  const plot = await learn.recorder!.plotLrFind(join(outDir, 'lr-find'), {
    suggestions: suggestionMarks(result),
    title: `LR finder: ${modelName}, ${optimizer}, batch ${batchSize}`,
  });
  say(`${result.iterations} batches from lr ${startLr} (stopped: ${result.stopReason ?? 'out of data'}), ${seconds.toFixed(2)}s on ${backend.name}`);
  if (result.warning === null) {
    for (const [name, lr] of Object.entries(result.suggestions)) {
      say(`  ${name.padEnd(8)} ${lr.toExponential(2)}${name === result.recommended ? '   ← recommended' : ''}`);
    }
  }
  say(`wrote ${plot.svg} and ${plot.png}`);
  // No number to recommend: say why on stderr (also without --json) and fail, so a script
  // never trains with a NaN or the search's own start lr.
  if (result.warning !== null) process.stderr.write(`trainchart: lr-find found no meaningful learning rate: ${result.warning}\n`);
  if (json) {
    const summary = {
      warning: result.warning,
      lrs: result.lrs,
      losses: result.losses,
      suggestions: result.suggestions,
      recommended: result.recommended,
      iterations: result.iterations,
      stopReason: result.stopReason,
      plot,
      model: modelName,
      optimizer,
      batchSize,
      seed,
      backend: backend.name,
      seconds: Math.round(seconds * 100) / 100,
    };
    process.stdout.write(JSON.stringify(summary) + '\n');
  }
  model.dispose();
  learn.optimizer.dispose();
  return result.warning === null ? 0 : 1;
}
