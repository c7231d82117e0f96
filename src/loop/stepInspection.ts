/**
 * What the loop did, step by step, for a watcher inside the process (the visualizer's event log):
 * the two kinds of XState inspection event that say it, with the fields of XState's that a
 * watcher reads (`type`, `event`, `snapshot` with its value, status and context, and the
 * microstep's `_transitions`; not `actorRef` or `rootId`). Both actors give
 * it — the live actor as part of its whole inspection stream, the resolved actor
 * (src/loop/resolvedActor.ts) by itself — so a watcher that needs only this does not force
 * the live actor, whose full stream (about 29 events a batch, each action and event as well)
 * costs about ten times the loop's own work on a fast backend.
 *
 * - `@xstate.microstep`: an event was taken (`_transitions`: XState's definitions of the
 *   transitions taken, from the machine's state nodes, none when the event was ignored;
 *   `snapshot`: the state reached);
 * - `@xstate.snapshot`: the actor's snapshot after the event; also once as the actor starts
 *   (event `xstate.init`). An event whose step threw tells neither (the actor's status is `error`).
 *
 * Left out: `@xstate.actor`, `@xstate.event` and `@xstate.action`. A watcher that needs those
 * (an external inspector) passes `inspect` instead, which runs the live actor.
 */
import type { EventObject, InspectionEvent } from 'xstate';

/** The snapshot a step reached, as far as a watcher reads it (both actors' snapshots have these). */
export interface StepSnapshot {
  status: string;
  value: unknown;
  context: unknown;
}

export interface InspectedMicrostep {
  type: '@xstate.microstep';
  event: EventObject;
  snapshot: StepSnapshot;
  _transitions: readonly unknown[];
}

export interface InspectedStepSnapshot {
  type: '@xstate.snapshot';
  event: EventObject;
  snapshot: StepSnapshot;
}

export type StepInspectionEvent = InspectedMicrostep | InspectedStepSnapshot;

export type StepWatcher = (event: StepInspectionEvent) => void;

/** From XState's whole inspection stream, the step events (the live actor's way to feed a StepWatcher). */
export function stepEventsOf(watch: StepWatcher): (event: InspectionEvent) => void {
  return (event) => {
    if (event.type === '@xstate.snapshot' || event.type === '@xstate.microstep') watch(event as unknown as StepInspectionEvent);
  };
}
