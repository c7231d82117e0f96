/**
 * The loop's event order, as properties: random runs (0–4 epochs, 0–6 train and 0–3
 * validation batches, with and without validation, 0–6 callbacks with tied and untied orders
 * returning random controls — valid, misplaced, unknown, junk, `epoch: N` of every kind —
 * guards firing at random points, hooks and the work throwing at random points) driven by the
 * real machine and the real driver on a tensor-free engine, each trace judged by the
 * contract's oracle (test/support/traceChecker.ts).
 *
 * A failure prints the seed, the path and the shrunk scenario; replay it with
 * `FC_SEED=<seed> FC_PATH=<path> npx vitest run test/loop-order.property.test.ts` (README).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkScenario, fcParameters, orderProperty, resumedScenarioArb, scenarioArb } from './support/orderProperties.js';

describe('the loop keeps the contract on random runs (fast-check)', () => {
  it('every trace parses by the grammar, and every control, guard and error has exactly its effect (600 runs)', async () => {
    await fc.assert(orderProperty(), fcParameters(600));
  });

  it('the random runs reach every outcome and every effect, so the property above can fail', async () => {
    // A property over runs that never cancel, accumulate or fail would pass vacuously; count
    // what a fixed sample of the generator actually makes the loop do.
    const seen: Record<string, number> = {};
    const saw = (what: string, yes: boolean) => (seen[what] = (seen[what] ?? 0) + (yes ? 1 : 0));
    const samples = fc.sample(scenarioArb, { numRuns: 400, seed: 42 });
    for (const s of samples) {
      const r = await checkScenario(s);
      expect(r.violations).toEqual([]);
      const stages = (pred: (c: (typeof r.trace)[number]) => boolean) => r.trace.some(pred);
      saw('completed', r.status === 'completed');
      saw('stopped', r.status === 'stopped');
      saw('failed by a hook', r.trace.some((c) => 'threw' in c));
      saw('failed by a bad control', (r.error as Error | null)?.name === 'ControlError');
      saw('failed in the work', r.status === 'failed' && (r.error as { callback?: unknown } | null)?.callback === null);
      saw('jumped', stages((c) => c.stage === 'jumpToEpoch'));
      saw('jumped past the last epoch', stages((c) => c.stage === 'jumpToEpoch' && c.epoch >= s.nEpochs));
      saw('a bad epoch: N rejected', (r.error as { key?: unknown } | null)?.key === 'epoch');
      saw('a guard fired', r.guardCalls.some((g) => g.fired));
      saw('gradients accumulated', r.batches.some((b) => (b.stepWith?.length ?? 0) > 1));
      saw('a batch without a step', r.batches.some((b) => b.stepWith === null));
      saw('a cancelled batch', r.batches.some((b) => !r.trace.some((c) => c.stage === 'stepEnd' && c.epoch === b.epoch && c.batchIndex === b.batchIndex)));
      saw('validation skipped', s.validate && r.trace.some((c) => c.stage === 'epochEnd') && !stages((c) => c.stage === 'validateBegin'));
      saw('≥ 3 callbacks', new Set(r.trace.map((c) => c.callback)).size >= 3);
    }
    for (const [what, n] of Object.entries(seen)) expect(n, `${what}: ${n} of ${samples.length}`).toBeGreaterThanOrEqual(samples.length / 50);
  });

  it('runs resumed from a checkpoint (§6) and stopped by learn.stop() keep the contract: grammar, context, quiet points (600 runs)', async () => {
    await fc.assert(orderProperty({}, resumedScenarioArb), fcParameters(600));
  });

  it('the resumed runs reach every kind of resume and stop, so the property above can fail', async () => {
    const seen: Record<string, number> = {};
    const saw = (what: string, yes: boolean) => (seen[what] = (seen[what] ?? 0) + (yes ? 1 : 0));
    const samples = fc.sample(resumedScenarioArb, { numRuns: 400, seed: 42 });
    for (const s of samples) {
      const r = await checkScenario(s);
      expect(r.violations).toEqual([]);
      const ok = r.status !== 'failed';
      saw('resumed mid-epoch, completed', ok && (s.resume?.batchIndex ?? 0) > 0 && r.trace.some((c) => c.stage === 'batchBegin'));
      saw('resumed at an epoch start', ok && s.resume?.batchIndex === 0 && r.trace.some((c) => c.stage === 'epochBegin'));
      saw('resumed a finished run', ok && s.resume !== null && s.resume !== undefined && s.resume.epoch === s.nEpochs && r.trace.some((c) => c.stage === 'jumpToEpoch'));
      saw('resumed with carried gradients stepped', r.batches.some((b) => b.stepWith?.some((k) => s.resume?.carried.includes(k))));
      saw('resumed with the epoch flags of a half-done epoch', ok && !!(s.resume?.stopEpoch || s.resume?.skipValidate));
      saw('an epoch: N refused in a resumed run', (r.error as { key?: unknown } | null)?.key === 'epoch' && !!s.resume);
      saw('stopped by learn.stop()', r.status === 'stopped' && r.trace.some((c) => c.stopped));
      saw('a quiet point observed while stopping', r.quietCalls.some((q) => q.stopping));
      saw('a quiet point mid-epoch', r.quietCalls.some((q) => q.stage === 'batchEnd'));
      saw('a quiet point at an epoch end', r.quietCalls.some((q) => q.stage === 'epochEnd'));
    }
    for (const [what, n] of Object.entries(seen)) expect(n, `${what}: ${n} of ${samples.length}`).toBeGreaterThanOrEqual(samples.length / 50);
  });
});
