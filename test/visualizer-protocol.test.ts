/**
 * The visualizer's protocol (issue 9 §4, docs/visualizer.md), spoken by WebSocket clients to a
 * short real training (a tiny MLP on DataLoader.fromArrays) in another process — a paused run
 * blocks its own thread by design, so the client cannot live in it.
 *
 * What is checked against the contract (shared/spec/loop.md, docs/loop.md), not against the
 * server's code: a pause at lossBegin happens *in* the stage (the forward pass has run — an
 * output exists — and the loss has not: no loss yet); a step goes to the next stage of the
 * loop, backwardBegin, where the loss exists; a stop while paused ends the run `stopped` after
 * the batch under way (stopTraining's contract: "as stopEpoch, then no new epoch").
 */
import { describe, expect, it } from 'vitest';
import { STAGES } from '../machines/stages.js';
import { Child, VizClient, wsUrl, type Msg } from './support/vizClient.js';

const SCRIPT = 'test/support/vizTrain.mjs';

async function startRun(cfg: Record<string, unknown>) {
  const child = new Child([SCRIPT, JSON.stringify({ waitForGo: true, ...cfg })], { stdin: true });
  const url = await child.url();
  return {
    child,
    url,
    go: () => child.proc.stdin!.write('go\n'),
    result: async () => {
      const [, json] = await child.line(/^result: (.*)$/);
      const exit = await child.exited;
      return { ...JSON.parse(json!), exit };
    },
  };
}

const STATE_FIELDS = ['path', 'stage', 'epoch', 'iteration', 'batchIndex', 'train', 'smoothLoss', 'lr', 'status'];
const PAUSED_FIELDS = ['path', 'stage', 'epoch', 'iteration', 'batchIndex', 'train', 'reason'];

