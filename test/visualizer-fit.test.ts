/**
 * `fit(n, { viz })`: a Visualizer object or plain options. Watching must not change the run
 * (same hook trace as without), plain options make a server that fit closes again, and bad
 * options or a taken port reject the fit before anything changes. No breakpoints here, so the
 * run never blocks and everything can live in this thread.
 */
import * as tf from '@tensorflow/tfjs';
import { createServer } from 'node:net';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../src/errors.js';
import { PortInUseError, Visualizer } from '../visualizer/index.js';
import { TraceCallback, tinyLearner, type TraceEntry } from './support/tracing.js';
import { VizClient, wsUrl } from './support/vizClient.js';
import { stepView } from './support/stepView.js';
import { Callback } from '../src/loop/callback.js';
import type { TrainContext } from '../src/loop/context.js';
import type { FitObserver, LoopSnapshot } from '../src/loop/observer.js';
import type { StepInspectionEvent } from '../src/loop/stepInspection.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('fit(n, { viz })', () => {
  it('the run is the same with a Visualizer watching: same hooks in the same order, same result', async () => {
    const plainTrace: TraceEntry[] = [];
    const plain = await tinyLearner([new TraceCallback('t', plainTrace)]).fit(2);
    const viz = new Visualizer({ port: 0 });
    const client = await VizClient.open(wsUrl(await viz.start()));
    const watchedTrace: TraceEntry[] = [];
    const learn = tinyLearner([new TraceCallback('t', watchedTrace)]);
    const watched = await learn.fit(2, { viz });
    expect(watchedTrace).toEqual(plainTrace);
    expect(watched).toEqual(plain);
    // The visualizer's own callback ran in the fit only.
    expect(learn.callbacks.map((c) => c.name)).toEqual(['t']);
    expect(await client.next((m) => m.type === 'done')).toMatchObject({ status: 'completed', epochs: 2, iterations: 6 });
    client.close();
    await viz.close();
  });

  it('a watched fit is driven as an unwatched one (the resolved actor), its steps told once each, also beside an external inspector', async () => {
    /** The Visualizer, with what fit hands it recorded on the way. */
    const recording = (viz: Visualizer) => {
      const snapshots: LoopSnapshot[] = [];
      const steps: StepInspectionEvent[] = [];
      const observer: FitObserver = {
        callbacks: viz.callbacks,
        loopObserver: {
          afterEvent: (snapshot, ctx) => {
            snapshots.push(snapshot);
            viz.loopObserver.afterEvent(snapshot, ctx);
          },
        },
        watchSteps: (e) => {
          steps.push(e);
          viz.watchSteps(e);
        },
        runStarting: (run) => viz.runStarting(run),
        runEnded: (end) => viz.runEnded(end),
        close: () => viz.close(),
      };
      return { observer, snapshots, steps };
    };
    const isXStates = (s: LoopSnapshot) => typeof (s as unknown as { matches?: unknown }).matches === 'function';
    const viz = new Visualizer({ port: 0 });
    const client = await VizClient.open(wsUrl(await viz.start()));
    const alone = recording(viz);
    await tinyLearner([]).fit(2, { viz: alone.observer });
    const beside = recording(viz);
    await tinyLearner([]).fit(2, { viz: beside.observer, inspect: () => {} });
    expect(alone.snapshots.length).toBeGreaterThan(0);
    expect(alone.steps.filter((e) => e.type === '@xstate.microstep').length).toBeGreaterThan(0);
    expect(alone.snapshots.some(isXStates)).toBe(false);
    expect(beside.snapshots.every(isXStates)).toBe(true);
    expect(alone.steps.map(stepView)).toEqual(beside.steps.map(stepView));
    // A watcher written for the old feed (XState's whole stream as `inspect`) is refused, not starved.
    const { watchSteps: _, ...withoutSteps } = alone.observer;
    await expect(tinyLearner([]).fit(1, { viz: { ...withoutSteps, inspect: () => {} } as FitObserver })).rejects.toThrow(/watchSteps/);
    // Also as an observer object (XState's inspect takes either), or with watchSteps left undefined.
    await expect(tinyLearner([]).fit(1, { viz: { ...withoutSteps, inspect: { next: () => {} } } as unknown as FitObserver })).rejects.toThrow(/watchSteps/);
    await expect(tinyLearner([]).fit(1, { viz: { ...withoutSteps, watchSteps: undefined, inspect: () => {} } as unknown as FitObserver })).rejects.toThrow(/watchSteps/);
    client.close();
    await viz.close();
  });

  it('a broken event log or page feed never fails the run: warned, and the visualizer still guards its one run', async () => {
    const viz = new Visualizer({ port: 0 });
    const client = await VizClient.open(wsUrl(await viz.start()));
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    const inside = viz as unknown as { log: { record: (e: unknown) => void }; debugger: { afterEvent: (...args: unknown[]) => void } };
    try {
      const record = inside.log.record.bind(inside.log);
      inside.log.record = () => {
        throw new Error('log exploded');
      };
      const plain = await tinyLearner([]).fit(2);
      const first = tinyLearner([]).fit(2, { viz });
      // While it runs (the log already broken), a second fit on the same visualizer is refused.
      await expect(tinyLearner([]).fit(1, { viz })).rejects.toThrow(/already watching a run/);
      expect(await first).toEqual(plain);
      inside.log.record = record;
      const afterEvent = inside.debugger.afterEvent.bind(inside.debugger);
      inside.debugger.afterEvent = () => {
        throw new Error('feed exploded');
      };
      // Mid-run, after the feed broke (from the first event on), the visualizer still holds its run.
      class TriesASecondRun extends Callback {
        attempt: Promise<void> | null = null;
        onBatchBegin(ctx: TrainContext) {
          if (ctx.train && ctx.iteration === 2) this.attempt ??= viz.runStarting({ callbacks: [], nEpochs: 1, nTrainBatches: 1, nValidBatches: 0 });
        }
      }
      const tries = new TriesASecondRun();
      const second = await tinyLearner([]).fit(2, { viz, callbacks: [tries] });
      expect(tries.attempt).not.toBeNull();
      await expect(tries.attempt).rejects.toThrow(/already watching a run/);
      expect(second).toEqual(plain);
      inside.debugger.afterEvent = afterEvent;
      await new Promise((r) => setImmediate(r));
      // Once per run each, not once per event.
      expect(warnings.filter((w) => /event log failed \(log exploded\)/.test(w))).toHaveLength(1);
      expect(warnings.filter((w) => /feed exploded; the page stops updating/.test(w))).toHaveLength(1);
    } finally {
      process.off('warning', onWarning);
      client.close();
      await viz.close();
    }
  });

  it('showLrFind sends the lrfind message, kept for late clients; non-finite losses travel as null', async () => {
    const viz = new Visualizer({ port: 0 });
    const url = await viz.start();
    const early = await VizClient.open(wsUrl(url));
    await early.next((m) => m.type === 'hello');
    viz.showLrFind({ lrs: [1e-4, 1e-3, 1e-2], losses: [2.3, 1.1, Number.NaN], suggestions: { valley: 1e-3, steep: Number.NaN } });
    const expected = { type: 'lrfind', lrs: [1e-4, 1e-3, 1e-2], losses: [2.3, 1.1, null], suggestions: { valley: 1e-3, steep: null } };
    expect(await early.next((m) => m.type === 'lrfind')).toEqual(expected);
    const late = await VizClient.open(wsUrl(url));
    expect((await late.next((m) => m.type === 'hello')).history).toMatchObject({ lrfind: expected });
    early.close();
    late.close();
    await viz.close();
  });

  it('one Visualizer watches one fit at a time', async () => {
    const viz = new Visualizer({ port: 0 });
    const first = tinyLearner([]).fit(2, { viz });
    await expect(tinyLearner([]).fit(1, { viz })).rejects.toThrow(/already watching a run/);
    expect((await first).status).toBe('completed');
    await viz.close();
  });

  it('plain options: fit starts a server, says where, and closes it when the run is done', async () => {
    const lines: string[] = [];
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    let result;
    try {
      result = await tinyLearner([]).fit(1, { viz: { port: 0 } });
    } finally {
      spy.mockRestore();
    }
    expect(result.status).toBe('completed');
    const url = lines.join('').match(/visualizer: (http:\/\/127\.0\.0\.1:(\d+)\/)/);
    expect(url).not.toBeNull();
    await expect(VizClient.open(wsUrl(url![1]!))).rejects.toThrow(/ECONNREFUSED/);
  });

  it('bad viz options reject the fit with a ConfigError and change nothing', async () => {
    const learn = tinyLearner([]);
    const lr = learn.lr;
    await expect(learn.fit(1, { lr: 0.5, viz: { prot: 1 } })).rejects.toThrow(/visualizer: unknown option "prot"/);
    await expect(learn.fit(1, { viz: 'yes' as never })).rejects.toThrow(ConfigError);
    expect(learn.lr).toBe(lr);
  });

  it('a taken port rejects the fit with PortInUseError; the learner can fit again', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const learn = tinyLearner([]);
    try {
      await expect(learn.fit(1, { lr: 0.5, viz: { port, onListening: () => {} } })).rejects.toBeInstanceOf(PortInUseError);
      expect(learn.lr).not.toBe(0.5);
      expect((await learn.fit(1)).status).toBe('completed');
    } finally {
      blocker.close();
    }
  });
});
