/**
 * The page's log of recent events, from the loop's steps (src/loop/stepInspection.ts): states
 * entered, controls that turned on, guarded transitions taken. About 14 step events arrive per
 * batch; only three kinds of item are kept, only while a client is connected, and only the latest `capacity` between
 * two sends (the rest are counted as dropped) — a log to read, not a trace.
 */
import type { LoopSnapshot } from '../../src/loop/observer.js';
import type { StatePaths } from './breakpoints.js';
import { statePathOf } from './contextView.js';
import type { EventItem } from './protocol.js';
import type { StepInspectionEvent } from '../../src/loop/stepInspection.js';

interface TransitionLike {
  source?: { path?: string[] };
  target?: Array<{ path?: string[] }>;
  guard?: unknown;
}

function guardName(guard: unknown): string | null {
  if (!guard) return null;
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') return guard.name || '(inline)';
  const g = guard as { type?: string; params?: { name?: string } };
  if (g.type === 'control' && g.params?.name) return `control ${g.params.name}`;
  return g.type ?? null;
}

export class EventLog {
  private items: EventItem[] = [];
  private dropped = 0;
  private lastPath = '';
  private lastControls: Record<string, boolean> | null = null;
  private epoch = 0;
  private iteration = 0;

  constructor(
    private readonly paths: StatePaths,
    readonly capacity = 100,
  ) {}

  reset(): void {
    this.items = [];
    this.dropped = 0;
    this.lastPath = '';
    this.lastControls = null;
  }

  private push(item: EventItem): void {
    this.items.push(item);
    // Trimmed in bulk, not per event: amortized O(1).
    if (this.items.length >= 2 * this.capacity) {
      const cut = this.items.length - this.capacity;
      this.items.splice(0, cut);
      this.dropped += cut;
    }
  }

  record(event: StepInspectionEvent): void {
    if (event.type === '@xstate.snapshot') {
      const snap = event.snapshot as LoopSnapshot;
      const { context } = snap;
      if (!context) return;
      this.epoch = context.epoch;
      this.iteration = context.iteration;
      const path = statePathOf(snap.value);
      const stage = this.paths.get(path) ?? null;
      if (path !== this.lastPath) {
        this.lastPath = path;
        this.push({ kind: 'stage', stage, path, detail: stage ?? path, iteration: this.iteration, epoch: this.epoch });
      }
      const controls = context.controls as unknown as Record<string, boolean>;
      if (controls !== this.lastControls) {
        const before = this.lastControls;
        this.lastControls = controls;
        for (const name in controls) {
          if (controls[name] && !before?.[name]) {
            this.push({ kind: 'control', stage, path, detail: name, iteration: this.iteration, epoch: this.epoch });
          }
        }
      }
    } else if (event.type === '@xstate.microstep') {
      for (const t of event._transitions as unknown as TransitionLike[]) {
        const guard = guardName(t.guard);
        if (!guard) continue;
        const path = t.source?.path?.join('.') ?? '';
        const target = t.target?.[0]?.path?.join('.') ?? path;
        this.push({ kind: 'guard', stage: this.paths.get(path) ?? null, path, detail: `${guard} → ${target}`, iteration: this.iteration, epoch: this.epoch });
      }
    }
  }

  /** The events since the last call (the latest `capacity`), and how many were left out. */
  take(): { events: EventItem[]; dropped: number } {
    let events = this.items;
    let dropped = this.dropped;
    if (events.length > this.capacity) {
      dropped += events.length - this.capacity;
      events = events.slice(-this.capacity);
    }
    this.items = [];
    this.dropped = 0;
    return { events, dropped };
  }
}
