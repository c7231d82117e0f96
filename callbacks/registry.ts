import type { Callback } from '../src/loop/callback.js';
import { CSVLogger } from './csvLogger.js';
import { EarlyStopping } from './earlyStopping.js';
import { GradientAccumulation } from './gradientAccumulation.js';
import { GradientClipping } from './gradientClipping.js';
import { MixUp } from './mixUp.js';
import { Progress } from './progress.js';
import { Recorder } from './recorder.js';
import { ReduceLROnPlateau } from './reduceLrOnPlateau.js';
import { SaveModel } from './saveModel.js';
import { TerminateOnNaN } from './terminateOnNan.js';

/**
 * The built-in callbacks by the names the CLI accepts (`trainchart dry-run --callbacks
 * recorder,progress`): each entry makes a fresh instance with its default options.
 */
export const BUILTIN_CALLBACKS: Record<string, () => Callback> = {
  recorder: () => new Recorder(),
  progress: () => new Progress(),
  earlyStopping: () => new EarlyStopping(),
  reduceLrOnPlateau: () => new ReduceLROnPlateau(),
  terminateOnNan: () => new TerminateOnNaN(),
  gradientClipping: () => new GradientClipping({ maxNorm: 1 }),
  mixUp: () => new MixUp(),
  csvLogger: () => new CSVLogger({ path: 'runs/history.csv' }),
  gradientAccumulation: () => new GradientAccumulation({ nBatches: 2 }),
  saveModel: () => new SaveModel({ dir: 'runs/models' }),
};
