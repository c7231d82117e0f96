/**
 * The shapes a run of a sweep reports: its progress while it trains and its result. Types
 * only, in a file of their own, so that the queue's side (status, results) can name them
 * without importing the training side.
 */
import type { ResumedFrom } from '../resume.js';
import type { RunProgress } from './progressReport.js';

/** What the job reports while it runs: the loop's position and the Recorder's validation so far. */
export interface RunProgressReport extends RunProgress {
  /** The last validation's loss and metrics (null before the first). */
  valid: Record<string, number> | null;
  bestValidLoss: number | null;
}

/** A finished (or stopped) run: `trainchart train --json`'s keys, and the run's own. */
export interface RunResult {
  /** The loop's final status: `completed`, or `stopped` (early stopping, or a stop request). */
  status: string;
  /** Epochs of the run that ran to their end (resumed ones included). */
  epochs: number;
  /** Train batches this attempt trained (as `train` and `resume` report it). */
  iterations: number;
  /** Train batches of the whole run. */
  runIterations: number;
  trainLoss: number | null;
  validLoss: number | null;
  accuracy: number | null;
  /** Every metric of the last validation, the last train loss and the best validation loss. */
  metrics: Record<string, number>;
  backend: string;
  /** This attempt's seconds. */
  seconds: number;
  weightsSha256: string;
  /** The checkpoint this attempt resumed from, or null when it started the run. */
  resumedFrom: ResumedFrom | null;
}
