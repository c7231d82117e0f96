/**
 * The per-state panel: what runs in a state and what may leave it — the dry run's data for
 * its stage (callbacks in run order, the controls a hook may return there, the guards read
 * there) and the machine's own transitions out of it.
 */
import { edgeLabel, type ChartGraph } from '../chart/graph.js';
import type { LoopPlan, PlanStep } from '../../src/dryRun.js';

const el = (tag: string, text?: string, cls?: string) => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
};

function list(title: string, items: string[]): HTMLElement {
  const section = el('div', undefined, 'panel-row');
  section.append(el('h4', title));
  if (!items.length) {
    section.append(el('span', '—', 'none'));
    return section;
  }
  const ol = el('ol');
  for (const item of items) ol.append(el('li', item));
  section.append(ol);
  return section;
}

export class StatePanel {
  private plan: LoopPlan | null = null;
  private graph: ChartGraph | null = null;

  constructor(private readonly root: HTMLElement) {}

  setData(plan: LoopPlan | null, graph: ChartGraph | null) {
    this.plan = plan;
    this.graph = graph;
  }

  stepOf(path: string): PlanStep | undefined {
    return this.plan?.steps.find((s) => s.states.includes(path));
  }

  show(path: string | null) {
    this.root.replaceChildren();
    this.root.dataset.path = path ?? '';
    if (!path) {
      this.root.append(el('p', 'Hover a state to see what runs there; click a stage to set a breakpoint.', 'hint'));
      return;
    }
    const node = this.graph?.nodes.find((n) => n.path === path);
    const step = this.stepOf(path);
    this.root.append(el('h3', path));
    const stage = node?.stage ?? null;
    this.root.append(el('p', stage ? `stage ${stage}${step ? ` — ${step.doc}` : ''}` : step?.doc ?? 'not a callback stage', 'doc'));
    if (step) {
      this.root.append(list(`${step.hook} runs on`, step.callbacks.map((c) => `${c.name} (order ${c.order})`)));
      if (step.stage !== 'jump') {
        this.root.append(list('controls a hook may return', step.controls.map((c) => (c === 'epoch' ? 'epoch: N' : c))));
        this.root.append(list('guards read here', step.guards.map((g) => `${g.callback} → ${g.control}`)));
      }
    }
    const out = (this.graph?.edges ?? []).filter((e) => e.source === path);
    this.root.append(list('transitions', out.map((e) => `→ ${e.target}${edgeLabel(e) ? `  [${edgeLabel(e)}]` : ''}`)));
    if (node?.entry.length) this.root.append(list('entry actions', node.entry));
  }
}
