import type { ResumePoint } from '../../machines/trainLoop.js';

/**
 * A quiet point of a run (contract §6): the machine rests in a state it tags `quiet` — after a
 * train batch's batchEnd or after an epochEnd — and **every** hook and guard of that stage has
 * run, whatever the callbacks' orders. No batch, tape or pass is under way, so the whole run
 * can be saved here and continued later as if it had never stopped.
 *
 * The driver hands one to every callback that has an `atQuietPoint(point, ctx)` method (the
 * Checkpoint callback), in run order, before the machine moves on.
 */
export interface QuietPoint {
  /** The stage whose hooks just ran. */
  stage: 'batchEnd' | 'epochEnd';
  /** Where a run resumed from here continues. */
  resume: ResumePoint;
  /** The run's total epochs. */
  nEpochs: number;
  /**
   * stopTraining is in force (a hook, a guard, `learn.stop()`, a signal): this is the last quiet
   * point of the run before it ends — for a stop in a train batch, before the stopped epoch's
   * validation, so a run resumed from here goes on as if it had never stopped.
   */
  stopping: boolean;
  /** The machine's persisted snapshot here (plain JSON data). */
  snapshot: unknown;
  /**
   * Everything a checkpoint needs to continue the run from here (weights, optimizer, callback
   * states, random streams, carried gradients, …), copied now. Supplied by whoever runs the
   * loop (the Learner gives a `CapturedRun`, src/checkpoint/capture.ts); throws when it was not.
   */
  capture(): unknown;
}