describe('break, step, clear, resume', () => {
  it('pauses in train lossBegin, steps to backwardBegin, resumes to completed; late and second clients see the same run', async () => {
    // 30 train batches of 16, each followed by a 60 ms sleep (no CPU): the resumed run lasts ≥ 1.8 s.
    const run = await startRun({ samples: 480, batchSize: 16, sleepMs: 60, epochs: 1, waitAfter: true });
    try {
      const a = await VizClient.open(wsUrl(run.url));
      const hello = await a.next((m) => m.type === 'hello');
      expect(hello.status).toBe('idle');
      const machine = hello.machine as { id: string; states: { stage: string | null }[] };
      expect(machine.id).toBe('trainLoop');
      // The machine as described: every stage of the contract has a state.
      expect(new Set(machine.states.map((s) => s.stage).filter(Boolean))).toEqual(new Set(STAGES));
      expect((hello.callbacks as { steps: unknown[] }).steps.length).toBeGreaterThan(0);

      a.send({ type: 'break', stage: 'lossBegin' });
      expect((await a.next((m) => m.type === 'breakpoints')).items).toEqual([{ stage: 'lossBegin' }]);
      run.go();

      const runHello = await a.next((m) => m.type === 'hello');
      expect(runHello).toMatchObject({ status: 'running', nEpochs: 1, nTrainBatches: 30, nValidBatches: 2, breakpoints: [{ stage: 'lossBegin' }] });
      const names = (runHello.callbacks as { callbacks: { name: string }[] }).callbacks.map((c) => c.name);
      expect(names).toEqual(expect.arrayContaining(['Sleep', 'LossBeginProbe', 'Recorder', 'VisualizerProbe']));

      const paused = await a.next((m) => m.type === 'paused');
      for (const f of PAUSED_FIELDS) expect(paused).toHaveProperty(f);
      expect(paused).toMatchObject({ path: 'epoch.train.lossBegin', stage: 'lossBegin', train: true, epoch: 0, iteration: 0, batchIndex: 0, reason: 'breakpoint' });
      const ctx = paused.ctx as Record<string, unknown>;
      // In lossBegin: the forward pass has run (an output of [batch, classes]), the loss is not computed yet.
      expect(ctx.lastOutput).toEqual({ shape: [16, 3], dtype: 'float32' });
      expect(ctx.lastInput).toEqual({ shape: [16, 4], dtype: 'float32' });
      expect(ctx.lastLoss).toBeNull();
      expect(ctx.lastLossValue).toBeNull();
      expect(ctx).toMatchObject({ stage: 'lossBegin', nBatches: 30, nEpochs: 1, train: true, lr: 0.01 });

      // A late client gets hello (status paused) and then, right after it, the pause.
      const late = await VizClient.open(wsUrl(run.url));
      const lateHello = await late.next(() => true);
      expect(lateHello).toMatchObject({ type: 'hello', status: 'paused', breakpoints: [{ stage: 'lossBegin' }] });
      const latePaused = await late.next(() => true);
      expect(latePaused).toMatchObject({ type: 'paused', path: 'epoch.train.lossBegin', reason: 'breakpoint' });

      // Still paused a while later: training does not go on by itself.
      await new Promise((r) => setTimeout(r, 300));
      expect(a.ofType('paused')).toHaveLength(1);
      expect(a.messages.some((m) => m.type === 'resumed' || m.type === 'done')).toBe(false);

      a.send({ type: 'step' });
      for (const c of [a, late]) {
        expect(await c.next((m) => m.type === 'resumed')).toMatchObject({ reason: 'step' });
        const stepped = await c.next((m) => m.type === 'paused');
        expect(stepped).toMatchObject({ path: 'epoch.train.backwardBegin', stage: 'backwardBegin', train: true, iteration: 0, batchIndex: 0, reason: 'step' });
        const sctx = stepped.ctx as Record<string, unknown>;
        // backwardBegin: the loss of this batch exists now.
        expect(typeof sctx.lastLossValue).toBe('number');
        expect(sctx.lastLoss).toEqual({ shape: [], dtype: 'float32' });
      }

      // The second client clears, the first resumes: both drive the same run.
      late.send({ type: 'clear' });
      expect((await a.next((m) => m.type === 'breakpoints')).items).toEqual([]);
      a.send({ type: 'resume' });
      const resumed = await a.next((m) => m.type === 'resumed');
      expect(resumed.reason).toBe('resume');
      const resumedAt = a.messages.at(-1)!.at;

      const done = await a.next((m) => m.type === 'done', { timeoutMs: 60_000 });
      expect(done).toMatchObject({ status: 'completed', error: null, epochs: 1, iterations: 30 });
      expect(await late.next((m) => m.type === 'done')).toMatchObject({ status: 'completed' });
      const doneAt = a.messages.find((m) => m.type === 'done')!.at;

      // No pause after the clear.
      expect(a.ofType('paused')).toHaveLength(2);

      // State messages while running: the required fields, and at least 4 a second.
      const states = a.messages.filter((m) => m.type === 'state' && m.at > resumedAt && m.at < doneAt);
      for (const s of states) {
        for (const f of STATE_FIELDS) expect(s).toHaveProperty(f);
        expect(typeof s.epoch).toBe('number');
        expect(typeof s.train).toBe('boolean');
      }
      // The last state before done is where the run ended, with its final status.
      expect(states.at(-1)).toMatchObject({ path: 'completed', stage: null, status: 'completed', iteration: 30 });
      expect(states.slice(0, -1).every((s) => s.status === 'running')).toBe(true);
      const seconds = (doneAt - resumedAt) / 1000;
      expect(seconds).toBeGreaterThan(1.5);
      console.log(`state messages: ${states.length} in ${seconds.toFixed(2)} s = ${(states.length / seconds).toFixed(1)}/s`);
      expect(states.length / seconds).toBeGreaterThanOrEqual(4);

      // Every train batch reached the page once, in order, with its loss.
      const batches = a.ofType('batches').flatMap((m) => m.items as Msg[]);
      expect(batches.map((b) => b.iteration)).toEqual([...Array(30).keys()]);
      expect(batches.every((b) => typeof b.loss === 'number' && b.lr === 0.01)).toBe(true);
      const epochs = a.ofType('epoch');
      expect(epochs).toHaveLength(1);
      expect(epochs[0]).toMatchObject({ epoch: 0, iteration: 30 });
      expect(typeof epochs[0]!.validLoss).toBe('number');
      expect(Object.keys(epochs[0]!.metrics as object)).toEqual(['accuracy']);
      // The event log saw stages entered and guards taken.
      const events = a.ofType('events').flatMap((m) => m.items as Msg[]);
      expect(events.some((e) => e.kind === 'stage' && e.stage === 'batchEnd')).toBe(true);
      expect(events.some((e) => e.kind === 'guard')).toBe(true);

      // A client connecting after the run gets hello with the final status and the history, then done.
      await run.child.line(/^finished$/);
      const after = await VizClient.open(wsUrl(run.url));
      const h = await after.next(() => true);
      expect(h).toMatchObject({ type: 'hello', status: 'completed' });
      expect((h.history as { batches: Msg[] }).batches.map((b) => b.iteration)).toEqual([...Array(30).keys()]);
      expect((h.history as { epochs: unknown[] }).epochs).toHaveLength(1);
      expect(await after.next(() => true)).toMatchObject({ type: 'done', status: 'completed' });
      after.close();
      run.go();
      const result = await run.result();
      expect(result).toMatchObject({ status: 'completed', iterations: 30, exit: { code: 0 } });
      a.close();
      late.close();
    } finally {
      run.child.kill();
    }
  });
});

