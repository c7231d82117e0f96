import { Progress } from '../../callbacks/progress.js';
import { BACKEND_HELP, BACKEND_OPTIONS, backendArgs, selectBackendFromArgs } from './backendArgs.js';
import { mnist } from '../data/mnist.js';
import { Learner } from '../learner.js';
import { cnn, mlp } from '../models/presets.js';
import { DEFAULT_PORT } from '../../visualizer/index.js';
import { choiceOption, intOption, parseCommandArgs, positiveNumberOption } from './args.js';
import { startVizFromArgs, VIZ_OPTIONS } from './vizArgs.js';

export const VIZ_COMMAND_HELP = `Usage: trainchart viz [options]

A short demo run on MNIST (2 epochs on 6000 images) in the visualizer, a local page that draws
the training loop's statechart live and lets you break on a stage, step and resume. The run
starts paused at trainBegin: open the printed URL and press resume (or step). The page keeps
serving the finished run until Ctrl-C.

  --port P               port (default ${DEFAULT_PORT}; 0 picks a free one)
  --host H               address to bind (default 127.0.0.1: this machine only)
  --break SPEC           where to pause (default trainBegin; none: do not pause), e.g. lossBegin,
                         backwardEnd:smoothLoss>2 (repeatable)
  --epochs N             epochs (default 2)
  --limit-train N        train images (default 6000)
  --model mlp|cnn        model preset (default mlp)
  --lr X                 learning rate (default 0.002)
  --seed S               seed (default 1)
${BACKEND_HELP}`;

export async function vizCommand(argv: string[]): Promise<number> {
  const v = parseCommandArgs('viz', argv, {
    port: VIZ_OPTIONS.port,
    host: VIZ_OPTIONS.host,
    break: VIZ_OPTIONS.break,
    epochs: { type: 'string' },
    'limit-train': { type: 'string' },
    model: { type: 'string' },
    lr: { type: 'string' },
    seed: { type: 'string' },
    ...BACKEND_OPTIONS,
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    process.stdout.write(VIZ_COMMAND_HELP);
    return 0;
  }
  const epochs = intOption('epochs', v.epochs, 2);
  const limitTrain = intOption('limit-train', v['limit-train'], 6000);
  const modelName = choiceOption('model', v.model, ['mlp', 'cnn'] as const, 'mlp');
  const lr = positiveNumberOption('lr', v.lr, 2e-3);
  const seed = intOption('seed', v.seed, 1, 0);
  const backendChoice = backendArgs(v);
  const say = (line: string) => process.stdout.write(line + '\n');

  await selectBackendFromArgs(backendChoice, say);
  const vizRun = (await startVizFromArgs(v, say, { always: true, keep: true, break: ['trainBegin'] }))!;
  const { train, valid } = await mnist({ batchSize: 64, seed, limitTrain, limitValid: 1000 });
  say(`data: MNIST ${train.length} train / ${valid.length} test images`);
  const model = modelName === 'cnn' ? cnn({ seed }) : mlp({ seed });
  const learn = new Learner({
    model,
    data: { train, valid },
    loss: 'categoricalCrossentropy',
    metrics: ['accuracy'],
    callbacks: [new Progress({ stream: process.stdout })],
    seed,
  });
  const result = await learn.fit(epochs, { lr, viz: vizRun.viz });
  say(`${result.status}: ${result.epochs} epochs, test accuracy ${(result.metrics?.accuracy ?? NaN).toFixed(4)}`);
  model.dispose();
  learn.optimizer.dispose();
  return vizRun.finish();
}
