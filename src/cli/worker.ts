import { ConfigError } from '../errors.js';
import { startWorker } from '../sweep/worker.js';
import { intOption, parseCommandArgs } from './args.js';
import { DEFAULT_REDIS } from './sweep.js';

export const WORKER_HELP = `Usage: trainchart worker --redis URL --runs DIR [--concurrency N]

Trains the runs of every sweep enqueued in that Redis, each in a child process, checkpointing
into DIR/<sweep>/<run> (on several machines: a directory every worker reaches). A run whose
worker dies is handed to another worker, which resumes it from its latest checkpoint.
SIGTERM or Ctrl-C: the running runs stop at the next batch boundary, checkpoint and go back
to the queue, then the worker exits; a second Ctrl-C exits at once.

  --redis URL             the queue's Redis (default ${DEFAULT_REDIS})
  --runs DIR              where runs checkpoint (required; created if missing)
  --concurrency N         runs trained at once (default 1; each is a process using a core)
  --lock-duration MS      a job's lock without renewal (default 30000)
  --stalled-interval MS   between checks for runs whose worker is gone (default 30000);
                          a dead worker's run is handed over after lock-duration to
                          lock-duration + 2 × stalled-interval
  --max-stalled N         hand-overs of a run before it is failed (default 5)
  --name NAME             this worker's name in \`sweep status\` (default host:pid)
`;

export async function workerCommand(argv: string[]): Promise<number> {
  const v = parseCommandArgs('worker', argv, {
    redis: { type: 'string' },
    runs: { type: 'string' },
    concurrency: { type: 'string' },
    'lock-duration': { type: 'string' },
    'stalled-interval': { type: 'string' },
    'max-stalled': { type: 'string' },
    name: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    process.stdout.write(WORKER_HELP);
    return 0;
  }
  if (typeof v.runs !== 'string' || v.runs === '') throw new ConfigError('worker: --runs DIR is required (where runs checkpoint, e.g. --runs runs/sweeps)');
  const say = (line: string) => process.stderr.write(`worker: ${line}\n`);
  const handle = await startWorker({
    connection: typeof v.redis === 'string' ? v.redis : (process.env.TRAINCHART_REDIS ?? DEFAULT_REDIS),
    runsDir: v.runs,
    concurrency: intOption('concurrency', v.concurrency, 1),
    lockDuration: intOption('lock-duration', v['lock-duration'], 30_000, 100),
    stalledInterval: intOption('stalled-interval', v['stalled-interval'], 30_000, 100),
    maxStalledCount: intOption('max-stalled', v['max-stalled'], 5, 0),
    ...(typeof v.name === 'string' ? { name: v.name } : {}),
    log: say,
  });
  say(`${handle.name} ready (pid ${process.pid})`);
  await new Promise<void>((resolve) => {
    let signals = 0;
    const onSignal = (sig: NodeJS.Signals) => {
      signals += 1;
      if (signals > 1) {
        say(`${sig} again: exiting now (running runs are handed over from their last checkpoint)`);
        process.exit(130);
      }
      say(`${sig}: running runs stop at the next batch boundary, checkpoint and go back to the queue`);
      handle.close().then(resolve, (e: unknown) => {
        say(`closing failed: ${e instanceof Error ? e.message : String(e)}`);
        resolve();
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  say('stopped');
  return 0;
}
