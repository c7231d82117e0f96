/**
 * The README's two callback examples, as tests. The code run here is the code the README
 * shows: each example's class must be identical, line for line, to the source file that is
 * run (test/support/raiseLr.ts, callbacks/stopAtLoss.ts), so the README cannot drift.
 */
import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { StopAtLoss } from '../callbacks/stopAtLoss.js';
import { Callback } from '../src/loop/callback.js';
import * as api from '../src/index.js';
import type { TrainContext } from '../src/loop/context.js';
import { RaiseLrEveryEpoch } from './support/raiseLr.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const root = new URL('..', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

/** The ```ts blocks of a markdown text. */
function tsBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

/** The declaration of class `name` (from `class` to its closing brace at column 0), without `export`. */
function classSource(text: string, name: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => new RegExp(`^(export )?class ${name}\\b`).test(l));
  if (start < 0) throw new Error(`class ${name} not found`);
  const end = lines.indexOf('}', start);
  return lines
    .slice(start, end + 1)
    .join('\n')
    .replace(/^export /, '');
}

function readmeBlock(className: string): string {
  const block = tsBlocks(read('README.md')).find((b) => new RegExp(`^class ${className}\\b`, 'm').test(b));
  if (!block) throw new Error(`README.md has no \`\`\`ts block declaring class ${className}`);
  return block;
}

/** What a README block imports from 'trainchart' must be exported by the package entry (src/index.ts). */
function checkImports(block: string) {
  const m = /^import \{([^}]*)\} from 'trainchart';$/m.exec(block);
  expect(m, 'the example imports from the package name').not.toBeNull();
  for (const spec of m![1]!.split(',').map((s) => s.trim())) {
    if (spec.startsWith('type ')) expect(read('src/index.ts')).toMatch(new RegExp(`\\b${spec.slice(5)}\\b`));
    else expect(api).toHaveProperty(spec);
  }
}

describe('README: "raise the LR by 10% after every epoch"', () => {
  it('is under 15 lines and is exactly the class that is run here', () => {
    const block = readmeBlock('RaiseLrEveryEpoch');
    expect(block.trimEnd().split('\n').length).toBeLessThan(15);
    expect(classSource(block, 'RaiseLrEveryEpoch')).toBe(classSource(read('test/support/raiseLr.ts'), 'RaiseLrEveryEpoch'));
    checkImports(block);
  });

  it('trains epoch k with lr0 · 1.1^k', async () => {
    const lrs: number[] = [];
    class LrProbe extends Callback {
      onEpochBegin() {
        lrs.push(this.learn.lr);
      }
    }
    const lr0 = 0.01;
    const learn = tinyLearner([new LrProbe(), new RaiseLrEveryEpoch()]);
    await learn.fit(4, { lr: lr0 });
    expect(lrs.length).toBe(4);
    lrs.forEach((lr, k) => expect(Math.abs(lr - lr0 * 1.1 ** k) / (lr0 * 1.1 ** k)).toBeLessThan(1e-12));
    expect(Math.abs(learn.lr - lr0 * 1.1 ** 4) / (lr0 * 1.1 ** 4)).toBeLessThan(1e-12);
  });
});

describe('README: "Stopping with a guard" (StopAtLoss)', () => {
  it('is exactly callbacks/stopAtLoss.ts', () => {
    const block = readmeBlock('StopAtLoss');
    expect(classSource(block, 'StopAtLoss')).toBe(classSource(read('callbacks/stopAtLoss.ts'), 'StopAtLoss'));
    checkImports(block);
  });

  it('stops after the batch whose smoothed loss first went below the target; that epoch still validates', async () => {
    class Smooth extends Callback {
      override order = 100;
      values: number[] = [];
      validations: number[] = [];
      onBatchEnd(ctx: TrainContext) {
        if (ctx.train) this.values.push(ctx.smoothLoss);
      }
      onValidateEnd(ctx: TrainContext) {
        this.validations.push(ctx.epoch);
      }
    }
    // Baseline: the smoothed loss of every batch of an uninterrupted run (3 batches per epoch).
    const baseline = new Smooth();
    await tinyLearner([baseline]).fit(6, { lr: 0.5 });
    const s = baseline.values;
    // A target crossed mid-epoch, after the first epoch: halfway between a new minimum and the previous one.
    const k = s.findIndex((v, i) => i >= 4 && i % 3 !== 2 && v < Math.min(...s.slice(0, i)));
    expect(k, 'the smoothed loss reaches a new minimum mid-epoch').toBeGreaterThan(0);
    const target = (s[k]! + Math.min(...s.slice(0, k))) / 2;
    expect(s.findIndex((v) => v < target)).toBe(k);

    const watch = new Smooth();
    const result = await tinyLearner([new StopAtLoss(target), watch]).fit(6, { lr: 0.5 });
    expect(result.status).toBe('stopped');
    expect(result.iterations).toBe(k + 1);
    expect(watch.values).toEqual(s.slice(0, k + 1));
    const stopEpoch = Math.floor(k / 3);
    expect(result.epochs).toBe(stopEpoch + 1);
    expect(watch.validations.at(-1)).toBe(stopEpoch);
  });
});
