/**
 * The visualizer's WebSocket protocol (`/ws`, JSON text frames), as types. docs/visualizer.md
 * documents every message with examples; this file is the one place the shapes are declared,
 * for the server, the page and any script that drives a run.
 *
 * Numbers that are not finite (a smoothed loss before the first batch is NaN) travel as `null`,
 * as JSON has no NaN.
 */
import type { MachineDescription } from '../../machines/describe.js';
import type { Stage } from '../../machines/stages.js';
import type { LoopPlan } from '../../src/dryRun.js';

export const PROTOCOL_VERSION = 1;

/** `idle`: the server is up, no run has started; then the run's status. */
export type RunStatus = 'idle' | 'running' | 'paused' | 'completed' | 'stopped' | 'failed';

export type CompareOp = '<' | '<=' | '>' | '>=' | '==' | '!=';

/** A condition on a context field: data, compared with a fixed table of operators, never evaluated as code. */
export interface Condition {
  field: string;
  op: CompareOp;
  value: number | boolean;
}

/** A breakpoint on every state of `stage`, or only on the state at `path` (e.g. `epoch.train.lossBegin`). */
export interface Breakpoint {
  stage: Stage;
  path?: string;
  when?: Condition;
}

export interface BatchItem {
  iteration: number;
  epoch: number;
  loss: number | null;
  smoothLoss: number | null;
  lr: number;
  momentum: number;
}

export interface EventItem {
  kind: 'stage' | 'control' | 'guard';
  stage: Stage | null;
  path: string;
  detail: string;
  iteration: number;
  epoch: number;
}

// ---- server → client ----

export interface HelloMessage {
  type: 'hello';
  protocol: number;
  /** describeMachine(trainLoopMachine): every state and transition of the loop. */
  machine: MachineDescription;
  /** loopPlan(callbacks) of the run (the dry run's data): per stage the callbacks, controls and guards. */
  callbacks: LoopPlan;
  status: RunStatus;
  nEpochs: number;
  nTrainBatches: number;
  nValidBatches: number;
  breakpoints: Breakpoint[];
  /** The run so far, so a late client can fill its charts and log. */
  history: { batches: BatchItem[]; epochs: EpochMessage[]; events: EventItem[]; lrfind: LrFindMessage | null };
  /** The latest state message, or null before the first. */
  state: StateMessage | null;
}

export interface StateMessage {
  type: 'state';
  /** The state's path in the machine (`epoch.train.lossBegin`). */
  path: string;
  /** Its stage, or null in a state without hooks (`ready`, `jump`, `epoch.train.gradients`, final states). */
  stage: Stage | null;
  epoch: number;
  iteration: number;
  batchIndex: number;
  train: boolean;
  smoothLoss: number | null;
  lr: number;
  momentum: number;
  /** Raw loss of the batch under way (null before its loss is computed). */
  lastLoss: number | null;
  status: RunStatus;
  nEpochs: number;
  nBatches: number;
}

export interface JsonTensorInfo {
  shape: number[];
  dtype: string;
}

/** What a hook sees in the stage the run is paused in, as JSON. */
export interface PausedContext {
  stage: Stage;
  epoch: number;
  nEpochs: number;
  iteration: number;
  batchIndex: number;
  nBatches: number;
  train: boolean;
  smoothLoss: number | null;
  lastLossValue: number | null;
  lastMetrics: Record<string, number | null> | null;
  controls: Record<string, boolean>;
  lr: number;
  momentum: number;
  wd: number;
  lastInput: JsonTensorInfo | null;
  lastTarget: JsonTensorInfo | null;
  lastOutput: JsonTensorInfo | null;
  lastLoss: JsonTensorInfo | null;
  error: string | null;
}

export type PauseReason = 'breakpoint' | 'step' | 'pause';

export interface PausedMessage {
  type: 'paused';
  path: string;
  stage: Stage;
  epoch: number;
  iteration: number;
  batchIndex: number;
  train: boolean;
  reason: PauseReason;
  /** The breakpoint that matched (reason `breakpoint`), else null. */
  breakpoint: Breakpoint | null;
  ctx: PausedContext;
}

export interface ResumedMessage {
  type: 'resumed';
  /** What ended the pause: `resume`, `step` (pauses again at the next stage) or `stop`. */
  reason: 'resume' | 'step' | 'stop';
}

export interface BatchesMessage {
  type: 'batches';
  items: BatchItem[];
}

export interface EpochMessage {
  type: 'epoch';
  epoch: number;
  /** Train batches done in the run by the end of the epoch (where its validation point is plotted). */
  iteration: number;
  /** Mean raw loss of the epoch's train batches. */
  trainLoss: number | null;
  /** Loss of the epoch's validation pass, null without one. */
  validLoss: number | null;
  /** The validation metrics but the loss, by name (`{ accuracy: 0.93 }`); empty without a validation pass. */
  metrics: Record<string, number | null>;
  seconds: number;
}

export interface EventsMessage {
  type: 'events';
  items: EventItem[];
  /** Events left out since the previous message (only the latest are sent). */
  dropped: number;
}

export interface LrFindMessage {
  type: 'lrfind';
  lrs: number[];
  losses: number[];
  suggestions: Record<string, number | null>;
}

export interface BreakpointsMessage {
  type: 'breakpoints';
  items: Breakpoint[];
}

export interface DoneMessage {
  type: 'done';
  status: 'completed' | 'stopped' | 'failed';
  /** The error's message when the run failed. */
  error: string | null;
  epochs: number;
  iterations: number;
}

export interface ErrorMessage {
  type: 'error';
  message: string;
}

export type ServerMessage =
  | HelloMessage
  | StateMessage
  | PausedMessage
  | ResumedMessage
  | BatchesMessage
  | EpochMessage
  | EventsMessage
  | LrFindMessage
  | BreakpointsMessage
  | DoneMessage
  | ErrorMessage;

// ---- client → server ----

export type ClientMessage =
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'step' }
  | { type: 'stop' }
  | { type: 'break'; stage: Stage; path?: string; when?: Condition }
  | { type: 'clear'; stage?: Stage; path?: string };
