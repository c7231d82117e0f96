/**
 * End to end: a real, short training with the visualizer (`trainchart train --viz --port 0
 * --break trainBegin`, MNIST 2048 samples in batches of 32 → 64 train batches an epoch, 2
 * epochs), its page in headless Chromium, driven as a person would (test/support/vizScenario.ts):
 * one SVG node per stage state, the highlighted state moving, counters rising to the epoch's 64
 * batches, the loss chart filling, a breakpoint set by a click pausing the run there, step
 * moving to the next stage, resume running to `completed`. The run waits for the page only
 * because it starts paused (`--break trainBegin`), so nothing here races the training.
 * Screenshots go to test-artifacts/ (git-ignored).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { chromiumMissing, launchChromium } from './support/browser.js';
import { runVizScenario } from './support/vizScenario.js';

const CLI = 'dist/src/cli/main.js';
const missing = chromiumMissing();

/** Resolves with the URL the CLI prints once its server listens (`visualizer: http://127.0.0.1:PORT/`). */
function urlOf(child: ChildProcess, output: { text: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no visualizer URL printed within 30 s; output:\n${output.text}`)), 30_000);
    const look = () => {
      const m = /visualizer:\s*(http:\/\/127\.0\.0\.1:\d+\/?)/.exec(output.text);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    child.stdout!.on('data', look);
    child.stderr!.on('data', look);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`trainchart train --viz exited with ${code} before printing its URL (is the visualizer server merged?); output:\n${output.text}`));
    });
  });
}

describe.skipIf(missing !== null)('visualizer end to end (trainchart train --viz, headless Chromium)', () => {
  let browser: Browser;
  let child: ChildProcess | null = null;
  const out = mkdtempSync(join(tmpdir(), 'trainchart-viz-e2e-'));
  beforeAll(async () => {
    browser = await launchChromium();
  });
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await browser?.close();
    rmSync(out, { recursive: true, force: true });
  });

  it('follows a real run and breaks, steps and resumes it from the page', async () => {
    const args = ['train', '--viz', '--port', '0', '--break', 'trainBegin', '--limit-train', '2048', '--limit-valid', '256', '--batch-size', '32', '--epochs', '2', '--seed', '1', '--out', out];
    child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const output = { text: '' };
    child.stdout!.on('data', (d) => (output.text += String(d)));
    child.stderr!.on('data', (d) => (output.text += String(d)));
    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)));
    const url = await urlOf(child, output);

    const page = await browser.newPage({ viewport: { width: 1500, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await runVizScenario(page, { url, nTrainBatches: 64, name: 'visualizer-e2e', timeoutMs: 30_000 });
    expect(errors).toEqual([]);
    await page.close();
    // `train --viz` exits once the run is done (after sending `done`).
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running 20 s after done'), 20_000))]);
    expect(code, output.text).toBe(0);
    // About 15 s alone; the margin is for a loaded machine, not for waiting on anything.
  }, 120_000);
});
