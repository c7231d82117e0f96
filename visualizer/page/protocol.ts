/**
 * The messages the page reads and sends (docs/visualizer.md is the protocol's reference).
 * Every field the page reads is listed here; the page tolerates missing optional fields
 * and ignores message types it does not know, so a newer server does not break an older page.
 */
import type { MachineDescription } from '../../machines/describe.js';
import type { LoopPlan } from '../../src/dryRun.js';

export type RunStatus = 'idle' | 'running' | 'paused' | 'completed' | 'stopped' | 'failed';
export const CONDITION_OPS = ['<', '<=', '>', '>=', '==', '!='] as const;
export type ConditionOp = (typeof CONDITION_OPS)[number];

export interface Condition {
  field: string;
  op: ConditionOp;
  value: number;
}

export interface Breakpoint {
  stage: string;
  /** Narrows a stage breakpoint to one machine state (`epoch.train.lossBegin`). */
  path?: string;
  when?: Condition;
}

export interface BatchPoint {
  iteration: number;
  epoch: number;
  loss: number | null;
  smoothLoss: number | null;
  lr: number | null;
  momentum: number | null;
}

export interface EpochPoint {
  epoch: number;
  trainLoss: number | null;
  validLoss: number | null;
  metrics: Record<string, number | null>;
}

export interface LogItem {
  kind: 'stage' | 'control' | 'guard' | string;
  stage?: string | null;
  path?: string | null;
  detail?: string | null;
  iteration?: number;
  epoch?: number;
}

export interface LrFindData {
  lrs: number[];
  losses: number[];
  /** valley, steep, minimum, slide: an lr each (or `{ lr }`). */
  suggestions: Record<string, number | { lr: number } | null>;
}

export interface HelloMessage {
  type: 'hello';
  machine: MachineDescription;
  callbacks: LoopPlan;
  status: RunStatus;
  nEpochs?: number;
  nTrainBatches?: number;
  nValidBatches?: number;
  breakpoints?: Breakpoint[];
  /** The run so far, so a late page fills its charts and log. */
  history?: { batches?: BatchPoint[]; epochs?: EpochPoint[]; events?: LogItem[]; lrfind?: LrFindData | null };
  /** The latest state message, if any. */
  state?: StateMessage | null;
  lrfind?: LrFindData | null;
}

export interface Position {
  path: string;
  stage: string | null;
  epoch: number;
  iteration: number;
  batchIndex: number;
  train: boolean;
}

export interface StateMessage extends Position {
  type: 'state';
  smoothLoss?: number | null;
  lr?: number | null;
  momentum?: number | null;
  lastLoss?: number | null;
  status: RunStatus;
  nEpochs?: number;
  /** Batches of the pass under way (train or validation). */
  nBatches?: number;
}

export interface PausedMessage extends Position {
  type: 'paused';
  reason: 'breakpoint' | 'step' | 'pause' | string;
  ctx?: Record<string, unknown>;
}

export type ServerMessage =
  | HelloMessage
  | StateMessage
  | PausedMessage
  | { type: 'batches'; items: BatchPoint[] }
  | ({ type: 'epoch' } & EpochPoint)
  | { type: 'events'; items: LogItem[]; dropped?: number }
  | { type: 'resumed'; reason: 'resume' | 'step' | 'stop' | string }
  | ({ type: 'lrfind' } & LrFindData)
  | { type: 'breakpoints'; items: Breakpoint[] }
  | { type: 'done'; status: RunStatus; error?: string | null }
  | { type: 'error'; message: string };

export type ClientMessage =
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'step' }
  | { type: 'stop' }
  | { type: 'break'; stage: string; path?: string; when?: Condition }
  // clear without stage: every breakpoint; with stage: that stage's; with path too: that state's.
  | { type: 'clear'; stage?: string; path?: string };

/** A state path as the page keys it: dotted, whatever form the server sent. */
export function normalizePath(path: unknown): string {
  if (Array.isArray(path)) return path.join('.');
  if (typeof path === 'string') return path;
  if (path && typeof path === 'object') {
    // An XState state value ({ epoch: { train: 'lossBegin' } }): follow its single branch.
    const parts: string[] = [];
    let v: unknown = path;
    while (v && typeof v === 'object') {
      const [k, next] = Object.entries(v as Record<string, unknown>)[0] ?? [];
      if (k === undefined) break;
      parts.push(k);
      v = next;
    }
    if (typeof v === 'string') parts.push(v);
    return parts.join('.');
  }
  return '';
}
