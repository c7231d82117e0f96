/**
 * The dry run: what a fit with these callbacks would do, stage by stage, without training.
 * Everything is read from the machine's own definition (its states' `meta.stage`, in the
 * order the machine declares them, and the state whose entry calls `runJumpToEpoch`), from
 * the control table (`machines/controls.ts`) and from the callbacks through the same
 * `HookTable` the driver uses — never from a hand-written list of stages or controls, so the
 * plan cannot drift from the loop that actually runs.
 */
import { CONTROLS, EPOCH_CONTROL, controlsAllowedAt } from '../machines/controls.js';
import { describeMachine, isInValidation } from '../machines/describe.js';
import { STAGE_DOC, hookNameOf, type Stage } from '../machines/stages.js';
import { trainLoopMachine } from '../machines/trainLoop.js';
import type { Callback } from './loop/callback.js';
import { HookTable } from './loop/hookTable.js';

export interface PlannedCallback {
  name: string;
  order: number;
}

export interface PlanStep {
  /** The stage, or `jump` for the state that calls every callback's `jumpToEpoch`. */
  stage: Stage | 'jump';
  /** What runs on each callback there: `onBatchBegin`, `jumpToEpoch`. */
  hook: string;
  /** The compound state it sits in (`epoch.train`, `epoch.validation`, … ; `''` at the top). */
  scope: string;
  /** ctx.train there: false in the validation pass. */
  train: boolean;
  /** The machine's states for this stage in this scope. */
  states: string[];
  doc: string;
  /** Callbacks whose hook runs there, in run order. */
  callbacks: PlannedCallback[];
  /** Controls a hook there may return (and guards there may fire). */
  controls: string[];
  /** Guards read as the stage is left, in the order they are read. */
  guards: { callback: string; control: string }[];
}

export interface LoopPlan {
  machine: string;
  callbacks: PlannedCallback[];
  steps: PlanStep[];
}

const JUMP_ACTION = 'runJumpToEpoch';
const RESTORE_ACTION = 'restoreRun';

/** The stages of a fit, in machine order, with the callbacks, controls and guards of each. */
export function loopPlan(callbacks: readonly Callback[]): LoopPlan {
  const table = new HookTable(callbacks);
  const description = describeMachine(trainLoopMachine);
  const planned = (cb: Callback): PlannedCallback => ({ name: cb.name, order: cb.order });

  const steps: PlanStep[] = [];
  for (const s of description.states) {
    const scope = s.parent ?? '';
    if (s.entry.some((a) => a.type === JUMP_ACTION)) {
      // The jump after `epoch: N` and the resume from a checkpoint are one row of the contract (§1).
      const jump = steps.find((x) => x.stage === 'jump');
      if (jump) {
        jump.states.push(s.path);
        if (s.entry.some((a) => a.type === RESTORE_ACTION)) jump.doc += '; or when resuming from a checkpoint (also at epoch 0), after its state is restored';
        continue;
      }
      steps.push({
        stage: 'jump',
        hook: 'jumpToEpoch',
        scope,
        train: true,
        states: [s.path],
        doc: `only after { epoch: N } with N > 0 from trainBegin: ${EPOCH_CONTROL.effect}`,
        callbacks: table.jumpers.map(planned),
        controls: [],
        guards: [],
      });
      continue;
    }
    if (!s.stage) continue;
    // The validation pass is the compound state its validateBegin sits in: ctx.train is false inside it.
    const train = !isInValidation(description, s.path);
    const same = steps.find((x) => x.stage === s.stage && x.scope === scope);
    if (same) {
      same.states.push(s.path);
      continue;
    }
    steps.push({
      stage: s.stage,
      hook: hookNameOf(s.stage),
      scope,
      train,
      states: [s.path],
      doc: STAGE_DOC[s.stage],
      callbacks: table.hooksAt(s.stage).map(({ callback }) => planned(callback)),
      controls: [...controlsAllowedAt(s.stage, train), ...(EPOCH_CONTROL.allowedAt(s.stage) ? ['epoch'] : [])],
      guards: table.guardsAt(s.stage, train).map(({ callback, control }) => ({ callback: callback.name, control })),
    });
  }
  const runOrder = [...callbacks].map(planned).sort((a, b) => a.order - b.order);
  return { machine: description.id, callbacks: runOrder, steps };
}

const list = (items: string[]) => (items.length ? items.join(', ') : '—');

/** The dry run as text: every stage in order, with who runs there, what may be returned there and which guards are read. */
export function describeLoop(callbacks: readonly Callback[]): string {
  const plan = loopPlan(callbacks);
  const named = (c: PlannedCallback) => `${c.name}(${c.order})`;
  const lines = [
    `Training loop "${plan.machine}" — a dry run: the stages in the order the machine runs them; nothing is trained.`,
    `Callbacks (by order): ${list(plan.callbacks.map(named))}`,
  ];
  let scope: string | null = null;
  plan.steps.forEach((step, i) => {
    if (step.scope !== scope) {
      scope = step.scope;
      const where = scope === '' ? 'the run' : scope.split('.').join(' › ');
      lines.push('', `── ${where}${step.train ? '' : ' (ctx.train = false)'} ──`);
    }
    const title = step.stage === 'jump' ? '(jump) jumpToEpoch(N)' : step.stage;
    lines.push(`${String(i + 1).padStart(2)}. ${title.padEnd(22)} ${step.doc}`);
    lines.push(`      ${step.hook.padEnd(15)} ${step.callbacks.length ? step.callbacks.map(named).join(' → ') : '—'}`);
    if (step.stage === 'jump') return;
    lines.push(`      controls        ${list(step.controls.map((c) => (c === 'epoch' ? 'epoch: N' : c)))}`);
    lines.push(`      guards          ${list(step.guards.map((g) => `${g.callback} → ${g.control}`))}`);
  });
  lines.push('', 'What each control does:');
  for (const [name, spec] of Object.entries(CONTROLS)) lines.push(`  ${name.padEnd(13)} ${spec.effect}`);
  lines.push(`  ${'epoch: N'.padEnd(13)} ${EPOCH_CONTROL.effect}`);
  return lines.join('\n') + '\n';
}
