/**
 * A laid-out chart as SVG markup. The same string is the page's live chart (inserted as
 * inline SVG in HTML, where no namespace is needed) and `trainchart chart --format svg`
 * (which adds the namespace attribute itself, so this module — bundled into the page —
 * holds no URL). Every state is one `<g class="state">` with `data-path`, and `data-stage`
 * when it is a callback stage: the page highlights, marks and clicks these.
 */
import { FONT, textWidth, type LaidOutChart, type LaidOutEdge, type LaidOutNode } from './layout.js';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const num = (n: number) => String(Math.round(n * 10) / 10);

/** Styles carried inside the SVG, so the exported file looks the same as the page's chart. */
export const CHART_STYLE = `
.tc-chart { font-family: ${FONT.family}; }
.tc-chart .compound > .box { fill: #f3f6fa; stroke: #8a9bb0; stroke-width: 1.2; }
.tc-chart .compound > .state-label { font-size: ${FONT.state}px; font-weight: 600; fill: #44546a; }
.tc-chart .atomic > .box, .tc-chart .final > .box { fill: #f6f7f9; stroke: #2f3b4c; stroke-width: 1.2; }
.tc-chart .internal > .box { fill: #eceff3; stroke-dasharray: 4 3; }
.tc-chart .final > .inner { fill: none; stroke: #2f3b4c; stroke-width: 1; }
.tc-chart .state-label { font-size: ${FONT.state}px; fill: #1d2633; }
.tc-chart .callbacks { font-size: ${FONT.small}px; fill: #5b6b80; }
.tc-chart .initial > circle { fill: #2f3b4c; }
.tc-chart .edge > path { fill: none; stroke: #6b7a90; stroke-width: 1.1; }
.tc-chart .edge-label { font-size: ${FONT.small}px; fill: #3a4a60; }
.tc-chart .edge-label-bg { fill: #ffffff; fill-opacity: 0.85; }
.tc-chart .note { font-size: ${FONT.small}px; fill: #5b6b80; }
.tc-chart .bp-marker { fill: #d93025; display: none; }
.tc-chart .breakpoint > .bp-marker { display: inline; }
.tc-chart .active > .box { fill: #ffe082; stroke: #b58900; stroke-width: 2.2; }
.tc-chart .compound.active-scope > .box { stroke: #b58900; stroke-width: 1.8; }
.tc-chart .selected > .box { stroke: #1a73e8; stroke-width: 2.5; }
.tc-chart .paused > .box { fill: #ffcdd2; stroke: #d93025; stroke-width: 3; }
.tc-chart .state[data-path] { cursor: pointer; }
`;

function nodeSvg(n: LaidOutNode): string {
  if (n.kind === 'initial') {
    return `<g class="initial"><circle cx="${num(n.x + n.width / 2)}" cy="${num(n.y + n.height / 2)}" r="${num(n.width / 2)}"/></g>`;
  }
  // `internal`: an atomic state that is no callback stage (ready, jump, gradients).
  const classes = ['state', n.kind, ...(n.stage ? ['stage'] : n.kind === 'atomic' ? ['internal'] : [])];
  const attrs = [`class="${classes.join(' ')}"`, `data-path="${esc(n.path!)}"`, `data-kind="${n.kind}"`];
  if (n.stage) attrs.push(`data-stage="${n.stage}"`);
  const tip = [n.path!, n.stage ? `stage ${n.stage}` : 'not a callback stage', n.entry.length ? `entry: ${n.entry.join(', ')}` : ''].filter(Boolean);
  const parts = [`<g ${attrs.join(' ')}>`, `<title>${esc(tip.join('\n'))}</title>`];
  if (n.kind === 'compound') {
    parts.push(`<rect class="box" x="${num(n.x)}" y="${num(n.y)}" width="${num(n.width)}" height="${num(n.height)}" rx="10"/>`);
    parts.push(`<text class="state-label" x="${num(n.x + 12)}" y="${num(n.y + 18)}">${esc(n.label)}</text>`);
  } else {
    parts.push(`<rect class="box" x="${num(n.x)}" y="${num(n.y)}" width="${num(n.width)}" height="${num(n.height)}" rx="8"/>`);
    if (n.kind === 'final') {
      parts.push(`<rect class="inner" x="${num(n.x + 3)}" y="${num(n.y + 3)}" width="${num(n.width - 6)}" height="${num(n.height - 6)}" rx="6"/>`);
    }
    parts.push(`<text class="state-label" x="${num(n.x + n.width / 2)}" y="${num(n.y + 18)}" text-anchor="middle">${esc(n.label)}</text>`);
    n.callbacks.forEach((c, i) => {
      parts.push(`<text class="callbacks" x="${num(n.x + n.width / 2)}" y="${num(n.y + 31 + i * 13)}" text-anchor="middle">${esc(c)}</text>`);
    });
  }
  parts.push(`<circle class="bp-marker" cx="${num(n.x + 7)}" cy="${num(n.y + 7)}" r="4"/>`);
  parts.push('</g>');
  return parts.join('');
}

