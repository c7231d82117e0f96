/**
 * The chart graph as a Mermaid `stateDiagram-v2` with nested (composite) states. Mermaid's
 * state ids are global, while the loop has a `batchBegin` in `train` and one in `validation`:
 * ids are the dotted paths with `_` for `.`, and each state is declared with its key as label.
 * Transitions are written in the block of the lowest composite holding both ends.
 */
import { edgeLabel, type ChartGraph, type ChartNode } from './graph.js';

/** Mermaid id for a state path: `epoch.train.lossBegin` → `epoch_train_lossBegin`. */
export const mermaidId = (path: string) => path.replace(/[^A-Za-z0-9_]/g, '_');

// Text after `:` runs to the end of the line; Mermaid reads `;` and `#` specially inside it.
const text = (s: string) => s.replace(/[;#\n]/g, ' ');

export function chartMermaid(graph: ChartGraph): string {
  const children = new Map<string | null, ChartNode[]>();
  for (const n of graph.nodes) children.set(n.parent, [...(children.get(n.parent) ?? []), n]);
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const lines = ['stateDiagram-v2', `  %% ${graph.id}: drawn from the machine definition (trainchart chart --format mermaid)`];
  const ref = (id: string) => (byId.get(id)?.kind === 'initial' ? '[*]' : mermaidId(id));
  const edgesIn = new Map<string | null, typeof graph.edges>();
  for (const e of graph.edges) edgesIn.set(e.container, [...(edgesIn.get(e.container) ?? []), e]);

  const emit = (parent: string | null, indent: string) => {
    // Mermaid puts a state in the block where its id appears last: the transitions of a block
    // come first, the declarations after them, so a state referenced by a transition that
    // crosses a composite's border still lands inside its own composite.
    for (const e of edgesIn.get(parent) ?? []) {
      const label = edgeLabel(e);
      lines.push(`${indent}${ref(e.source)} --> ${ref(e.target)}${label ? ` : ${text(label)}` : ''}`);
    }
    for (const n of children.get(parent) ?? []) {
      if (n.kind === 'initial') continue;
      const id = mermaidId(n.id);
      if (n.kind === 'compound') {
        lines.push(`${indent}state "${text(n.label)}" as ${id} {`);
        emit(n.id, indent + '  ');
        lines.push(`${indent}}`);
      } else {
        const label = n.callbacks.length ? `${n.label} (${n.callbacks.join(', ')})` : n.label;
        lines.push(`${indent}state "${text(label).replace(/"/g, "'")}" as ${id}`);
        if (n.kind === 'final') lines.push(`${indent}${id} --> [*]`);
      }
    }
  };
  emit(null, '  ');
  for (const note of graph.notes) lines.push(`  %% ${note}`);
  return lines.join('\n') + '\n';
}
