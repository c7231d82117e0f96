import { join } from 'node:path';
import { EarlyStopping } from '../../callbacks/earlyStopping.js';
import { Progress } from '../../callbacks/progress.js';
import { SaveModel } from '../../callbacks/saveModel.js';
import { mnist } from '../data/mnist.js';
import { ConfigError } from '../errors.js';
import { checkModelDir, exportModel } from '../io/tfjsModelFiles.js';
import { writeFileAtomic } from '../io/atomicWrite.js';
import { Learner } from '../learner.js';
import { cnn, mlp } from '../models/presets.js';
import type { OptimizerKind } from '../optim/optimizer.js';
import { weightsSha256 } from '../weightsHash.js';
import { choiceOption, intOption, parseCommandArgs, positiveNumberOption, withOptionalValue } from './args.js';
import { BACKEND_HELP, BACKEND_OPTIONS, backendArgs, selectBackendFromArgs } from './backendArgs.js';
import { prepareOutputDir } from './outputDir.js';
import { inspectWsFromArgs, startVizFromArgs, VIZ_HELP, VIZ_OPTIONS } from './vizArgs.js';
import { Checkpoint } from '../../callbacks/checkpoint.js';
import { checkpointsDirOf, hasCheckpoints, interruptible, prepareRunDir, writeRunFile } from './runDir.js';

export const TRAIN_HELP = `Usage: trainchart train [options]

Trains a model on the bundled MNIST (60k train, 10k test) and reports test accuracy.

  --model mlp|cnn        model preset (default mlp)
  --epochs N             epochs (default 3)
  --batch-size B         batch size (default 64)
  --lr X                 learning rate (default 0.002)
  --optimizer O          sgd | adam | adamw (default adam)
  --seed S               seed of init, shuffle and dropout (default 1)
  --limit-train N        train on the first N images only
  --limit-valid N        evaluate on the first N test images only
${BACKEND_HELP}  --out DIR              write result.json and history.json there
  --json                 print one JSON object as the last line of stdout
  --one-cycle            train with the one-cycle policy (lr warms up to --lr-max, then anneals)
  --lr-max X             peak lr of --one-cycle (default: the --lr value)
  --early-stopping P     stop after P epochs without a lower validation loss
  --save-best            save the weights of the epoch with the lowest validation loss to
                         best.weights in --out (default runs/train)
  --save-model [DIR]     export the trained model in TensorFlow.js's format (model.json + weights,
                         for tf.loadLayersModel) to DIR (default: model in --out, runs/train/model)
  --checkpoint-every N   with --out RUN: write a checkpoint every N train batches and at every
                         epoch end into RUN/checkpoints (and this command's arguments into
                         RUN/run.json first), so that \`trainchart resume RUN\` continues the run
                         exactly; Ctrl-C then stops after the current batch and checkpoints
${VIZ_HELP}`;

/** How `trainchart resume` runs train again: in the run directory, from its latest checkpoint. */
export interface TrainResume {
  runDir: string;
}

