/**
 * The checkpoint API a run of a sweep is driven through (issue 8's contract: the `Checkpoint`
 * callback, `listCheckpoints(dir)`, `fit(n, { resumeFrom, signal })`, `FitResult.resumedFrom`).
 *
 * Read off the package's own exports at run time so that this file is the only place that
 * knows how it is reached; without it (a build that predates checkpoints) `available` is false,
 * a run trains from the start every time it is delivered, and a stop request is not honoured
 * until the run ends. Exact resume is what makes a retried or duplicated job safe; without
 * checkpoints it is still correct (the same seed gives the same weights), only wasteful.
 */
import * as api from '../index.js';
import type { Callback } from '../loop/callback.js';
import type { CheckpointInfo } from './runResult.js';

export interface CheckpointOptions {
  dir: string;
  everyBatches?: number;
  everyEpochs?: number;
  keep?: number;
  onStop?: boolean;
}

export interface CheckpointApi {
  available: boolean;
  createCheckpoint(options: CheckpointOptions): Callback | null;
  /** The checkpoints in `dir`, oldest first; [] when there is none (or no directory). */
  listCheckpoints(dir: string): CheckpointInfo[];
}

const exported = api as unknown as Record<string, unknown>;
const CheckpointClass = exported.Checkpoint as (new (options: CheckpointOptions) => Callback) | undefined;
const list = exported.listCheckpoints as ((dir: string) => CheckpointInfo[]) | undefined;

export const checkpointApi: CheckpointApi = {
  available: typeof CheckpointClass === 'function' && typeof list === 'function',
  createCheckpoint: (options) => (typeof CheckpointClass === 'function' ? new CheckpointClass(options) : null),
  listCheckpoints: (dir) => {
    if (typeof list !== 'function') return [];
    try {
      return list(dir);
    } catch (e) {
      // A directory with no checkpoint yet is a run to start, not an error.
      if ((e as { code?: string }).code === 'CHECKPOINT') return [];
      throw e;
    }
  },
};
