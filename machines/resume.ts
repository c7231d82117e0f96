/**
 * Where a run resumed from a checkpoint continues, read from the machine's persisted snapshot
 * and from the machine's own definition: the snapshot's state must be one the machine tags
 * `quiet`, and that state's `meta.resumeAt` says whether the run goes on with the next train
 * batch of the same epoch or with the next epoch. Nothing here restates the loop's order; it
 * only reads the counters the machine keeps (epoch, iteration, batchIndex, the epoch flags).
 */
import type { AnyStateMachine, AnyStateNode } from 'xstate';
import { QUIET, type LoopContext, type ResumeAt, type ResumePoint } from './trainLoop.js';

/** The part of a persisted snapshot this reads (what `actor.getPersistedSnapshot()` gives). */
export interface PersistedLoopSnapshot {
  status?: string;
  value: unknown;
  context: Pick<LoopContext, 'epoch' | 'iteration' | 'batchIndex' | 'nEpochs' | 'controls'> & Partial<LoopContext>;
}

/** The dotted path of the innermost active state, e.g. `epoch.train.batchEnd`. */
export function leafPathOf(value: unknown): string[] {
  const path: string[] = [];
  let v: unknown = value;
  while (v !== null && typeof v === 'object') {
    const keys = Object.keys(v as object);
    if (keys.length !== 1) return [];
    path.push(keys[0]!);
    v = (v as Record<string, unknown>)[keys[0]!];
  }
  if (typeof v === 'string') path.push(v);
  return path;
}

function nodeAt(machine: AnyStateMachine, path: readonly string[]): AnyStateNode | null {
  let node: AnyStateNode = machine.root;
  for (const key of path) {
    const child = (node.states as Record<string, AnyStateNode>)[key];
    if (!child) return null;
    node = child;
  }
  return path.length ? node : null;
}

/** Is this snapshot at a quiet point of `machine` (a state tagged `quiet`)? */
export function isQuietSnapshot(machine: AnyStateMachine, snapshot: PersistedLoopSnapshot): boolean {
  return nodeAt(machine, leafPathOf(snapshot.value))?.tags.includes(QUIET) ?? false;
}

/**
 * The point a run resumed from `snapshot` continues at, or null when the snapshot is not at a
 * quiet point (a checkpoint can only be taken, and resumed, there).
 */
export function resumePointOf(machine: AnyStateMachine, snapshot: PersistedLoopSnapshot): ResumePoint | null {
  const node = nodeAt(machine, leafPathOf(snapshot.value));
  if (!node || !node.tags.includes(QUIET)) return null;
  const at = (node.meta as { resumeAt?: ResumeAt } | undefined)?.resumeAt;
  const c = snapshot.context;
  if (at === 'nextBatch') {
    // batchEnd of train batch `batchIndex`: countBatch has not run yet (it is the transition out).
    return {
      epoch: c.epoch,
      batchIndex: c.batchIndex + 1,
      iteration: c.iteration + 1,
      stopEpoch: c.controls.stopEpoch,
      skipValidate: c.controls.skipValidate,
    };
  }
  if (at === 'nextEpoch') {
    // After epochEnd: the next epoch starts afresh, its flags cleared by its own epochBegin.
    return { epoch: c.epoch + 1, batchIndex: 0, iteration: c.iteration, stopEpoch: false, skipValidate: false };
  }
  return null;
}
