/**
 * `trainchart chart --format svg|dot|mermaid|json` (the built CLI): each format is read back
 * by an independent parser — fast-xml-parser for the SVG, dotparser for DOT, Mermaid itself
 * (in headless Chromium: it needs a DOM) for Mermaid — and must name every stage of the
 * contract (/work/shared/spec/loop.md §1) with the nesting of the machine's compound states.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import parseDot, { type Graph, type Stmt } from 'dotparser';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { describe, expect, it } from 'vitest';
import { chromiumMissing, launchChromium } from './support/browser.js';
import { CONTRACT_STAGES, STAGE_NODE_COUNT } from './support/vizScenario.js';

const run = promisify(execFile);
const CLI = 'dist/src/cli/main.js';
const chart = async (...args: string[]) => (await run('node', [CLI, 'chart', ...args], { maxBuffer: 1 << 24 })).stdout;

/** The states of the loop by path, as the contract and docs/loop.md describe them (parent = compound state). */
const NESTED: Record<string, string> = {
  'epoch.epochBegin': 'epoch',
  'epoch.train': 'epoch',
  'epoch.train.batchBegin': 'epoch.train',
  'epoch.train.lossBegin': 'epoch.train',
  'epoch.train.backwardBegin': 'epoch.train',
  'epoch.train.backwardEnd': 'epoch.train',
  'epoch.train.stepEnd': 'epoch.train',
  'epoch.train.batchEnd': 'epoch.train',
  'epoch.validation': 'epoch',
  'epoch.validation.validateBegin': 'epoch.validation',
  'epoch.validation.batchBegin': 'epoch.validation',
  'epoch.validation.lossBegin': 'epoch.validation',
  'epoch.validation.batchEnd': 'epoch.validation',
  'epoch.validation.validateEnd': 'epoch.validation',
  'epoch.epochEnd': 'epoch',
};

type XmlNode = Record<string, unknown>;
function* elements(node: unknown, name = ''): Generator<{ name: string; attrs: Record<string, string>; node: XmlNode }> {
  if (Array.isArray(node)) {
    for (const n of node) yield* elements(n, name);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const o = node as XmlNode;
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(o)) if (k.startsWith('@_')) attrs[k.slice(2)] = String(v);
  if (name) yield { name, attrs, node: o };
  for (const [k, v] of Object.entries(o)) if (!k.startsWith('@_') && k !== '#text') yield* elements(v, k);
}

