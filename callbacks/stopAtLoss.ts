import { Callback } from '../src/loop/callback.js';
import type { TrainContext } from '../src/loop/context.js';

/**
 * Stops training once the smoothed train loss is below `target`, with a guard instead of a
 * hook: the guard is read as each stage is left, so the batch whose loss crossed the target
 * finishes, then that epoch's validation and epochEnd run, and fit resolves 'stopped'.
 *
 * The README's "Stopping with a guard" example is this class, word for word
 * (test/readme-examples.test.ts keeps the two identical).
 */
export class StopAtLoss extends Callback {
  protected override readonly stateKeys = []; // no state to checkpoint: target is an option
  constructor(readonly target: number) {
    super();
    this.guards = { stopTraining: (ctx: TrainContext) => ctx.train && ctx.smoothLoss < this.target };
  }
}
