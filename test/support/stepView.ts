/** The loop's step events (src/loop/stepInspection.ts) in a form two runs can be compared by. */
import type { StepInspectionEvent } from '../../src/loop/stepInspection.js';

interface TransitionLike {
  source: { id: string };
  target?: Array<{ id: string }>;
  eventType: string;
  guard?: unknown;
  reenter?: boolean;
}

/**
 * A step event in comparable form: the transitions by where they go (the two actors may run
 * different machine objects of one definition), the snapshot by what it holds.
 */
export function stepView(e: StepInspectionEvent) {
  const { value, status, context } = e.snapshot;
  return {
    type: e.type,
    event: e.event,
    snapshot: { value, status, context },
    transitions:
      e.type === '@xstate.microstep'
        ? (e._transitions as TransitionLike[]).map((t) => ({ source: t.source.id, targets: t.target?.map((n) => n.id) ?? null, eventType: t.eventType, guard: t.guard ?? null, reenter: t.reenter ?? false }))
        : null,
  };
}
