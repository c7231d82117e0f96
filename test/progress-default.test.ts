/**
 * A Learner shows progress by default, as fastai's (the default ProgressCallback): a Progress
 * callback on stderr. `progress: false` turns it off; a Progress of one's own replaces it.
 * The suite's setup file (test/support/quietProgress.ts) turns the default off for every other
 * test; here it is set back to the library's own default around each test.
 */
import * as tf from '@tensorflow/tfjs';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { Progress } from '../callbacks/progress.js';
import { learnerDefaults } from '../src/defaults.js';
import { ConfigError } from '../src/errors.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

let stderr: string[];
beforeEach(() => {
  learnerDefaults.progress = true;
  stderr = [];
  // Captured, not shown: what the default Progress writes is what is checked.
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr.push(String(chunk));
    return true;
  });
});
afterEach(() => {
  vi.restoreAllMocks();
  learnerDefaults.progress = false;
});

function sink() {
  const out: string[] = [];
  return { out, stream: { write: (s: string) => out.push(s), isTTY: false } };
}

const tableHeaders = (text: string) => text.match(/^epoch\s+train_loss/gm)?.length ?? 0;

describe('progress by default', () => {
  it('is on: learn.progress is a Progress on stderr; off a terminal it writes the table alone', async () => {
    const learn = tinyLearner([]);
    expect(learn.progress).toBeInstanceOf(Progress);
    expect(learn.callbacks.filter((cb) => cb instanceof Progress)).toEqual([learn.progress]);
    await learn.fit(2);
    const text = stderr.join('');
    expect(tableHeaders(text)).toBe(1);
    // Off a terminal only the table is written (one row per epoch, 1-based), so it stays contiguous.
    expect(text).toMatch(/^epoch +train_loss +valid_loss +accuracy +time\n1 +[\d.]+ +[\d.]+ +[\d.]+ +\d\d:\d\d\n2 /m);
    expect(text).not.toMatch(/[\r\x1b]/); // vitest's stderr is no TTY: no bars redrawn in place
    learn.dispose();
  });

  it('progress: false draws nothing', async () => {
    const learn = tinyLearner([], { progress: false });
    expect(learn.progress).toBeNull();
    expect(learn.callbacks.some((cb) => cb instanceof Progress)).toBe(false);
    await learn.fit(1);
    expect(stderr.join('')).toBe('');
    learn.dispose();
  });

  it('a Progress of your own, given at construction, added later or given to one fit, replaces the default: progress is drawn once', async () => {
    const mine = sink();
    const own = new Progress({ stream: mine.stream });
    const a = tinyLearner([own]);
    expect(a.progress).toBe(own);
    expect(a.callbacks.filter((cb) => cb instanceof Progress)).toEqual([own]);
    await a.fit(1);
    expect(tableHeaders(mine.out.join(''))).toBe(1);
    a.dispose();

    for (const how of ['addCallback', 'fit'] as const) {
      const theirs = sink();
      const b = tinyLearner([]);
      const p = new Progress({ stream: theirs.stream });
      if (how === 'addCallback') b.addCallback(p);
      await b.fit(1, how === 'fit' ? { callbacks: [p] } : {});
      expect(tableHeaders(theirs.out.join('')), how).toBe(1);
      expect(stderr.join(''), how).toBe(''); // the default one sat this fit out
      b.dispose();
    }
    // A fit without the other Progress draws with the default one again.
    const c = tinyLearner([]);
    const other = sink();
    await c.fit(1, { callbacks: [new Progress({ stream: other.stream })] });
    await c.fit(1);
    expect(tableHeaders(stderr.join(''))).toBe(1);
    c.dispose();
  });

  it('progress must be a boolean', () => {
    expect(() => tinyLearner([], { progress: 'yes' as never })).toThrow(ConfigError);
    expect(() => tinyLearner([], { progress: 1 as never })).toThrow(/progress must be true or false, got 1/);
  });

  it('the default Progress is not in callbackStates: a run resumes alike with or without it; one of your own is', async () => {
    const saved = tinyLearner([]);
    await saved.fit(1);
    expect(saved.callbackStates()).toEqual({});
    const resumed = tinyLearner([], { progress: false });
    await expect(resumed.fit(2, { startEpoch: 1, callbackStates: saved.callbackStates() })).resolves.toMatchObject({ status: 'completed' });
    const mine = tinyLearner([new Progress({ stream: sink().stream })]);
    expect(mine.callbackStates()).toEqual({ Progress: {} });
    saved.dispose();
    resumed.dispose();
    mine.dispose();
  });
});