function edgeSvg(e: LaidOutEdge): string {
  if (e.points.length < 2) return '';
  const d = e.points.map((p, i) => `${i ? 'L' : 'M'}${num(p.x)},${num(p.y)}`).join(' ');
  const tip = [`${e.source} → ${e.target}`, e.event ? `on ${e.event}` : 'initial', e.guards.length ? `guards: ${e.guards.join(', ')}` : '', e.actions.length ? `actions: ${e.actions.join(', ')}` : ''];
  const parts = [
    `<g class="edge" data-source="${esc(e.source)}" data-target="${esc(e.target)}"${e.event ? ` data-event="${esc(e.event)}"` : ''}>`,
    `<title>${esc(tip.filter(Boolean).join('\n'))}</title>`,
    `<path d="${d}" marker-end="url(#tc-arrow)"/>`,
  ];
  if (e.label && e.labelBox) {
    const b = e.labelBox;
    parts.push(`<rect class="edge-label-bg" x="${num(b.x)}" y="${num(b.y)}" width="${num(b.width)}" height="${num(b.height)}" rx="2"/>`);
    parts.push(`<text class="edge-label" x="${num(b.x + 3)}" y="${num(b.y + b.height - 4)}">${esc(e.label)}</text>`);
  }
  parts.push('</g>');
  return parts.join('');
}

export interface SvgOptions {
  /** Extra attributes on the root element (the standalone export adds its namespace). */
  attrs?: Record<string, string>;
  title?: string;
}

export function chartSvg(chart: LaidOutChart, options: SvgOptions = {}): string {
  const noteLines = chart.notes.length;
  const width = Math.max(chart.width, ...chart.notes.map((n) => textWidth(n, FONT.small) + 32));
  const height = chart.height + (noteLines ? noteLines * 14 + 8 : 0);
  const attrs: Record<string, string> = {
    class: 'tc-chart',
    'data-machine': chart.id,
    viewBox: `0 0 ${width} ${height}`,
    width: String(width),
    height: String(height),
    role: 'img',
    'font-family': FONT.family.replace(/"/g, "'"),
    ...options.attrs,
  };
  const open = `<svg ${Object.entries(attrs).map(([k, v]) => `${k}="${esc(v)}"`).join(' ')}>`;
  // Boxes of compound states first (outer before inner), then edges, then the states on top.
  const compounds = chart.nodes.filter((n) => n.kind === 'compound').sort((a, b) => a.depth - b.depth);
  const leaves = chart.nodes.filter((n) => n.kind !== 'compound');
  const notes = chart.notes.map(
    (text, i) => `<text class="note" x="16" y="${num(chart.height + 10 + i * 14)}">${esc(text)}</text>`,
  );
  return [
    open,
    `<title>${esc(options.title ?? `statechart of ${chart.id}`)}</title>`,
    `<style>${CHART_STYLE}</style>`,
    '<defs><marker id="tc-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b7a90"/></marker></defs>',
    `<g class="compounds">${compounds.map(nodeSvg).join('')}</g>`,
    `<g class="edges">${chart.edges.map(edgeSvg).join('')}</g>`,
    `<g class="states">${leaves.map(nodeSvg).join('')}</g>`,
    notes.join(''),
    '</svg>',
  ].join('\n');
}
