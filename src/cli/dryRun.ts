import { BUILTIN_CALLBACKS } from '../../callbacks/registry.js';
import type { Callback } from '../loop/callback.js';
import { describeLoop, loopPlan } from '../dryRun.js';
import { ConfigError } from '../errors.js';
import { choiceOption, parseCommandArgs } from './args.js';

export const DRY_RUN_HELP = `Usage: trainchart dry-run [options]

Prints what a fit would do, without training: every stage of the loop in the order the
machine runs it, the callbacks that run there (by order), the controls a hook there may
return and the guards read there.

  --model mlp|cnn        model preset whose size is reported (default mlp); the loop is the same for every model
  --callbacks a,b,c      built-in callbacks, by name (default: recorder,progress, what \`train\` runs)
  --json                 print the plan as one JSON object
`;

/** Built-in callbacks by name; an unknown name is a ConfigError listing the known ones. */
export function callbacksByName(names: string): Callback[] {
  const known = Object.keys(BUILTIN_CALLBACKS);
  return names
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n.length > 0)
    .map((name) => {
      const make = Object.hasOwn(BUILTIN_CALLBACKS, name) ? BUILTIN_CALLBACKS[name] : undefined;
      if (!make) throw new ConfigError(`--callbacks: unknown callback "${name}"; the built-in callbacks are ${known.join(', ')}`);
      return make();
    });
}

export async function dryRunCommand(argv: string[]): Promise<number> {
  const v = parseCommandArgs('dry-run', argv, {
    model: { type: 'string' },
    callbacks: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    process.stdout.write(DRY_RUN_HELP);
    return 0;
  }
  const modelName = choiceOption('model', v.model, ['mlp', 'cnn'] as const, 'mlp');
  const callbacks = callbacksByName(typeof v.callbacks === 'string' ? v.callbacks : 'recorder,progress');
  // The preset is built only to report its size (no data is loaded); tfjs is loaded on demand.
  const { cnn, mlp } = await import('../models/presets.js');
  // The plain cpu backend is enough to build a model; selecting it also keeps tfjs's banner quiet.
  const { selectBackend } = await import('../backend/selectBackend.js');
  await selectBackend('cpu');
  const model = modelName === 'cnn' ? cnn() : mlp();
  const parameters = model.countParams();
  model.dispose();
  if (v.json) {
    process.stdout.write(JSON.stringify({ model: { name: modelName, parameters }, ...loopPlan(callbacks) }) + '\n');
  } else {
    process.stdout.write(`Model: ${modelName} preset, ${parameters.toLocaleString('en-US')} parameters (the loop below is the same for every model)\n`);
    process.stdout.write(describeLoop(callbacks));
  }
  return 0;
}