describe('trainchart chart', () => {
  it('svg: valid XML, one group per stage state naming all 12 stages, children drawn inside their compound state', async () => {
    const svg = await chart('--format', 'svg');
    expect(XMLValidator.validate(svg)).toBe(true);
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', isArray: (name) => name === 'g' || name === 'rect' || name === 'text' }).parse(svg);
    expect(doc.svg['@_xmlns']).toBe('http://www.w3.org/2000/svg');
    const groups = [...elements(doc.svg, 'svg')].filter((e) => e.name === 'g' && e.attrs['data-path']);
    const staged = groups.filter((g) => g.attrs['data-stage']);
    expect(staged).toHaveLength(STAGE_NODE_COUNT);
    expect([...new Set(staged.map((g) => g.attrs['data-stage']))].sort()).toEqual([...CONTRACT_STAGES].sort());
    // Every stage is named in the drawing's text, not only in attributes.
    const texts = [...elements(doc.svg, 'svg')].filter((e) => e.name === 'text').map((e) => String(e.node['#text'] ?? ''));
    for (const stage of CONTRACT_STAGES) expect(texts).toContain(stage);
    // Transitions carry their guards' names.
    expect(texts).toContain('cancelBatch');
    expect(texts).toContain('hasNextTrainBatch');
    expect(texts.some((t) => t.includes('skipBackward'))).toBe(true);

    const box = new Map<string, { x: number; y: number; w: number; h: number }>();
    for (const g of groups) {
      const rect = (g.node.rect as XmlNode[])[0]!;
      box.set(g.attrs['data-path']!, { x: Number(rect['@_x']), y: Number(rect['@_y']), w: Number(rect['@_width']), h: Number(rect['@_height']) });
    }
    for (const [child, parent] of Object.entries(NESTED)) {
      const c = box.get(child)!;
      const p = box.get(parent)!;
      expect(c, child).toBeDefined();
      expect(c.x >= p.x && c.y >= p.y && c.x + c.w <= p.x + p.w && c.y + c.h <= p.y + p.h, `${child} inside ${parent}`).toBe(true);
    }
    // No two stage boxes overlap.
    const stageBoxes = staged.map((g) => box.get(g.attrs['data-path']!)!);
    for (let i = 0; i < stageBoxes.length; i++) {
      for (let j = i + 1; j < stageBoxes.length; j++) {
        const a = stageBoxes[i]!;
        const b = stageBoxes[j]!;
        expect(a.x + a.w <= b.x || b.x + b.w <= a.x || a.y + a.h <= b.y || b.y + b.h <= a.y).toBe(true);
      }
    }
  });

  it('docs/chart.svg (shown in the README) is what the command prints today', async () => {
    // Regenerate with: node dist/src/cli/main.js chart --format svg > docs/chart.svg
    expect(await chart('--format', 'svg')).toBe(readFileSync('docs/chart.svg', 'utf8'));
  });

  it('svg --callbacks: each state lists the callbacks whose hook runs there', async () => {
    const svg = await chart('--format', 'svg', '--callbacks', 'recorder,progress');
    const doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@_', isArray: (name) => name === 'g' || name === 'text' }).parse(svg);
    const group = (path: string) => [...elements(doc.svg, 'svg')].find((e) => e.name === 'g' && e.attrs['data-path'] === path)!;
    const lines = (path: string) => (group(path).node.text as XmlNode[]).map((t) => String(t['#text']));
    // Recorder (order 50) before Progress (order 60), as the dry run orders them.
    expect(lines('trainBegin')).toEqual(['trainBegin', 'Recorder', 'Progress']);
    // Neither has a lossBegin hook.
    expect(lines('epoch.train.lossBegin')).toEqual(['lossBegin']);
  });

  it('dot: parses, clusters nest as the compound states do, every state is a node', async () => {
    const dot = await chart('--format', 'dot');
    const [graph] = parseDot(dot) as Graph[];
    expect(graph!.type).toBe('digraph');
    const nodes = new Map<string, string[]>(); // node id → enclosing cluster ids, outermost first
    const stages = new Set<string>();
    let edges = 0;
    const walk = (children: Stmt[], clusters: string[]) => {
      for (const s of children) {
        if (s.type === 'subgraph') walk(s.children, [...clusters, String(s.id)]);
        else if (s.type === 'node_stmt') {
          nodes.set(String(s.node_id.id), clusters);
          const stage = s.attr_list.find((a) => a.id === 'stage');
          if (stage) stages.add(String(stage.eq));
        } else if (s.type === 'edge_stmt') edges++;
      }
    };
    walk(graph!.children, []);
    expect([...stages].sort()).toEqual([...CONTRACT_STAGES].sort());
    for (const [child, parent] of Object.entries(NESTED)) {
      if (child === 'epoch.train' || child === 'epoch.validation') continue; // compound: a cluster, not a node
      expect(nodes.get(child), child).toEqual(parent === 'epoch' ? ['cluster_epoch'] : ['cluster_epoch', `cluster_${parent}`]);
    }
    for (const top of ['ready', 'trainBegin', 'jump', 'trainEnd', 'completed', 'stopped', 'failed']) expect(nodes.get(top)).toEqual([]);
    expect(edges).toBeGreaterThan(25);
  });

  it('json: the machine description and the dry run plan', async () => {
    const json = JSON.parse(await chart('--format', 'json', '--callbacks', 'recorder'));
    const paths = (json.machine.states as { path: string }[]).map((s) => s.path);
    for (const p of Object.keys(NESTED)) expect(paths).toContain(p);
    expect(json.plan.callbacks).toEqual([{ name: 'Recorder', order: 50 }]);
    expect(new Set((json.plan.steps as { stage: string }[]).map((s) => s.stage))).toEqual(new Set([...CONTRACT_STAGES, 'jump']));
  });

  it('a bad --format is a usage error (exit 2) naming the formats', async () => {
    const err = await chart('--format', 'pdf').then(
      () => null,
      (e: { code: number; stderr: string }) => e,
    );
    expect(err?.code).toBe(2);
    expect(err?.stderr).toContain('svg, dot, mermaid, json');
  });

  const missing = chromiumMissing();
  it.skipIf(missing !== null)('mermaid: Mermaid parses it as a state diagram and draws every state inside its composite state', async () => {
    const text = await chart('--format', 'mermaid');
    const mermaidJs = createRequire(import.meta.url).resolve('mermaid/dist/mermaid.min.js');
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      await page.setContent('<!doctype html><html><body></body></html>');
      await page.addScriptTag({ path: mermaidJs });
      type M = { parse(t: string): Promise<{ diagramType: string }>; render(id: string, t: string): Promise<{ svg: string }>; initialize(o: object): void };
      const nested = Object.entries(NESTED).map(([child, parent]) => [child.replace(/\./g, '_'), parent.replace(/\./g, '_')] as const);
      const result = await page.evaluate(
        async ({ t, nested }) => {
          const m = (window as unknown as { mermaid: M }).mermaid;
          m.initialize({ startOnLoad: false });
          const parsed = await m.parse(t);
          const { svg } = await m.render('chart', t);
          document.body.innerHTML = svg;
          // Mermaid draws state `id` as <g id="chart-state-<id>-N">, a composite as a cluster group.
          const box = (id: string) => document.querySelector(`g[id^="chart-state-${id}-"]`)?.getBoundingClientRect() ?? null;
          const outside = nested.filter(([child, parent]) => {
            const c = box(child);
            const p = box(parent);
            return !c || !p || c.left < p.left || c.top < p.top || c.right > p.right || c.bottom > p.bottom;
          });
          const epoch = box('epoch')!;
          const topLevelInsideEpoch = ['ready', 'trainBegin', 'trainEnd', 'completed'].filter((id) => {
            const b = box(id)!;
            return b.left >= epoch.left && b.right <= epoch.right && b.top >= epoch.top && b.bottom <= epoch.bottom;
          });
          // A control: the parser rejects a broken diagram (an unclosed composite state).
          const broken = await m.parse('stateDiagram-v2\n  state a {\n    b --> c\n').then(
            () => 'accepted',
            () => 'rejected',
          );
          return { diagramType: parsed.diagramType, svg, broken, outside, topLevelInsideEpoch };
        },
        { t: text, nested },
      );
      expect(result.diagramType).toBe('stateDiagram');
      expect(result.broken).toBe('rejected');
      for (const stage of CONTRACT_STAGES) expect(result.svg).toContain(`>${stage}<`);
      // Drawn nested as the machine is: every state inside its composite, the top-level ones outside.
      expect(result.outside).toEqual([]);
      expect(result.topLevelInsideEpoch).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
