/**
 * The chart graph as Graphviz DOT: compound states are clusters, an edge into a compound
 * state points at its initial marker and is clipped at the cluster's border (`lhead`), as
 * Graphviz draws edges between clusters.
 */
import { INITIAL_PREFIX, edgeLabel, type ChartGraph, type ChartNode } from './graph.js';

const q = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
const cluster = (id: string) => `cluster_${id}`;

export function chartDot(graph: ChartGraph): string {
  const children = new Map<string | null, ChartNode[]>();
  for (const n of graph.nodes) children.set(n.parent, [...(children.get(n.parent) ?? []), n]);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const lines = [
    `digraph ${q(graph.id)} {`,
    '  compound=true;',
    '  rankdir=TB;',
    '  fontname="monospace";',
    '  node [shape=box, style=rounded, fontname="monospace", fontsize=11];',
    '  edge [fontname="monospace", fontsize=9];',
  ];
  const emit = (parent: string | null, indent: string) => {
    for (const n of children.get(parent) ?? []) {
      if (n.kind === 'compound') {
        lines.push(`${indent}subgraph ${q(cluster(n.id))} {`, `${indent}  label=${q(n.label)};`, `${indent}  style=rounded;`);
        emit(n.id, indent + '  ');
        lines.push(`${indent}}`);
        continue;
      }
      const attrs: string[] = [];
      if (n.kind === 'initial') attrs.push('shape=point', 'width=0.12', 'label=""');
      else {
        const label = [n.label, ...n.callbacks].join('\n');
        attrs.push(`label=${q(label)}`);
        if (n.kind === 'final') attrs.push('peripheries=2');
        if (n.stage) attrs.push(`stage=${q(n.stage)}`);
        else attrs.push('style="rounded,dashed"');
      }
      lines.push(`${indent}${q(n.id)} [${attrs.join(', ')}];`);
    }
  };
  emit(null, '  ');
  // An edge into (or out of) a compound state attaches to its initial marker, clipped at the cluster.
  const endpoint = (id: string) => (byId.get(id)?.kind === 'compound' ? `${INITIAL_PREFIX}${id}` : id);
  for (const e of graph.edges) {
    const attrs: string[] = [];
    const label = edgeLabel(e);
    if (label) attrs.push(`label=${q(label)}`);
    if (byId.get(e.target)?.kind === 'compound') attrs.push(`lhead=${q(cluster(e.target))}`);
    if (byId.get(e.source)?.kind === 'compound') attrs.push(`ltail=${q(cluster(e.source))}`);
    lines.push(`  ${q(endpoint(e.source))} -> ${q(endpoint(e.target))}${attrs.length ? ` [${attrs.join(', ')}]` : ''};`);
  }
  for (const note of graph.notes) lines.push(`  // ${note}`);
  lines.push('}');
  return lines.join('\n') + '\n';
}
