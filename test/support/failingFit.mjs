// Preloaded (`node --import`) into a CLI run by test/cli-errors.test.ts: makes every fit throw
// a plain Error, i.e. an unexpected failure (not a TrainchartError), after the options and
// output paths were accepted. The CLI imports this same module instance, so it sees the patch.
import { Learner } from '../../dist/src/learner.js';

Learner.prototype.fit = async function fit() {
  throw new Error('disk on fire (injected by test/support/failingFit.mjs)');
};
