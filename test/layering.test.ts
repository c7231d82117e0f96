/**
 * The import graph is a ladder (`.dependency-cruiser.cjs` says which rung is which): no circles,
 * type-only imports counted, and no import pointing up a rung. Two well-kept tools check it —
 * dependency-cruiser for the directions, madge for circles — and a miniature of the layout that
 * breaks every rule once (test/fixtures/layering) proves that each check can fail.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { cruise, type IReporterOutput } from 'dependency-cruiser';
import madge from 'madge';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const fixture = fileURLToPath(new URL('./fixtures/layering/', import.meta.url));
const config = createRequire(import.meta.url)('../.dependency-cruiser.cjs');

async function violations(baseDir: string, paths: string[]) {
  // The fixture has no tsconfig of its own; its imports resolve by the config's extensionAlias alone.
  const { tsConfig, ...options } = config.options;
  const result: IReporterOutput = await cruise(paths, {
    ...options,
    ...(baseDir === root ? { tsConfig } : {}),
    validate: true,
    ruleSet: { forbidden: config.forbidden },
    baseDir,
    outputType: 'json',
  });
  const output = typeof result.output === 'string' ? JSON.parse(result.output) : result.output;
  return (output.summary.violations as Array<{ rule: { name: string }; from: string; to: string }>).map(
    (v) => `${v.rule.name}: ${v.from} → ${v.to}`,
  );
}

async function circles(baseDir: string, paths: string[]) {
  const graph = await madge(
    paths.map((p) => `${baseDir}/${p}`),
    {
    baseDir,
    fileExtensions: ['ts'],
    tsConfig: `${root}/tsconfig.json`,
    // Type-only imports are edges too (madge's default; spelled out because it is the point).
    detectiveOptions: { ts: { skipTypeImports: false }, tsx: { skipTypeImports: false } },
    },
  );
  return graph.circular();
}

describe('the layering of the source tree', () => {
  it('breaks no rule of .dependency-cruiser.cjs (type-only imports counted)', async () => {
    expect(await violations(root, ['src', 'machines', 'callbacks', 'visualizer'])).toEqual([]);
  });

  it('has no import circle, by madge (type-only imports counted)', async () => {
    expect(await circles(root, ['src', 'machines', 'callbacks'])).toEqual([]);
  });
});

describe('the checks themselves fire (a miniature layout breaking every rule once)', () => {
  it('dependency-cruiser reports each forbidden direction and the type-only circle', async () => {
    const found = await violations(fixture, ['machines', 'src', 'callbacks']);
    const rules = new Set(found.map((v) => v.split(':')[0]));
    for (const rule of config.forbidden.map((r: { name: string }) => r.name)) expect(rules, `rule ${rule} never fired`).toContain(rule);
    expect(found).toContain('callbacks-below-learner: callbacks/recorder.ts → src/learner.ts');
  });

  it('madge reports the circle made of `import type` only', async () => {
    expect(await circles(fixture, ['machines', 'src', 'callbacks'])).toEqual([['callbacks/recorder.ts', 'src/learner.ts']]);
  });
});
