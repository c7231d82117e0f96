import { Callback } from '../../src/loop/callback.js';

/** The README's "raise the LR by 10% after every epoch" example, run by test/readme-examples.test.ts. */
export class RaiseLrEveryEpoch extends Callback {
  onEpochEnd() {
    this.learn.lr *= 1.1;
  }
}
