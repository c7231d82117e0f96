import { describeMachine } from '../../machines/describe.js';
import { trainLoopMachine } from '../../machines/trainLoop.js';
import { chartDot } from '../../visualizer/chart/dot.js';
import { chartGraph } from '../../visualizer/chart/graph.js';
import { layoutChart } from '../../visualizer/chart/layout.js';
import { chartMermaid } from '../../visualizer/chart/mermaid.js';
import { chartSvg } from '../../visualizer/chart/svg.js';
import { loopPlan } from '../dryRun.js';
import { choiceOption, parseCommandArgs } from './args.js';
import { callbacksByName } from './dryRun.js';

export const CHART_HELP = `Usage: trainchart chart [options]

Prints the statechart of the training loop, drawn from the machine's own definition:
every state (compound states contain their children), every transition labelled with
the guards that pick it.

  --format svg|dot|mermaid|json   svg (laid out by ELK, default), Graphviz dot, Mermaid
                                  stateDiagram-v2, or json (the machine description and the dry run's plan)
  --callbacks a,b,c               built-in callbacks, by name: each state lists those whose hook runs there
                                  (default: none, the bare machine)
`;

const FORMATS = ['svg', 'dot', 'mermaid', 'json'] as const;
// Only a standalone SVG file needs its namespace: the chart modules, bundled into the page, leave it out.
const SVG_NAMESPACE = 'http://www.w3.org/2000/svg';

export async function chartText(format: (typeof FORMATS)[number], callbackNames: string): Promise<string> {
  const description = describeMachine(trainLoopMachine);
  const callbacks = callbacksByName(callbackNames);
  const plan = loopPlan(callbacks);
  if (format === 'json') return JSON.stringify({ machine: description, plan }, null, 2) + '\n';
  const graph = chartGraph(description, callbacks.length ? plan : undefined);
  if (format === 'dot') return chartDot(graph);
  if (format === 'mermaid') return chartMermaid(graph);
  const layout = await layoutChart(graph);
  return `<?xml version="1.0" encoding="UTF-8"?>\n${chartSvg(layout, { attrs: { xmlns: SVG_NAMESPACE } })}\n`;
}

export async function chartCommand(argv: string[]): Promise<number> {
  const v = parseCommandArgs('chart', argv, {
    format: { type: 'string' },
    callbacks: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
  if (v.help) {
    process.stdout.write(CHART_HELP);
    return 0;
  }
  const format = choiceOption('format', v.format, FORMATS, 'svg');
  process.stdout.write(await chartText(format, typeof v.callbacks === 'string' ? v.callbacks : ''));
  return 0;
}
