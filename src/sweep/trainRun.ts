/**
 * Trains one run of a sweep in its directory, from its latest checkpoint when there is one.
 *
 * The run is built exactly as `trainchart train` builds it from the same options (the bundled
 * MNIST, the preset model seeded by `seed`, categorical cross-entropy, accuracy, `train`'s
 * defaults), so a run of a sweep and `trainchart train` with its options end with the same
 * `weightsSha256`. What a sweep adds changes no number: a Checkpoint callback writing into the
 * run's directory every `checkpointEvery` batches and at every epoch end, and the progress
 * report. Whether it starts or resumes is read off the directory, never off the job: a job
 * delivered again (a retry, a stalled job handed over, a duplicate) continues where the last
 * checkpoint left it, and the exact resume makes that the same run.
 */
import { Checkpoint } from '../../callbacks/checkpoint.js';
import { EarlyStopping } from '../../callbacks/earlyStopping.js';
import { selectBackend } from '../backend/selectBackend.js';
import { mnist } from '../data/mnist.js';
import type { FitOptions } from '../fitOptions.js';
import { Learner } from '../learner.js';
import type { Callback } from '../loop/callback.js';
import { cnn, mlp } from '../models/presets.js';
import { weightsSha256 } from '../weightsHash.js';
import { listCheckpoints } from '../checkpoint/list.js';
import { SweepProgress, type RunProgress } from './progressReport.js';
import type { RunProgressReport, RunResult } from './runResult.js';
import type { RunConfig } from './runOptions.js';

export interface TrainRunOptions {
  /** The run's directory (the checkpoints, sweep-run.json, result.json). */
  dir: string;
  /** Aborting it stops the run at the next batch boundary, with a checkpoint (`learn.stop()`). */
  signal?: AbortSignal;
  onProgress?: (p: RunProgressReport) => void;
  /** Checkpoints kept in the directory (default 2: the latest, and one more should it be damaged). */
  keep?: number;
}

const finiteOrNull = (v: number | undefined | null) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export async function trainRun(config: RunConfig, options: TrainRunOptions): Promise<{ result: RunResult; interrupted: boolean }> {
  const { dir, signal, onProgress } = options;
  const backend = await selectBackend(config.backend);
  const started = performance.now();
  const { train, valid } = await mnist({
    batchSize: config.batchSize,
    seed: config.seed,
    ...(config.limitTrain !== undefined ? { limitTrain: config.limitTrain } : {}),
    ...(config.limitValid !== undefined ? { limitValid: config.limitValid } : {}),
  });
  const model = config.model === 'cnn' ? cnn({ seed: config.seed }) : mlp({ seed: config.seed });
  let learn: Learner | null = null;
  const history = () => learn?.recorder?.epochs ?? [];
  let lastReport: RunProgress | null = null;
  const report = (p: RunProgress) => {
    lastReport = p;
    const epochs = history();
    const validLosses = epochs.map((e) => e.valid?.validLoss).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    onProgress?.({ ...p, valid: epochs.at(-1)?.valid ?? null, bestValidLoss: validLosses.length ? Math.min(...validLosses) : null });
  };
  const callbacks: Callback[] = [
    ...(config.earlyStopping !== undefined ? [new EarlyStopping({ monitor: 'validLoss', patience: config.earlyStopping })] : []),
    new Checkpoint({ dir, everyBatches: config.checkpointEvery, keep: options.keep ?? 2 }),
    new SweepProgress(report),
  ];
  learn = new Learner({
    model,
    data: { train, valid },
    loss: 'categoricalCrossentropy',
    optimizer: config.optimizer,
    metrics: ['accuracy'],
    callbacks,
    seed: config.seed,
    progress: false,
  });
  try {
    const latest = listCheckpoints(dir).at(-1);
    // Resuming, the hyper-parameters (lr, wd) and the schedule's position come back from the checkpoint.
    const common: FitOptions = {
      ...(latest ? { resumeFrom: dir } : config.wd !== undefined ? { wd: config.wd } : {}),
      ...(signal ? { signal } : {}),
    };
    const result = config.oneCycle
      ? await learn.fitOneCycle(config.epochs, { ...common, lrMax: config.lrMax ?? config.lr })
      : await learn.fit(config.epochs, latest ? common : { ...common, lr: config.lr });
    const epochs = history();
    const last = epochs.at(-1);
    const validLosses = epochs.map((e) => e.valid?.validLoss).filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
    const metrics: Record<string, number> = { ...(result.metrics ?? last?.valid ?? {}) };
    if (last && Number.isFinite(last.trainLoss)) metrics.trainLoss = last.trainLoss;
    if (validLosses.length) metrics.bestValidLoss = Math.min(...validLosses);
    return {
      interrupted: Boolean(signal?.aborted) && result.status !== 'completed',
      result: {
        status: result.status,
        epochs: epochs.length,
        iterations: result.iterations,
        runIterations: (lastReport as RunProgress | null)?.iteration ?? result.iterations,
        trainLoss: finiteOrNull(last?.trainLoss),
        validLoss: finiteOrNull(metrics.validLoss),
        accuracy: finiteOrNull(metrics.accuracy),
        metrics,
        backend: backend.name,
        seconds: Math.round(((performance.now() - started) / 1000) * 100) / 100,
        weightsSha256: weightsSha256(model),
        resumedFrom: result.resumedFrom,
      },
    };
  } finally {
    learn.dispose();
  }
}
