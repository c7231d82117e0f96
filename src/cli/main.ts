#!/usr/bin/env node
import { TrainchartError } from '../errors.js';
import { trainCommand, TRAIN_HELP } from './train.js';
import { lrFindCommand } from './lrFind.js';
import { dryRunCommand } from './dryRun.js';
import { resumeCommand } from './resume.js';

const USAGE = `Usage: trainchart <command> [options]

Commands:
  train      train a model on the bundled MNIST (the main job)
  resume     continue a run of \`train --out RUN --checkpoint-every N\` from its latest checkpoint
  lr-find    find a learning rate (fastai's LR finder) and plot loss against lr
  dry-run    print every stage of the loop with its callbacks, controls and guards, without training

Run \`trainchart <command> --help\` for a command's options.
`;

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  train: trainCommand,
  'lr-find': lrFindCommand,
  'dry-run': dryRunCommand,
  resume: resumeCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  const run = commands[command];
  if (!run) {
    process.stderr.write(`trainchart: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  return run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof TrainchartError) {
      process.stderr.write(`trainchart: ${error.message}\n`);
      process.exitCode = error.code === 'CONFIG' || error.code === 'DATA' ? 2 : 1;
    } else {
      process.stderr.write(`trainchart: unexpected error: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exitCode = 1;
    }
  },
);

export { TRAIN_HELP };
