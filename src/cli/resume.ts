import { parseArgs } from 'node:util';
import { ConfigError } from '../errors.js';
import { readRunFile } from './runDir.js';
import { trainCommand } from './train.js';

export const RESUME_HELP = `Usage: trainchart resume RUN [--json]

Continues a run of \`trainchart train --out RUN --checkpoint-every N\` from its latest checkpoint
(RUN/checkpoints), with the arguments it was started with (RUN/run.json), so that it ends with
exactly the weights the run would have had without the interruption (same weightsSha256). A run
killed before its first checkpoint starts again from the beginning; a finished run trains
nothing and prints its result again. The --json line has train's keys, and resumedFrom.
`;

export async function resumeCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
  } catch (e) {
    throw new ConfigError(`resume: ${(e instanceof Error ? e.message : String(e)).replace(/\.+$/, '')}. Run \`trainchart resume --help\`.`);
  }
  if (parsed.values.help) {
    process.stdout.write(RESUME_HELP);
    return 0;
  }
  const [runDir, ...extra] = parsed.positionals;
  if (!runDir || extra.length) {
    throw new ConfigError('resume: give exactly one run directory, e.g. `trainchart resume runs/a` (the --out of the train command)');
  }
  // The run is where it is now (it may have been moved or copied): its --out is RUN.
  const trainArgs = withoutOut(readRunFile(runDir));
  return trainCommand([...trainArgs, '--out', runDir, ...(parsed.values.json ? ['--json'] : [])], { runDir });
}

function withoutOut(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--out') i++;
    else if (!argv[i]!.startsWith('--out=')) out.push(argv[i]!);
  }
  return out;
}
