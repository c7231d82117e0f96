/** The options and the result of `learn.fit`, shared by the Learner and its recipes. */
import type { InspectionEvent, Observer } from 'xstate';
import type { Recorder } from '../callbacks/recorder.js';
import type { FinalStatus } from '../machines/trainLoop.js';
import type { Callback } from './loop/callback.js';
import type { FitObserver } from './loop/observer.js';
import type { LearnerApi } from './loop/learnerApi.js';
import type { LoopActor } from './loop/runLoop.js';
import type { SmoothLossState } from './loop/smoothLoss.js';
import type { ResumedFrom } from './resume.js';

export interface FitOptions {
  lr?: number;
  wd?: number;
  /** Callbacks for this fit only (LR finder, schedules, …), after the learner's own. */
  callbacks?: Callback[];
  /** Hand control back to the event loop at least this often (ms). */
  yieldEveryMs?: number;
  /** XState's whole inspection stream of the loop's actor, for an external inspector (`--inspect-ws`): runs XState's live actor. */
  inspect?: Observer<InspectionEvent> | ((event: InspectionEvent) => void);
  /** Called once the loop's actor exists. */
  onActor?: (actor: LoopActor) => void;
  /** Resume at this epoch: every callback's jumpToEpoch(startEpoch) runs after onTrainBegin, then epoch startEpoch. */
  startEpoch?: number;
  /** With startEpoch: the callbacks' states (from `learn.callbackStates()`), restored just before jumpToEpoch. */
  callbackStates?: Record<string, Record<string, unknown>>;
  /** The smoothed train loss to continue from (from `learn.smoothLossState()`), so a resumed run smooths as if never stopped. */
  smoothLoss?: SmoothLossState;
  /**
   * Watch (and debug) the run in the visualizer: a `Visualizer` (from 'trainchart/visualizer'),
   * which the caller starts and closes, or its options (`{ port, host, break }`), for a server
   * this fit starts and closes again once the run is done.
   */
  viz?: FitObserver | Record<string, unknown>;
  /**
   * Resume from a checkpoint (docs/checkpoints.md): a run directory (the Checkpoint callback's
   * `dir`: its latest checkpoint) or one checkpoint's directory. `nEpochs` is the run's total.
   * Hyper-parameters, weights, optimizer, callback states and every random stream come back
   * from it, so `lr`/`wd` may not be given; the callbacks must be those of the original run.
   */
  resumeFrom?: string;
  /** Aborting it stops the run after the current batch, as `learn.stop()` does. */
  signal?: AbortSignal;
}

export interface FitResult {
  status: FinalStatus;
  /** Epochs that ran to epochEnd. */
  epochs: number;
  /** Train batches this fit trained (cancelled ones too; the epochs a startEpoch or `epoch: N` skipped are no batches). */
  iterations: number;
  /** Validation loss and metrics of the last validation pass (null if none ran). */
  metrics: Record<string, number> | null;
  /**
   * The smoothed train loss at the fit's end. When no callback read the losses, they are still
   * on the device: reading this reads them (one host read for every fit not read yet).
   */
  readonly smoothLoss: number;
  /** The checkpoint this fit resumed from (`resumeFrom`), or null for a fit from the start. */
  resumedFrom: ResumedFrom | null;
}

/**
 * What the recipes (`fitOneCycle`, `lrFind`) use of a learner. They are functions of a
 * learner, and the Learner's methods call them; typing them against this interface instead of
 * the class keeps the import graph a ladder (the Learner imports the recipes, never the reverse).
 */
export interface RecipeLearner extends LearnerApi {
  readonly callbacks: Callback[];
  readonly recorder: Recorder | null;
  fit(nEpochs: number, options?: FitOptions): Promise<FitResult>;
  /** Throws a typed error when `data` (assignable) is not trainable by this learner. */
  checkData(): void;
  /** The smoothed loss as the last fit left it (null before any), and a way to put one back (lrFind restores it). */
  smoothLossState(): SmoothLossState | null;
  restoreSmoothLossState(state: SmoothLossState | null): void;
  /** A fit is running on this learner (between fit's start and its settling). */
  readonly fitting: boolean;
}
