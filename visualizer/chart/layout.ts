/**
 * Lays the chart graph out with ELK's layered algorithm, hierarchy included (compound states
 * are boxes around their children and edges may cross their borders — what Stately's own viz
 * used). Text is sized from a monospace font's advance (0.6 em), so the layout is the same in
 * Node (`trainchart chart`) and in the browser, with no font measuring.
 *
 * Every coordinate of the result is absolute (ELK's `json.shapeCoords/edgeCoords = ROOT`).
 */
import ElkBundled from 'elkjs/lib/elk.bundled.js';
import type { ELK, ElkExtendedEdge, ElkNode, ElkPoint } from 'elkjs/lib/elk-api.js';
import { edgeLabel, type ChartEdge, type ChartGraph, type ChartNode } from './graph.js';

export const FONT = {
  family: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace',
  state: 12,
  small: 10,
  /** Advance of one monospace character, in em. */
  advance: 0.6,
};

export const textWidth = (text: string, size: number) => Math.ceil(text.length * size * FONT.advance);

const STATE_HEIGHT = 28;
const LINE = 13;
const COMPOUND_TOP = 28;
const INITIAL_SIZE = 12;

export interface LaidOutNode extends ChartNode {
  x: number;
  y: number;
  width: number;
  height: number;
  depth: number;
}

export interface LaidOutEdge extends ChartEdge {
  label: string;
  /** Polyline of the route (several sections are chained). */
  points: ElkPoint[];
  labelBox: { x: number; y: number; width: number; height: number } | null;
}

export interface LaidOutChart {
  id: string;
  width: number;
  height: number;
  nodes: LaidOutNode[];
  edges: LaidOutEdge[];
  notes: string[];
}

function nodeSize(n: ChartNode): { width: number; height: number } {
  if (n.kind === 'initial') return { width: INITIAL_SIZE, height: INITIAL_SIZE };
  const lines = n.callbacks.length;
  const width = Math.max(96, textWidth(n.label, FONT.state) + 28, ...n.callbacks.map((c) => textWidth(c, FONT.small) + 24));
  return { width, height: STATE_HEIGHT + lines * LINE + (lines ? 4 : 0) };
}

const LAYOUT_OPTIONS = {
  'elk.algorithm': 'layered',
  'elk.direction': 'DOWN',
  'elk.hierarchyHandling': 'INCLUDE_CHILDREN',
  // Keep the machine's declaration order where the layering allows it: stable, readable charts.
  'elk.layered.considerModelOrder.strategy': 'NODES_AND_EDGES',
  'elk.layered.crossingMinimization.forceNodeModelOrder': 'false',
  'elk.edgeRouting': 'ORTHOGONAL',
  'elk.spacing.nodeNode': '22',
  'elk.layered.spacing.nodeNodeBetweenLayers': '24',
  'elk.spacing.edgeNode': '14',
  'elk.spacing.edgeEdge': '10',
  'elk.spacing.edgeLabel': '4',
  'elk.layered.spacing.edgeNodeBetweenLayers': '14',
  'elk.edgeLabels.placement': 'CENTER',
  'elk.json.shapeCoords': 'ROOT',
  'elk.json.edgeCoords': 'ROOT',
  'elk.padding': '[top=16,left=16,bottom=16,right=16]',
};

/** The ELK input graph for a chart graph (exported for tests and for callers with their own ELK). */
export function elkGraph(graph: ChartGraph): ElkNode {
  const elkNodes = new Map<string, ElkNode>();
  const root: ElkNode = { id: '__root', layoutOptions: LAYOUT_OPTIONS, children: [], edges: [] };
  for (const n of graph.nodes) {
    const elkNode: ElkNode = { id: n.id };
    if (n.kind === 'compound') {
      elkNode.children = [];
      elkNode.edges = [];
      elkNode.layoutOptions = { 'elk.padding': `[top=${COMPOUND_TOP},left=14,bottom=14,right=14]` };
    } else {
      Object.assign(elkNode, nodeSize(n));
    }
    elkNodes.set(n.id, elkNode);
  }
  // Children after all nodes exist: a compound may be declared after its children's container lookups.
  for (const n of graph.nodes) (n.parent === null ? root : elkNodes.get(n.parent)!).children!.push(elkNodes.get(n.id)!);
  for (const e of graph.edges) {
    const label = edgeLabel(e);
    const edge: ElkExtendedEdge = { id: e.id, sources: [e.source], targets: [e.target] };
    if (label) edge.labels = [{ id: `${e.id}:label`, text: label, width: textWidth(label, FONT.small) + 6, height: FONT.small + 4 }];
    (e.container === null ? root : elkNodes.get(e.container)!).edges!.push(edge);
  }
  return root;
}

// elk.bundled.js is CommonJS whose typings say `export default`: at run time (Node's and
// esbuild's interop alike) the default import is the constructor itself.
const ElkConstructor = ((ElkBundled as unknown as { default?: unknown }).default ?? ElkBundled) as new () => ELK;
type Elk = ELK;
let shared: Elk | null = null;

/** Lays a chart graph out; `elk` defaults to one shared in-process ELK (no web worker). */
export async function layoutChart(graph: ChartGraph, elk: Elk = (shared ??= new ElkConstructor())): Promise<LaidOutChart> {
  const result = await elk.layout(elkGraph(graph));
  const boxes = new Map<string, { x: number; y: number; width: number; height: number }>();
  const routes = new Map<string, { points: ElkPoint[]; labelBox: LaidOutEdge['labelBox'] }>();
  const walk = (node: ElkNode) => {
    for (const c of node.children ?? []) {
      boxes.set(c.id, { x: c.x ?? 0, y: c.y ?? 0, width: c.width ?? 0, height: c.height ?? 0 });
      walk(c);
    }
    for (const e of node.edges ?? []) {
      const points: ElkPoint[] = [];
      for (const s of e.sections ?? []) {
        const part = [s.startPoint, ...(s.bendPoints ?? []), s.endPoint];
        // Chained sections share their joint: drop the duplicate.
        const last = points[points.length - 1];
        if (last && last.x === part[0]!.x && last.y === part[0]!.y) part.shift();
        points.push(...part);
      }
      const l = e.labels?.[0];
      routes.set(e.id, {
        points,
        labelBox: l ? { x: l.x ?? 0, y: l.y ?? 0, width: l.width ?? 0, height: l.height ?? 0 } : null,
      });
    }
  };
  walk(result);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const depth = (n: ChartNode): number => (n.parent === null ? 0 : 1 + depth(byId.get(n.parent)!));
  return {
    id: graph.id,
    width: Math.ceil(result.width ?? 0),
    height: Math.ceil(result.height ?? 0),
    nodes: graph.nodes.map((n) => ({ ...n, ...boxes.get(n.id)!, depth: depth(n) })),
    edges: graph.edges.map((e) => ({ ...e, label: edgeLabel(e), ...routes.get(e.id)! })),
    notes: graph.notes,
  };
}
