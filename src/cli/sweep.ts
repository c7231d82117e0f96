import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';
import { cancelSweep } from '../sweep/cancel.js';
import { enqueueSweep } from '../sweep/enqueue.js';
import { DEFAULT_METRIC, formatResults, plotSweepResults, resultsCsv, resultsJson, sweepResults } from '../sweep/results.js';
import { formatStatus, sweepStatus } from '../sweep/status.js';
import type { OptionSpec } from './args.js';

export const DEFAULT_REDIS = 'redis://127.0.0.1:6379';

export const SWEEP_HELP = `Usage:
  trainchart sweep SPEC.json --redis URL [--name NAME] [--replace] [--runs DIR] [--json]
  trainchart sweep status NAME --redis URL [--json]
  trainchart sweep results NAME --redis URL [--json | --csv] [--metric M] [--plot PATH]
  trainchart sweep cancel NAME --redis URL

sweep SPEC.json   checks the spec and enqueues its runs (grid × seeded random search), then returns;
                  \`trainchart worker\` trains them. An existing sweep name is refused unless --replace.
                  --runs DIR: the workers' runs directory, checked writable before anything is enqueued.
status NAME       a table of the runs: state, epoch, iteration, best validation loss, attempts, worker
results NAME      the finished runs ranked by --metric (default ${DEFAULT_METRIC}; accuracy ranks highest
                  first), the best configuration; --json one line { runs, best }, --csv a table;
                  --plot PATH writes PATH.svg and PATH.png: the metric against each swept option
cancel NAME       removes the runs that have not started (running ones finish)

  --redis URL     the queue's Redis (default ${DEFAULT_REDIS})

A spec: { "name": "lr-scan", "base": { "model": "mlp", "epochs": 1, "limitTrain": 1000, "seed": 1 },
          "grid": { "lr": [0.001, 0.003] },
          "random": { "n": 8, "seed": 7, "space": { "wd": { "min": 1e-5, "max": 1e-2, "log": true },
                                                    "batchSize": [32, 64] } } }
(base: \`trainchart train\`'s options in camelCase; see docs/sweeps.md)
`;

/** node's parseArgs with positionals, every mistake a ConfigError that says what to type. */
function parse(command: string, argv: string[], options: OptionSpec): { values: Record<string, string | boolean | undefined>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
    return { values: values as Record<string, string | boolean | undefined>, positionals };
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).replace(/\.+$/, '');
    throw new ConfigError(`${command}: ${why}. Run \`trainchart sweep --help\` for the options.`);
  }
}

/** `--help` on a subcommand: the one help text (it is short). */
function helped(v: Record<string, unknown>): boolean {
  if (v.help) process.stdout.write(SWEEP_HELP);
  return Boolean(v.help);
}

const redisOf = (v: Record<string, unknown>) => (typeof v.redis === 'string' ? v.redis : (process.env.TRAINCHART_REDIS ?? DEFAULT_REDIS));

function oneName(command: string, positionals: string[]): string {
  if (positionals.length !== 1) {
    throw new ConfigError(`sweep ${command}: give one sweep name, e.g. \`trainchart sweep ${command} lr-scan --redis URL\`, got ${positionals.length ? positionals.join(' ') : 'none'}`);
  }
  return positionals[0]!;
}

async function readSpec(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`sweep: cannot read the spec ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}): give the path of a JSON file`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`sweep: the spec ${path} is not valid JSON (${(e as Error).message})`);
  }
}

export async function sweepCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '--help' || sub === '-h') {
    process.stdout.write(SWEEP_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub === 'status') {
    const { values: v, positionals } = parse('sweep status', rest, { redis: { type: 'string' }, json: { type: 'boolean' } });
    if (helped(v)) return 0;
    const status = await sweepStatus(oneName('status', positionals), { connection: redisOf(v) });
    process.stdout.write(v.json ? JSON.stringify(status) + '\n' : formatStatus(status));
    return 0;
  }
  if (sub === 'results') {
    const { values: v, positionals } = parse('sweep results', rest, {
      redis: { type: 'string' },
      json: { type: 'boolean' },
      csv: { type: 'boolean' },
      metric: { type: 'string' },
      plot: { type: 'string' },
    });
    if (helped(v)) return 0;
    if (v.json && v.csv) throw new ConfigError('sweep results: --json and --csv are two formats of one table: give one');
    const results = await sweepResults(oneName('results', positionals), {
      connection: redisOf(v),
      ...(typeof v.metric === 'string' ? { metric: v.metric } : {}),
    });
    const human = v.json || v.csv ? process.stderr : process.stdout;
    if (typeof v.plot === 'string') {
      const files = await plotSweepResults(results, v.plot);
      human.write(`wrote ${files.svg} and ${files.png}\n`);
    }
    process.stdout.write(v.json ? resultsJson(results) + '\n' : v.csv ? resultsCsv(results) : formatResults(results));
    return 0;
  }
  if (sub === 'cancel') {
    const { values: v, positionals } = parse('sweep cancel', rest, { redis: { type: 'string' }, json: { type: 'boolean' } });
    if (helped(v)) return 0;
    const out = await cancelSweep(oneName('cancel', positionals), { connection: redisOf(v) });
    process.stdout.write(
      v.json
        ? JSON.stringify(out) + '\n'
        : `sweep ${out.name}: removed ${out.removed.length} run(s) that had not started; ${out.running.length} running (they finish), ${out.done.length} finished or failed (kept)\n`,
    );
    return 0;
  }
  // trainchart sweep SPEC.json …
  const { values: v, positionals } = parse('sweep', argv, {
    redis: { type: 'string' },
    name: { type: 'string' },
    replace: { type: 'boolean' },
    runs: { type: 'string' },
    json: { type: 'boolean' },
  });
  if (helped(v)) return 0;
  if (positionals.length !== 1) {
    throw new ConfigError(`sweep: give one spec file, e.g. \`trainchart sweep lr-scan.json --redis URL\` (or status, results, cancel NAME), got ${positionals.join(' ') || 'none'}`);
  }
  const spec = await readSpec(positionals[0]!);
  const enqueued = await enqueueSweep(spec, {
    connection: redisOf(v),
    ...(typeof v.name === 'string' ? { name: v.name } : {}),
    ...(v.replace ? { replace: true } : {}),
    ...(typeof v.runs === 'string' ? { runsDir: v.runs } : {}),
  });
  if (v.json) {
    process.stdout.write(JSON.stringify({ name: enqueued.name, runs: enqueued.runs.map((r) => ({ id: r.id, params: r.params })), jobIds: enqueued.jobIds }) + '\n');
  } else {
    process.stdout.write(
      `sweep ${enqueued.name}: enqueued ${enqueued.runs.length} run(s); train them with \`trainchart worker --redis ${redisOf(v)} --runs ${typeof v.runs === 'string' ? v.runs : 'DIR'}\`, ` +
        `follow with \`trainchart sweep status ${enqueued.name}\`\n`,
    );
  }
  return 0;
}
