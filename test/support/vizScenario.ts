/**
 * What a person does with the visualizer, as one scenario run against a server that starts
 * paused at trainBegin (`--break trainBegin`): the same steps for the mock server (page
 * test) and for the real `trainchart train --viz` (end-to-end test).
 *
 *  1. the chart has one SVG node per state with a stage, covering the 12 stages of the
 *     contract (/work/shared/spec/loop.md §1); train and validation each have their own
 *     batchBegin, lossBegin and batchEnd, so there are 12 + 3 = 15 stage nodes;
 *  2. the run is shown paused at trainBegin;
 *  3. clicking train lossBegin sets a breakpoint there; Resume → paused in lossBegin
 *     (iteration 0); Step → paused in backwardBegin (the next stage of a train batch);
 *  4. clicking lossBegin again removes it; clicking epochEnd sets one there; Resume →
 *     paused in epochEnd of epoch 0 after the epoch's batches: the iteration counter went
 *     from 0 to the number of train batches, the loss chart has points;
 *  5. Clear, Resume → the status reads `completed`.
 * All along, the highlighted (`active`) state is recorded: it must have changed many times.
 */
import { expect } from 'vitest';
import type { Page } from 'playwright-core';
import { artifactPath } from './browser.js';

/** The stages of the contract, §1 (the jump is no stage: it has no hook of its own stage). */
export const CONTRACT_STAGES = [
  'trainBegin',
  'epochBegin',
  'batchBegin',
  'lossBegin',
  'backwardBegin',
  'backwardEnd',
  'stepEnd',
  'batchEnd',
  'validateBegin',
  'validateEnd',
  'epochEnd',
  'trainEnd',
];
/** 12 stages + validation's own batchBegin, lossBegin, batchEnd. */
export const STAGE_NODE_COUNT = 15;

export interface ScenarioOptions {
  url: string;
  /** Train batches per epoch (iteration at epoch 0's epochEnd). */
  nTrainBatches: number;
  /** Screenshot file prefix under test-artifacts/. */
  name: string;
  timeoutMs?: number;
}

const text = (page: Page, id: string) => page.locator(`#${id}`).textContent();

export async function runVizScenario(page: Page, o: ScenarioOptions): Promise<void> {
  const timeout = o.timeoutMs ?? 20_000;
  const pausedAt = (path: string) => page.locator(`.state.paused[data-path="${path}"]`).waitFor({ timeout });
  const clickState = (path: string) => page.locator(`.state[data-path="${path}"]`).click();

  await page.goto(o.url);
  await page.locator('body[data-ready="true"]').waitFor({ timeout });

  // 1. one node per stage state, every contract stage drawn
  const nodes = await page.$$eval('svg .state[data-stage]', (els) =>
    els.map((e) => ({ path: e.getAttribute('data-path'), stage: e.getAttribute('data-stage') })),
  );
  expect(nodes).toHaveLength(STAGE_NODE_COUNT);
  expect(new Set(nodes.map((n) => n.path)).size).toBe(nodes.length);
  expect([...new Set(nodes.map((n) => n.stage))].sort()).toEqual([...CONTRACT_STAGES].sort());
  // Transitions are drawn with the guards' names.
  const labels = await page.$$eval('svg .edge-label', (els) => els.map((e) => e.textContent));
  expect(labels.join(' ')).toContain('cancelBatch');
  expect(labels.join(' ')).toContain('hasNextTrainBatch');

  // Record every state that gets highlighted from now on.
  await page.evaluate(() => {
    const seen: string[] = [];
    (window as unknown as { __activeSeen: string[] }).__activeSeen = seen;
    const note = () => {
      const p = document.querySelector('svg .state.active')?.getAttribute('data-path');
      if (p && seen[seen.length - 1] !== p) seen.push(p);
    };
    note();
    // The whole document: a redrawn chart (a new hello) must not blind the record.
    new MutationObserver(note).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['class'] });
  });

  // 2. paused at trainBegin by the server's start-up breakpoint
  await pausedAt('trainBegin');
  expect(await text(page, 'status')).toBe('paused');

  // 3. break at train lossBegin by clicking it, resume, step
  await clickState('epoch.train.lossBegin');
  await page.locator('.state.breakpoint[data-path="epoch.train.lossBegin"]').waitFor({ timeout });
  await page.locator('#btn-resume').click();
  await pausedAt('epoch.train.lossBegin');
  expect(await page.locator('#paused-info').getAttribute('data-stage')).toBe('lossBegin');
  expect(await text(page, 'iteration')).toBe('0');
  expect(await text(page, 'epoch')).toBe('0');
  expect(await page.locator('#ctx').textContent()).toContain('"train": true');
  await page.locator('#btn-step').click();
  await pausedAt('epoch.train.backwardBegin');
  expect(await page.locator('#paused-info').getAttribute('data-stage')).toBe('backwardBegin');
  // lossBegin is no longer the paused state.
  expect(await page.locator('.state.paused').count()).toBe(1);

  // 4. move the breakpoint to epochEnd and run the epoch
  await clickState('epoch.train.lossBegin');
  // Only the class goes: the locator then matches nothing.
  await page.locator('.state.breakpoint[data-path="epoch.train.lossBegin"]').waitFor({ state: 'detached', timeout });
  await clickState('epoch.epochEnd');
  await page.locator('.state.breakpoint[data-path="epoch.epochEnd"]').waitFor({ timeout });
  await page.locator('#btn-resume').click();
  await pausedAt('epoch.epochEnd');
  await page.waitForFunction((n) => document.getElementById('iteration')!.textContent === String(n), o.nTrainBatches, { timeout });
  expect(await text(page, 'epoch')).toBe('0');
  await page.waitForFunction(() => Number(document.getElementById('chart-loss')!.dataset.points) > 0, null, { timeout });
  const points = Number(await page.locator('#chart-loss').getAttribute('data-points'));
  expect(points).toBeGreaterThan(0);
  expect(points).toBeLessThanOrEqual(o.nTrainBatches);
  expect(await page.locator('#chart-loss canvas').count()).toBeGreaterThan(0);
  expect(await page.locator('#log li').count()).toBeGreaterThan(0);
  // The viewport first: a full-page shot stretches the viewport, which un-scrolls the chart pane.
  await page.screenshot({ path: artifactPath(`${o.name}-paused-view.png`) });
  await page.screenshot({ path: artifactPath(`${o.name}-paused.png`), fullPage: true });

  // 5. clear every breakpoint and run to the end
  await page.locator('#btn-clear').click();
  await page.waitForFunction(() => document.querySelectorAll('.state.breakpoint').length === 0, null, { timeout });
  await page.locator('#btn-resume').click();
  await page.waitForFunction(() => document.getElementById('status')!.textContent === 'completed', null, { timeout: timeout * 3 });
  await page.locator('.state.active[data-path="completed"]').waitFor({ timeout });
  const seen = await page.evaluate(() => (window as unknown as { __activeSeen: string[] }).__activeSeen);
  expect(seen).toContain('epoch.train.lossBegin');
  expect(seen).toContain('epoch.train.backwardBegin');
  expect(seen).toContain('epoch.epochEnd');
  expect(seen[seen.length - 1]).toBe('completed');
  expect(new Set(seen).size).toBeGreaterThanOrEqual(5);
  await page.screenshot({ path: artifactPath(`${o.name}-done.png`), fullPage: true });
}
