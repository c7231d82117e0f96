/**
 * The memory the training thread and the server's worker share (an Int32Array on a
 * SharedArrayBuffer). It is what lets a paused run wait with `Atomics.wait` — anywhere, even
 * inside tfjs's synchronous gradient call — while the worker keeps serving, and what makes the
 * checks on the training side cost one atomic read per stage.
 *
 * Control messages (resume, step, breakpoints, …) travel on a MessagePort the training thread
 * reads synchronously (`receiveMessageOnPort`); the worker bumps SEQ after posting one, which
 * both wakes a paused training thread and tells a running one there is something to read.
 */
import type { MessagePort } from 'node:worker_threads';
import type { MachineDescription } from '../../machines/describe.js';
import type { LoopPlan } from '../../src/dryRun.js';
import type { BatchItem, Breakpoint, DoneMessage, EpochMessage, EventItem, LrFindMessage, PausedMessage, RunStatus, StateMessage } from './protocol.js';

export const SEQ = 0;
/** 1 once a stop was asked for (a client's `stop`, Ctrl-C): the run's stopTraining guard reads it. */
export const STOP = 1;
/** WebSocket clients connected: the event log is only collected while someone watches. */
export const CLIENTS = 2;
/** 1 when the worker is gone (closed or crashed): a paused run must not wait for it. */
export const DETACHED = 3;
export const FLAG_SLOTS = 4;

export function newFlags(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(FLAG_SLOTS * Int32Array.BYTES_PER_ELEMENT));
}

/** Worker side: a control message was posted; wake whoever waits. */
export function signalControl(flags: Int32Array): void {
  Atomics.add(flags, SEQ, 1);
  Atomics.notify(flags, SEQ);
}

// ---- what the worker and the training thread say to each other (not the client protocol) ----

/** Worker → training thread, on the control port. */
export type ControlCommand =
  | { cmd: 'pause' }
  | { cmd: 'resume' }
  | { cmd: 'step' }
  | { cmd: 'stop' }
  | { cmd: 'breakpoints'; items: Breakpoint[] };

/** Training thread → worker. */
export type ToWorker =
  | { kind: 'run'; callbacks: LoopPlan; nEpochs: number; nTrainBatches: number; nValidBatches: number }
  | { kind: 'tick'; state: StateMessage | null; batches: BatchItem[]; epochs: EpochMessage[]; events: EventItem[]; dropped: number }
  | { kind: 'paused'; message: PausedMessage }
  | { kind: 'resumed'; reason: 'resume' | 'step' | 'stop' }
  | { kind: 'done'; message: DoneMessage }
  | { kind: 'lrfind'; message: LrFindMessage }
  | { kind: 'close' };

/** Worker → training thread, on the worker's own port (read when the training thread's event loop turns). */
export type FromWorker =
  | { kind: 'listening'; host: string; port: number; sigint: boolean }
  | { kind: 'listenError'; code: string; message: string }
  | { kind: 'sigint'; duringRun: boolean };

export interface WorkerInit {
  host: string;
  port: number;
  allowedHosts: string[];
  pageDir: string;
  flags: Int32Array;
  control: MessagePort;
  machine: MachineDescription;
  idlePlan: LoopPlan;
  breakpoints: Breakpoint[];
  catchSigint: boolean;
  status: RunStatus;
}
