/**
 * The live statechart: the machine description laid out by ELK (the same code as
 * `trainchart chart --format svg`), inserted as inline SVG, then only classes change —
 * `active` on the state the run is in (`active-scope` on its compound ancestors), `paused`,
 * `breakpoint`, `selected`. Nothing is redrawn while training.
 */
import type { MachineDescription } from '../../machines/describe.js';
import { chartGraph, type ChartGraph } from '../chart/graph.js';
import { layoutChart } from '../chart/layout.js';
import { chartSvg } from '../chart/svg.js';
import type { Breakpoint } from './protocol.js';

export interface StatechartHandlers {
  onClick(path: string, stage: string | null): void;
  onHover(path: string | null): void;
}

export class Statechart {
  graph: ChartGraph | null = null;
  private nodes = new Map<string, Element>();
  private parents = new Map<string, string | null>();
  private active: string | null = null;
  private paused: string | null = null;
  private selected: string | null = null;

  constructor(
    private readonly container: HTMLElement,
    handlers: StatechartHandlers,
  ) {
    const stateOf = (target: EventTarget | null) => (target instanceof Element ? target.closest('.state[data-path]') : null);
    container.addEventListener('click', (event) => {
      const node = stateOf(event.target);
      if (node) handlers.onClick(node.getAttribute('data-path')!, node.getAttribute('data-stage'));
    });
    container.addEventListener('mouseover', (event) => {
      handlers.onHover(stateOf(event.target)?.getAttribute('data-path') ?? null);
    });
    container.addEventListener('mouseleave', () => handlers.onHover(null));
  }

  private drawn = '';

  /** Draws the machine; a later hello with the same machine (as when a run starts) keeps the drawing. */
  async draw(machine: MachineDescription): Promise<void> {
    const key = JSON.stringify(machine);
    if (key === this.drawn) return;
    this.drawn = key;
    const graph = chartGraph(machine);
    const layout = await layoutChart(graph);
    // Inline SVG parsed in HTML needs no namespace declaration (and the page carries no URL).
    this.container.innerHTML = chartSvg(layout, { title: `statechart of ${machine.id}` });
    this.graph = graph;
    this.nodes.clear();
    this.parents.clear();
    for (const n of graph.nodes) if (n.path) this.parents.set(n.path, n.parent);
    this.container.querySelectorAll('.state[data-path]').forEach((el) => this.nodes.set(el.getAttribute('data-path')!, el));
    const { active, paused, selected } = this;
    this.active = this.paused = this.selected = null;
    // Re-apply to the new nodes.
    this.setActive(active);
    this.setPaused(paused);
    this.setSelected(selected);
  }

  has(path: string): boolean {
    return this.nodes.has(path);
  }

  stageOf(path: string): string | null {
    return this.nodes.get(path)?.getAttribute('data-stage') ?? null;
  }

  private scope(path: string | null, cls: string, on: boolean) {
    for (let p = path === null ? null : (this.parents.get(path) ?? null); p !== null; p = this.parents.get(p) ?? null) {
      this.nodes.get(p)?.classList.toggle(cls, on);
    }
  }

  setActive(path: string | null): void {
    if (path === this.active) return;
    if (this.active) {
      this.nodes.get(this.active)?.classList.remove('active');
      this.scope(this.active, 'active-scope', false);
    }
    this.active = path;
    if (path) {
      this.nodes.get(path)?.classList.add('active');
      this.scope(path, 'active-scope', true);
    }
  }

  setPaused(path: string | null): void {
    if (path === this.paused) return;
    if (this.paused) this.nodes.get(this.paused)?.classList.remove('paused');
    this.paused = path;
    const el = path ? this.nodes.get(path) : undefined;
    el?.classList.add('paused');
    if (el) this.reveal(el);
  }

  /** A run paused out of sight in the scrolled chart pane: scroll the state to its middle. */
  private reveal(el: Element) {
    const pane = this.container.parentElement;
    if (!pane) return;
    const r = el.getBoundingClientRect();
    const p = pane.getBoundingClientRect();
    if (r.top >= p.top && r.bottom <= p.bottom) return;
    pane.scrollTop += r.top + r.height / 2 - (p.top + p.height / 2);
  }

  setSelected(path: string | null): void {
    if (this.selected) this.nodes.get(this.selected)?.classList.remove('selected');
    this.selected = path;
    if (path) this.nodes.get(path)?.classList.add('selected');
  }

  /** A breakpoint without a path marks every state of its stage (train and validation). */
  setBreakpoints(breakpoints: readonly Breakpoint[]): void {
    for (const [path, el] of this.nodes) {
      const stage = el.getAttribute('data-stage');
      const on = breakpoints.some((b) => (b.path ? b.path === path : stage !== null && b.stage === stage));
      el.classList.toggle('breakpoint', on);
    }
  }
}
