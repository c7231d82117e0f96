/**
 * The debugger: breakpoints set by clicking a stage (with an optional condition on a
 * context field — data the server compares, never code), Pause / Step / Resume / Stop /
 * Clear, and while paused the state the run is in and the context a hook sees there.
 */
import { CONDITION_OPS, type Breakpoint, type ClientMessage, type Condition, type ConditionOp, type PausedMessage, type RunStatus } from './protocol.js';

/** Context fields a condition may test (the numbers of `paused.ctx`). */
export const CONDITION_FIELDS = ['smoothLoss', 'lastLossValue', 'epoch', 'iteration', 'batchIndex', 'lr', 'momentum'] as const;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export function describeBreakpoint(b: Breakpoint): string {
  const where = b.path ?? `${b.stage} (every state)`;
  return b.when ? `${where} when ${b.when.field} ${b.when.op} ${b.when.value}` : where;
}

const sameTarget = (a: Breakpoint, b: { stage: string; path?: string }) => a.stage === b.stage && (a.path ?? '') === (b.path ?? '');

export class Debugger {
  breakpoints: Breakpoint[] = [];
  status: RunStatus | 'connecting' = 'connecting';
  private readonly buttons: Record<'pause' | 'step' | 'resume' | 'stop' | 'clear', HTMLButtonElement>;

  constructor(
    private readonly send: (m: ClientMessage) => boolean,
    private readonly onBreakpoints: (list: readonly Breakpoint[]) => void,
  ) {
    this.buttons = {
      pause: $('btn-pause'),
      step: $('btn-step'),
      resume: $('btn-resume'),
      stop: $('btn-stop'),
      clear: $('btn-clear'),
    };
    this.buttons.pause.onclick = () => this.send({ type: 'pause' });
    this.buttons.step.onclick = () => this.send({ type: 'step' });
    this.buttons.resume.onclick = () => this.send({ type: 'resume' });
    this.buttons.stop.onclick = () => this.send({ type: 'stop' });
    this.buttons.clear.onclick = () => {
      this.send({ type: 'clear' });
      this.setBreakpoints([]);
    };
    const field = $<HTMLSelectElement>('cond-field');
    for (const f of CONDITION_FIELDS) field.append(new Option(f, f));
    const op = $<HTMLSelectElement>('cond-op');
    for (const o of CONDITION_OPS) op.append(new Option(o, o));
    $('breakpoints').addEventListener('click', (event) => {
      const button = (event.target as Element).closest('button[data-index]');
      if (!button) return;
      const b = this.breakpoints[Number(button.getAttribute('data-index'))];
      if (b) this.remove(b);
    });
    this.setStatus('connecting');
  }

  /** The condition typed in the toolbar, if its box is ticked and its value is a number. */
  condition(): Condition | undefined {
    if (!$<HTMLInputElement>('cond-on').checked) return undefined;
    const raw = $<HTMLInputElement>('cond-value').value.trim();
    const value = Number(raw);
    if (raw === '' || !Number.isFinite(value)) {
      $('cond-value').classList.add('invalid');
      return undefined;
    }
    $('cond-value').classList.remove('invalid');
    return { field: $<HTMLSelectElement>('cond-field').value, op: $<HTMLSelectElement>('cond-op').value as ConditionOp, value };
  }

  /** A click on a stage: set a breakpoint there, or take it away if it has one. */
  toggle(path: string, stage: string) {
    const existing = this.breakpoints.find((b) => sameTarget(b, { stage, path }));
    if (existing) {
      this.remove(existing);
      return;
    }
    const when = this.condition();
    const b: Breakpoint = when ? { stage, path, when } : { stage, path };
    this.send({ type: 'break', ...b });
    this.setBreakpoints([...this.breakpoints, b]);
  }

  private remove(b: Breakpoint) {
    this.send(b.path ? { type: 'clear', stage: b.stage, path: b.path } : { type: 'clear', stage: b.stage });
    this.setBreakpoints(this.breakpoints.filter((x) => x !== b));
  }

  setBreakpoints(list: readonly Breakpoint[]) {
    this.breakpoints = [...list];
    const ul = $('breakpoints');
    ul.replaceChildren();
    this.breakpoints.forEach((b, i) => {
      const li = document.createElement('li');
      li.append(describeBreakpoint(b), ' ');
      const x = document.createElement('button');
      x.textContent = '×';
      x.title = 'remove this breakpoint';
      x.dataset.index = String(i);
      li.append(x);
      ul.append(li);
    });
    if (!this.breakpoints.length) ul.append(Object.assign(document.createElement('li'), { className: 'none', textContent: 'none — click a stage in the chart' }));
    this.onBreakpoints(this.breakpoints);
  }

  setStatus(status: RunStatus | 'connecting') {
    this.status = status;
    const running = status === 'running';
    const paused = status === 'paused';
    this.buttons.pause.disabled = !running;
    this.buttons.step.disabled = !paused;
    this.buttons.resume.disabled = !paused;
    this.buttons.stop.disabled = !(running || paused);
    document.body.dataset.status = status;
  }

  showPaused(p: PausedMessage | null) {
    const info = $('paused-info');
    const ctx = $('ctx');
    if (!p) {
      info.textContent = '';
      ctx.textContent = '';
      $('paused-section').hidden = true;
      return;
    }
    $('paused-section').hidden = false;
    info.textContent = `paused (${p.reason}) at ${p.path} — epoch ${p.epoch}, iteration ${p.iteration}, batch ${p.batchIndex}, ${p.train ? 'train' : 'validation'}`;
    info.dataset.stage = p.stage ?? '';
    info.dataset.path = p.path;
    ctx.textContent = p.ctx ? JSON.stringify(p.ctx, null, 2) : '(the server sent no context)';
  }
}
