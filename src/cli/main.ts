#!/usr/bin/env node
import { trainCommand, TRAIN_HELP } from './train.js';
import { lrFindCommand } from './lrFind.js';
import { dryRunCommand } from './dryRun.js';
import { reportFailure, wantsJson } from './report.js';
import { packageVersion } from './version.js';
import { chartCommand } from './chart.js';
import { vizCommand } from './viz.js';
import { resumeCommand } from './resume.js';
import { sweepCommand } from './sweep.js';
import { workerCommand } from './worker.js';

const USAGE = `Usage: trainchart <command> [options]

Commands:
  train      train a model on the bundled MNIST (the main job)
  resume     continue a run of \`train --out RUN --checkpoint-every N\` from its latest checkpoint
  lr-find    find a learning rate (fastai's LR finder) and plot loss against lr
  dry-run    print every stage of the loop with its callbacks, controls and guards, without training
  chart      print the loop's statechart as svg, dot, mermaid or json
  viz        a short demo run shown live in the visualizer (statechart, charts, debugger)
  sweep      enqueue a sweep of runs on a job queue (Redis); status, results, cancel
  worker     train the runs of the queued sweeps (preemptible: a dead worker's run is resumed elsewhere)

Run \`trainchart <command> --help\` for a command's options, \`trainchart --version\` for the version.
`;

const commands: Record<string, (argv: string[]) => Promise<number>> = {
  train: trainCommand,
  'lr-find': lrFindCommand,
  'dry-run': dryRunCommand,
  chart: chartCommand,
  viz: vizCommand,
  resume: resumeCommand,
  sweep: sweepCommand,
  worker: workerCommand,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (command === '--version' || command === '-v' || command === 'version') {
    process.stdout.write(`${packageVersion()}\n`);
    return 0;
  }
  const run = commands[command];
  if (!run) {
    process.stderr.write(`trainchart: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  return run(rest);
}

const argv = process.argv.slice(2);
main(argv).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.exitCode = reportFailure(error, wantsJson(argv));
  },
);

export { TRAIN_HELP };