describe('conditions and stop', () => {
  it('a condition iteration == 3 pauses exactly there; stop while paused ends the run stopped after that batch', async () => {
    const run = await startRun({ samples: 160, batchSize: 16, epochs: 2 });
    try {
      const a = await VizClient.open(wsUrl(run.url));
      await a.next((m) => m.type === 'hello');
      a.send({ type: 'break', stage: 'lossBegin', when: { field: 'iteration', op: '==', value: 3 } });
      await a.next((m) => m.type === 'breakpoints');
      run.go();
      const paused = await a.next((m) => m.type === 'paused');
      expect(paused).toMatchObject({
        stage: 'lossBegin',
        train: true,
        iteration: 3,
        batchIndex: 3,
        epoch: 0,
        reason: 'breakpoint',
        breakpoint: { stage: 'lossBegin', when: { field: 'iteration', op: '==', value: 3 } },
      });
      expect((paused.ctx as { iteration: number }).iteration).toBe(3);
      // The three batches before it ran without a pause.
      expect(a.ofType('paused')).toHaveLength(1);

      a.send({ type: 'stop' });
      expect(await a.next((m) => m.type === 'resumed')).toMatchObject({ reason: 'stop' });
      const done = await a.next((m) => m.type === 'done');
      // stopTraining: the batch under way ends, the epoch's validation runs, no second epoch.
      expect(done).toMatchObject({ status: 'stopped', epochs: 1, iterations: 4 });
      expect(a.ofType('paused')).toHaveLength(1);
      const result = await run.result();
      expect(result).toMatchObject({ status: 'stopped', epochs: 1, iterations: 4, exit: { code: 0 } });
      a.close();
    } finally {
      run.child.kill();
    }
  });

  it('pause asked while running halts at the next stage with reason pause; resume finishes the run', async () => {
    const run = await startRun({ samples: 320, batchSize: 16, epochs: 1, sleepMs: 30 });
    try {
      const a = await VizClient.open(wsUrl(run.url));
      await a.next((m) => m.type === 'hello');
      run.go();
      await a.next((m) => m.type === 'hello' && m.status === 'running');
      await a.next((m) => m.type === 'state');
      a.send({ type: 'pause' });
      const paused = await a.next((m) => m.type === 'paused');
      expect(paused.reason).toBe('pause');
      expect(STAGES).toContain(paused.stage);
      expect(paused.breakpoint).toBeNull();
      a.send({ type: 'resume' });
      expect(await a.next((m) => m.type === 'done')).toMatchObject({ status: 'completed', iterations: 20 });
      await run.result();
      a.close();
    } finally {
      run.child.kill();
    }
  });
});
