/**
 * The visualizer page in headless Chromium against a stand-in server (test/support/mockVizServer.ts,
 * which walks the real loop machine and speaks the agreed protocol): the page alone, whatever the
 * state of the real server. The same scenario runs against `trainchart train --viz` in
 * visualizer-e2e.test.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { chromiumMissing, launchChromium } from './support/browser.js';
import { startMockVizServer, type MockVizServer } from './support/mockVizServer.js';
import { runVizScenario } from './support/vizScenario.js';

const missing = chromiumMissing();

describe.skipIf(missing !== null)('visualizer page (mock server)', () => {
  let browser: Browser;
  let server: MockVizServer | null = null;
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    await server?.close();
    await browser?.close();
  });

  it('draws the chart, follows the run, and breaks, steps and resumes from clicks', async () => {
    server = await startMockVizServer({ nEpochs: 2, nTrainBatches: 16, nValidBatches: 4, breakpoints: [{ stage: 'trainBegin' }] });
    const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // Works offline: every request the page makes goes to the server that served it.
    const requests: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    await runVizScenario(page, { url: server.url, nTrainBatches: 16, name: 'visualizer-page' });
    // What the page sent: the clicks became these protocol messages, in this order.
    expect(server.received.map((m) => m.type)).toEqual(['break', 'resume', 'step', 'clear', 'break', 'resume', 'clear', 'resume']);
    expect(server.received[0]).toEqual({ type: 'break', stage: 'lossBegin', path: 'epoch.train.lossBegin' });
    expect(server.received[3]).toEqual({ type: 'clear', stage: 'lossBegin', path: 'epoch.train.lossBegin' });
    expect(server.received[6]).toEqual({ type: 'clear' });
    expect(errors).toEqual([]);
    const origin = new URL(server!.url).origin;
    expect(requests.length).toBeGreaterThanOrEqual(3);
    expect(requests.filter((u) => !u.startsWith(`${origin}/`) && !u.startsWith(`ws://${new URL(server!.url).host}/`))).toEqual([]);
    await page.close();
  });

  it('a condition typed in the toolbar goes with the click and holds the run until it is true; Stop ends it `stopped`; the LR finder plot', async () => {
    await server?.close();
    server = await startMockVizServer({ nEpochs: 2, nTrainBatches: 12, nValidBatches: 2, breakpoints: [{ stage: 'trainBegin' }], lrfind: true });
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    await page.goto(server.url);
    await page.locator('.state.paused[data-path="trainBegin"]').waitFor();
    // The lrfind message (60 points) shows the finder's plot, with a log toggle.
    await page.locator('#lrfind-section').waitFor({ state: 'visible' });
    expect(await page.locator('#chart-lrfind').getAttribute('data-points')).toBe('60');
    await page.locator('#log-lrfind-loss').check();
    expect(await page.locator('#chart-lrfind canvas').count()).toBe(1);
    expect(await page.locator('#lrfind-suggestions').textContent()).toMatch(/valley \d\.\d\de-\d+/);

    await page.locator('#cond-on').check();
    await page.locator('#cond-field').selectOption('iteration');
    await page.locator('#cond-op').selectOption('>=');
    await page.locator('#cond-value').fill('5');
    await page.locator('.state[data-path="epoch.train.batchEnd"]').click();
    expect(server.received.at(-1)).toEqual({ type: 'break', stage: 'batchEnd', path: 'epoch.train.batchEnd', when: { field: 'iteration', op: '>=', value: 5 } });
    expect(await page.locator('#breakpoints').textContent()).toContain('epoch.train.batchEnd when iteration >= 5');
    await page.locator('#btn-resume').click();
    await page.locator('.state.paused[data-path="epoch.train.batchEnd"]').waitFor();
    // ctx.iteration counts the train batches done before this one: batches 0…4 passed the breakpoint.
    expect(await page.locator('#iteration').textContent()).toBe('5');
    expect(await page.locator('#batch').textContent()).toBe('5');

    await page.locator('#btn-stop').click();
    await page.waitForFunction(() => document.getElementById('status')!.textContent === 'stopped');
    await page.locator('.state.active[data-path="stopped"]').waitFor();
    expect(server.received.at(-1)).toEqual({ type: 'stop' });
    await page.close();
  });
});