export async function trainCommand(argv: string[], resuming?: TrainResume): Promise<number> {
  const v = parseCommandArgs('train', withOptionalValue(argv, '--save-model'), {
    model: { type: 'string' },
    epochs: { type: 'string' },
    'batch-size': { type: 'string' },
    lr: { type: 'string' },
    optimizer: { type: 'string' },
    seed: { type: 'string' },
    'limit-train': { type: 'string' },
    'limit-valid': { type: 'string' },
    ...BACKEND_OPTIONS,
    out: { type: 'string' },
    json: { type: 'boolean' },
    'one-cycle': { type: 'boolean' },
    'lr-max': { type: 'string' },
    'early-stopping': { type: 'string' },
    'save-best': { type: 'boolean' },
    'save-model': { type: 'string' },
    ...VIZ_OPTIONS,
    'checkpoint-every': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    process.stdout.write(TRAIN_HELP);
    return 0;
  }
  const modelName = choiceOption('model', v.model, ['mlp', 'cnn'] as const, 'mlp');
  const epochs = intOption('epochs', v.epochs, 3);
  const batchSize = intOption('batch-size', v['batch-size'], 64);
  const lr = positiveNumberOption('lr', v.lr, 2e-3);
  const optimizer = choiceOption<OptimizerKind>('optimizer', v.optimizer, ['sgd', 'adam', 'adamw'], 'adam');
  const seed = intOption('seed', v.seed, 1, 0);
  const limitTrain = v['limit-train'] === undefined ? undefined : intOption('limit-train', v['limit-train'], 0, 1);
  const limitValid = v['limit-valid'] === undefined ? undefined : intOption('limit-valid', v['limit-valid'], 0, 1);
  const backendChoice = backendArgs(v);
  const json = Boolean(v.json);
  const oneCycle = Boolean(v['one-cycle']);
  const lrMax = v['lr-max'] === undefined ? undefined : positiveNumberOption('lr-max', v['lr-max'], lr);
  if (lrMax !== undefined && !oneCycle) {
    throw new ConfigError('--lr-max sets the peak of the one-cycle schedule: add --one-cycle, or use --lr for a constant lr');
  }
  const patience = v['early-stopping'] === undefined ? undefined : intOption('early-stopping', v['early-stopping'], 1, 1);
  const outDir = typeof v.out === 'string' ? v.out : undefined;
  const saveDir = v['save-best'] ? (outDir ?? join('runs', 'train')) : undefined;
  const rawModelDir = v['save-model'];
  const modelDir: string | undefined =
    typeof rawModelDir !== 'string' ? undefined : rawModelDir !== '' ? rawModelDir : join(outDir ?? join('runs', 'train'), 'model');
  // Before any training: a directory the results cannot be written to fails now, not at the end.
  if (outDir !== undefined) prepareOutputDir(outDir, '--out');
  if (saveDir !== undefined && saveDir !== outDir) prepareOutputDir(saveDir, '--save-best', 'give --out DIR for the best weights');
  if (modelDir !== undefined) checkModelDir(modelDir, '--save-model');
  const checkpointEvery = v['checkpoint-every'] === undefined ? undefined : intOption('checkpoint-every', v['checkpoint-every'], 1, 1);
  const runDir = checkpointEvery === undefined ? undefined : typeof v.out === 'string' ? v.out : undefined;
  if (checkpointEvery !== undefined && runDir === undefined) {
    throw new ConfigError('--checkpoint-every needs --out RUN: the run directory the checkpoints (and the run\'s arguments) go to');
  }
  // A fresh run never mixes its checkpoints with another run's; a resumed one continues them.
  if (runDir !== undefined && !resuming) {
    prepareRunDir(runDir);
    // The run's own arguments, first of all (long before its first batch): `trainchart resume RUN` needs no flags.
    writeRunFile(runDir, argv);
  }
  // With --json, stdout carries only the result; everything for people goes to stderr.
  const human = json ? process.stderr : process.stdout;
  const say = (line: string) => human.write(line + '\n');

  const backend = await selectBackendFromArgs(backendChoice, say);
  // Before the data loads, so a page can connect before the first stage.
  const stately = inspectWsFromArgs(v);
  const vizRun = await startVizFromArgs(v, say);
  const watch = { ...(vizRun ? { viz: vizRun.viz } : {}), ...(stately ? { inspect: stately.inspect } : {}) };
  const started = performance.now();
  const { train, valid } = await mnist({
    batchSize,
    seed,
    ...(limitTrain !== undefined ? { limitTrain } : {}),
    ...(limitValid !== undefined ? { limitValid } : {}),
  });
  say(`data: MNIST ${train.length} train / ${valid.length} test images, batch size ${batchSize}`);
  const model = modelName === 'cnn' ? cnn({ seed }) : mlp({ seed });
  const stopper = patience === undefined ? null : new EarlyStopping({ monitor: 'validLoss', patience });
  const saver = saveDir === undefined ? null : new SaveModel({ every: 'improvement', monitor: 'validLoss', dir: saveDir, name: 'best' });
  const checkpointer = runDir === undefined ? null : new Checkpoint({ dir: checkpointsDirOf(runDir), everyBatches: checkpointEvery! });
  const learn = new Learner({
    model,
    data: { train, valid },
    loss: 'categoricalCrossentropy',
    optimizer,
    metrics: ['accuracy'],
    callbacks: [
      new Progress({ stream: human }),
      ...(stopper ? [stopper] : []),
      ...(saver ? [saver] : []),
      ...(checkpointer ? [checkpointer] : []),
    ],
    seed,
  });
  // Resumed: from the latest checkpoint, or from the start when the run was killed before its first.
  const resumeFrom = resuming && hasCheckpoints(resuming.runDir) ? checkpointsDirOf(resuming.runDir) : undefined;
  if (resuming) say(resumeFrom ? `resuming ${resuming.runDir} from its latest checkpoint` : `${resuming.runDir} has no checkpoint yet: training it from the start`);
  const interrupt = interruptible(learn, say);
  say(`training: ${epochs} epochs (Ctrl-C stops after the current batch${checkpointer ? ' and writes a checkpoint' : ''})`);
  let result;
  try {
    result = oneCycle
      ? await learn.fitOneCycle(epochs, { ...(resumeFrom ? { resumeFrom } : { lrMax: lrMax ?? lr }), ...watch })
      : await learn.fit(epochs, { ...(resumeFrom ? { resumeFrom } : { lr }), ...watch });
  } finally {
    interrupt.dispose();
  }
  // Epochs as people count them: 1-based, "epoch N of M" (the JSON and files keep 0-based indices).
  if (stopper && stopper.stoppedEpoch !== null) {
    say(`early stopping: no lower validation loss for ${patience} epoch(s), stopped after epoch ${stopper.stoppedEpoch + 1} of ${epochs}`);
  }
  if (saver?.lastSaved) {
    say(`saved the best weights (epoch ${saver.bestEpoch! + 1} of ${epochs}, validLoss ${saver.best!.toFixed(4)}) to ${saver.lastSaved}`);
  }
  const exported = modelDir === undefined ? null : await exportModel(model, modelDir);
  if (exported) say(`exported the model (TensorFlow.js format) to ${exported.modelJson}`);
  const seconds = (performance.now() - started) / 1000;
  const last = learn.recorder!.epochs.at(-1);
  const summary = {
    status: result.status,
    model: modelName,
    epochs: result.epochs,
    iterations: result.iterations,
    trainLoss: last?.trainLoss ?? null,
    validLoss: result.metrics?.validLoss ?? null,
    accuracy: result.metrics?.accuracy ?? null,
    backend: backend.name,
    // What the kernels computed with (--threads, auto by default); null on a native backend.
    threads: backend.threads,
    seconds: Math.round(seconds * 100) / 100,
    seed,
    batchSize,
    lr,
    optimizer,
    weightsSha256: weightsSha256(model),
    // Where this run continued from (`trainchart resume`), null for a run from its start.
    resumedFrom: result.resumedFrom,
    // Only with the flags that make them meaningful, so a plain run's summary is unchanged.
    ...(oneCycle ? { lrMax: lrMax ?? lr } : {}),
    ...(saver ? { bestWeights: saver.lastSaved } : {}),
    ...(exported ? { modelDir: exported.dir } : {}),
    ...(vizRun ? { visualizer: vizRun.viz.url } : {}),
  };
  if (outDir) {
    // Checked (and created) before training; written atomically, so a crash leaves no half file.
    writeFileAtomic(join(outDir, 'result.json'), JSON.stringify(summary, null, 2) + '\n');
    writeFileAtomic(join(outDir, 'history.json'), JSON.stringify(learn.recorder!.epochs, null, 2) + '\n');
    say(`wrote ${join(outDir, 'result.json')} and history.json`);
  }
  say(
    `${summary.status}: ${summary.epochs} epochs, test accuracy ${(summary.accuracy ?? NaN).toFixed(4)}, ${summary.seconds}s on ${summary.backend}`,
  );
  if (interrupt.interrupted) {
    say(checkpointer?.written.length ? `interrupted: resume with  trainchart resume ${runDir}` : 'interrupted (nothing was saved: train with --out RUN --checkpoint-every N to be able to resume)');
  }
  if (json) process.stdout.write(JSON.stringify(summary) + '\n');
  model.dispose();
  learn.optimizer.dispose();
  await stately?.close();
  // The visualizer closes on every path (Ctrl-C too): its worker thread sends what the run posted
  // last (the final state, `done`) before the process exits; an exit right away could drop it.
  const vizCode = vizRun ? await vizRun.finish() : 0;
  return interrupt.interrupted ? 130 : vizCode;
}
