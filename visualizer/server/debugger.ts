/**
 * The debugger, on the training thread: after every event the loop settles (runLoop's observer),
 * it decides whether the run pauses there, and if so blocks the thread until a client resumes,
 * steps or stops. Blocking with `Atomics.wait` is what lets a breakpoint hold the run *in* any
 * stage — lossBegin and backwardBegin too, which run inside tfjs's synchronous gradient call —
 * while the server's worker keeps the page live.
 *
 *   running ──(breakpoint matches | pause asked | step asked)──▶ paused
 *   paused ──resume──▶ running      paused ──step──▶ running, pauses at the next stage
 *   paused ──stop──▶ running to the end (stopTraining; no more pauses)
 *
 * Only states with a stage pause (not `ready`, `jump`, `epoch.train.gradients` or final states).
 * When nothing is asked and no breakpoint is set, the per-stage cost is two atomic reads.
 */
import type { Stage } from '../../machines/stages.js';
import type { TrainContext } from '../../src/loop/context.js';
import type { LoopSnapshot } from '../../src/loop/observer.js';
import { matchBreakpoint, type StatePaths } from './breakpoints.js';
import { pausedContext, statePathOf } from './contextView.js';
import type { Breakpoint, PauseReason, PausedMessage } from './protocol.js';
import { STOP, type ControlCommand } from './sharedFlags.js';
import type { WorkerHost } from './workerHost.js';

type Decision = 'resume' | 'step' | 'stop';

/** While paused, wake this often to notice a worker that is gone (it sets DETACHED and wakes us when it can). */
const LIVENESS_MS = 1000;

export class Debugger {
  breakpoints: Breakpoint[];
  /** A pause asked for while running: taken at the next stage. */
  private want: 'pause' | 'step' | null = null;
  private stopped = false;
  paused = false;

  constructor(
    private readonly host: WorkerHost,
    private readonly paths: StatePaths,
    breakpoints: Breakpoint[],
  ) {
    this.breakpoints = breakpoints;
  }

  /** A new run: breakpoints carry over; a pause, step or stop asked for between runs does not. */
  startRun(): void {
    this.apply(this.host.takeCommands(), false);
    this.want = null;
    this.stopped = false;
    Atomics.store(this.host.flags, STOP, 0);
  }

  get stopRequested(): boolean {
    return this.stopped || Atomics.load(this.host.flags, STOP) === 1;
  }

  /** A stop asked for on the training thread itself (API, Ctrl-C without the worker's signal handle). */
  requestStop(): void {
    Atomics.store(this.host.flags, STOP, 1);
    this.stopped = true;
  }

  /** Reads the commands; returns what ends a pause, if one of them does (stop wins). */
  private apply(commands: ControlCommand[], paused: boolean): Decision | null {
    let decision: Decision | null = null;
    for (const c of commands) {
      switch (c.cmd) {
        case 'breakpoints':
          this.breakpoints = c.items;
          break;
        case 'pause':
          if (!paused) this.want ??= 'pause';
          break;
        case 'step':
          this.want = 'step';
          if (paused && decision !== 'stop') decision = 'step';
          break;
        case 'resume':
          this.want = null;
          if (paused && decision !== 'stop') decision = 'resume';
          break;
        case 'stop':
          this.stopped = true;
          this.want = null;
          decision = 'stop';
          break;
      }
    }
    return decision;
  }

  /**
   * runLoop's observation point. `beforePause` runs just before the thread blocks (the page gets
   * the latest state and records first).
   */
  afterEvent(snapshot: LoopSnapshot, ctx: TrainContext, beforePause: () => void): void {
    if (this.host.hasCommands) this.apply(this.host.takeCommands(), false);
    if (this.want === null && this.breakpoints.length === 0) return;
    if (this.stopRequested || this.host.detached) return;
    const path = statePathOf(snapshot.value);
    const stage = this.paths.get(path);
    if (!stage || snapshot.status !== 'active') return;
    const hit = this.breakpoints.length ? matchBreakpoint(this.breakpoints, stage, path, ctx) : null;
    if (!hit && this.want === null) return;
    const reason: PauseReason = hit ? 'breakpoint' : this.want!;
    this.want = null;
    beforePause();
    this.pause(reason, hit, path, stage, snapshot, ctx);
  }

  private pause(reason: PauseReason, hit: Breakpoint | null, path: string, stage: Stage, snapshot: LoopSnapshot, ctx: TrainContext): void {
    const c = snapshot.context;
    const message: PausedMessage = {
      type: 'paused',
      path,
      stage,
      epoch: c.epoch,
      iteration: c.iteration,
      batchIndex: c.batchIndex,
      train: c.train,
      reason,
      breakpoint: hit,
      ctx: pausedContext(ctx),
    };
    this.paused = true;
    this.host.post({ kind: 'paused', message });
    let decision: Decision | null = null;
    while (decision === null) {
      decision = this.apply(this.host.takeCommands(), true);
      if (decision === null && Atomics.load(this.host.flags, STOP) === 1) decision = 'stop';
      if (decision === null && this.host.detached) decision = 'resume';
      if (decision === null) this.host.waitForCommand(LIVENESS_MS);
    }
    this.paused = false;
    this.host.post({ kind: 'resumed', reason: decision });
  }
}
