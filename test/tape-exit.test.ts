/**
 * The driver records gradients from leaving a state tagged `opensTape` to reaching one tagged
 * `closesTape` (machines/trainLoop.ts). A custom machine (`runLoop({ machine })`) that lacks
 * the tag, ends, or opens the tape again before closing it must fail with a clear error —
 * never spin forever inside the tape. Each mutant is the real machine with one edit.
 */
import { describe, expect, it } from 'vitest';
import { describeMachine } from '../machines/describe.js';
import { TAPE_CLOSES, TAPE_OPENS, trainLoopMachine } from '../machines/trainLoop.js';
import { ConfigError } from '../src/errors.js';
import { HookTable } from '../src/loop/hookTable.js';
import { runLoop } from '../src/loop/runLoop.js';
import { FakeEngine } from './support/fakeEngine.js';
import { mutant, node } from './support/machineMutants.js';
import { bareContext } from './support/orderProperties.js';

function run(machine: ReturnType<typeof mutant>, nEpochs = 1, nTrain = 1) {
  const engine = new FakeEngine();
  const promise = runLoop({
    engine,
    table: new HookTable([]),
    ctx: bareContext(nEpochs, nTrain),
    input: { nEpochs, nTrainBatches: nTrain, nValidBatches: 0, validate: false },
    machine,
  });
  return { engine, promise };
}

const dropTag = (tags: string[] | undefined, tag: string) => (tags ?? []).filter((t) => t !== tag);

describe('the gradient tape always closes, or the run fails clearly', () => {
  it('a machine with a state tagged opensTape and none tagged closesTape is refused before anything runs', async () => {
    const machine = mutant((c) => {
      const g = node(c, 'epoch.train.gradients');
      g.tags = dropTag(g.tags, TAPE_CLOSES);
    });
    const { engine, promise } = run(machine);
    const err = (await promise.catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/tagged "opensTape".*no state is tagged "closesTape"/);
    expect(engine.steps).toEqual([]); // not one batch was loaded
  });

  it('a machine that reaches a final state with the tape open: runLoop rejects with a ConfigError naming that state', async () => {
    const machine = mutant((c) => {
      // backwardBegin goes straight to `completed`: the tape never closes.
      const b = node(c, 'epoch.train.backwardBegin');
      b.on!.NEXT = [{ target: '#trainLoop.completed' }];
    });
    const { engine, promise } = run(machine);
    const err = (await promise.catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/ended in state "completed" while the gradient tape was open/);
    expect(err.message).toMatch(/closesTape/);
    expect(engine.leftovers()).toEqual([]); // the run's tensors (here: numbers) were released
  });

  it('a machine that opens the tape again before closing it: the run fails naming the state', async () => {
    // lossBegin skips `gradients` and goes straight to batchEnd, so the next batchBegin opens the tape again.
    const machine = mutant((c) => {
      const l = node(c, 'epoch.train.lossBegin');
      l.on!.NEXT = [{ target: 'batchEnd' }];
    });
    const { engine, promise } = run(machine, 1, 3);
    // The machine is still alive: the run fails through trainEnd, with the ConfigError.
    const result = await promise;
    expect(result.status).toBe('failed');
    const err = result.error as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/reached "epoch\.train\.batchBegin", tagged "opensTape", again before any state tagged "closesTape"/);
    expect(engine.leftovers()).toEqual([]);
  });

  it('a machine that cycles inside the tape without closing it: the run fails instead of spinning', async () => {
    // lossBegin ⇄ backwardBegin forever, all under the tape.
    const machine = mutant((c) => {
      node(c, 'epoch.train.backwardBegin').on!.NEXT = [{ target: 'lossBegin' }];
    });
    const { engine, promise } = run(machine);
    const result = await promise;
    expect(result.status).toBe('failed');
    const err = result.error as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/kept the gradient tape open for \d+ steps .* did not reach a state tagged "closesTape"/);
    expect(engine.leftovers()).toEqual([]);
  });

  it('a machine that takes no NEXT in a state outside the tape: the run fails through trainEnd instead of spinning', async () => {
    // stepEnd (after the tape closed) loses its way out.
    const machine = mutant((c) => {
      delete node(c, 'epoch.train.stepEnd').on!.NEXT;
    });
    const { engine, promise } = run(machine);
    const result = await promise;
    expect(result.status).toBe('failed');
    const err = result.error as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/takes no NEXT in state "epoch\.train\.stepEnd"/);
    expect(engine.leftovers()).toEqual([]);
  });

  it('a machine that takes neither NEXT nor FAIL there: runLoop rejects with the ConfigError, the run released', async () => {
    const machine = mutant((c) => {
      delete node(c, 'epoch.train.stepEnd').on!.NEXT;
      delete c.on!.FAIL;
    });
    const { engine, promise } = run(machine);
    const err = (await promise.catch((e: unknown) => e)) as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/takes no NEXT in state "epoch\.train\.stepEnd"/);
    expect(engine.leftovers()).toEqual([]);
  });

  it('the real machine is not affected: opening and closing tags are where the driver expects them', async () => {
    const machine = mutant(() => {});
    const { engine, promise } = run(machine, 2, 2);
    await expect(promise).resolves.toMatchObject({ status: 'completed' });
    expect(engine.steps.map((s) => s.contributors)).toEqual([['e0b0'], ['e0b1'], ['e1b0'], ['e1b1']]);
    // The edits above act on the states that carry the tags in the real machine.
    const tagged = (tag: string) => describeMachine(trainLoopMachine).states.filter((s) => s.tags.includes(tag)).map((s) => s.path);
    expect(tagged(TAPE_OPENS)).toEqual(['epoch.train.batchBegin']);
    expect(tagged(TAPE_CLOSES)).toEqual(['epoch.train.gradients']);
  });
});
