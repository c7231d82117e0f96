/**
 * The dry run (`trainchart dry-run`, `describeLoop`, `loopPlan`, `learn.describeLoop`): it
 * must list the contract's stages in the contract's order, each with its callbacks in run
 * order, and the guards at exactly the stages they can fire from. The expectations are
 * written from the contract (§1, §3) and the oracle's restatement of it, not read back
 * from the machine the dry run itself reads.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { BUILTIN_CALLBACKS } from '../callbacks/registry.js';
import { Callback } from '../src/loop/callback.js';
import { describeLoop, loopPlan, type LoopPlan } from '../src/dryRun.js';
import { CONTRACT_CONTROLS, mayComeFrom } from './support/traceChecker.js';
import { tinyLearner } from './support/tracing.js';

const run = promisify(execFile);
const CLI = 'dist/src/cli/main.js';

/** Contract §1, in order; the validation pass's batch stages follow validateBegin (§2). */
const CONTRACT_ORDER = [
  'trainBegin',
  'jump',
  'epochBegin',
  'batchBegin',
  'lossBegin',
  'backwardBegin',
  'backwardEnd',
  'stepEnd',
  'batchEnd',
  'validateBegin',
  'batchBegin',
  'lossBegin',
  'batchEnd',
  'validateEnd',
  'epochEnd',
  'trainEnd',
];

class Named extends Callback {
  constructor(
    readonly label: string,
    order: number,
  ) {
    super();
    this.order = order;
  }
  override get name() {
    return this.label;
  }
  onTrainBegin() {}
  onBatchBegin() {}
  onEpochEnd() {}
}

const at = (plan: LoopPlan, stage: string, train = true) => plan.steps.find((s) => s.stage === stage && s.train === train)!;

describe('the dry run', () => {
  it('`trainchart dry-run --callbacks recorder,progress` lists every stage in order, each with its callbacks in order', async () => {
    const { stdout } = await run('node', [CLI, 'dry-run', '--callbacks', 'recorder,progress']);
    const stages = [...stdout.matchAll(/^ ?\d+\. (\(jump\)|\w+)/gm)].map((m) => (m[1] === '(jump)' ? 'jump' : m[1]));
    expect(stages).toEqual(CONTRACT_ORDER);
    // Each stage's callback line: Recorder (order 50) before Progress (order 60) wherever both run.
    const recorder = BUILTIN_CALLBACKS.recorder!();
    const progress = BUILTIN_CALLBACKS.progress!();
    const blocks = stdout.split(/^ ?\d+\. /m).slice(1);
    expect(blocks).toHaveLength(CONTRACT_ORDER.length);
    blocks.forEach((block, i) => {
      const stage = CONTRACT_ORDER[i]!;
      const hook = stage === 'jump' ? 'jumpToEpoch' : `on${stage[0]!.toUpperCase()}${stage.slice(1)}`;
      const expected = [recorder, progress].filter((cb) => typeof (cb as unknown as Record<string, unknown>)[hook] === 'function');
      const line = block.split('\n').find((l) => l.trim().startsWith(hook))!;
      const shown = line.trim().slice(hook.length).trim();
      expect(shown, `${stage}: ${line}`).toBe(expected.length ? expected.map((cb) => `${cb.name}(${cb.order})`).join(' → ') : '—');
    });
    expect(stdout).toMatch(/Recorder\(50\) → Progress\(60\)/);
  }, 60_000);

  it('`--json` gives the same plan as data, and an unknown callback name is rejected with the known ones listed', async () => {
    const { stdout } = await run('node', [CLI, 'dry-run', '--callbacks', 'progress', '--json', '--model', 'cnn']);
    const plan = JSON.parse(stdout) as LoopPlan & { model: { name: string; parameters: number } };
    expect(plan.model.name).toBe('cnn');
    expect(plan.model.parameters).toBeGreaterThan(0);
    expect(plan.steps.map((s) => s.stage)).toEqual(CONTRACT_ORDER);
    expect(plan.callbacks).toEqual([{ name: 'Progress', order: 60 }]);
    const err = (await run('node', [CLI, 'dry-run', '--callbacks', 'recorder,nosuch']).catch((e: unknown) => e)) as { code: number; stderr: string };
    expect(err.code).toBe(2);
    expect(err.stderr).toContain('unknown callback "nosuch"');
    expect(err.stderr).toContain('recorder, progress');
  }, 60_000);

  it('describeLoop reflects `order`: ascending, ties as given, and a changed order moves the callback', () => {
    const a = new Named('A', 5);
    const b = new Named('B', -1);
    const c = new Named('C', 5);
    expect(at(loopPlan([a, b, c]), 'batchBegin').callbacks.map((x) => x.name)).toEqual(['B', 'A', 'C']);
    expect(describeLoop([a, b, c])).toContain('B(-1) → A(5) → C(5)');
    b.order = 10;
    expect(at(loopPlan([a, b, c]), 'batchBegin').callbacks.map((x) => x.name)).toEqual(['A', 'C', 'B']);
    expect(describeLoop([a, b, c])).toContain('A(5) → C(5) → B(10)');
    // Only the stages a callback has a hook for list it.
    expect(at(loopPlan([a]), 'lossBegin').callbacks).toEqual([]);
    expect(at(loopPlan([a]), 'epochEnd').callbacks).toEqual([{ name: 'A', order: 5 }]);
  });

  it('guards appear at exactly the stages their control can fire from, train and validation apart', () => {
    const guarded = new Named('G', 0);
    guarded.guards = Object.fromEntries(CONTRACT_CONTROLS.map((c) => [c, () => false]));
    const plan = loopPlan([guarded]);
    for (const step of plan.steps) {
      if (step.stage === 'jump') continue;
      const expected = CONTRACT_CONTROLS.filter((c) => mayComeFrom(c, step.stage as never, step.train));
      expect(step.guards.map((g) => g.control), `${step.stage}${step.train ? '' : ' (validation)'}`).toEqual(expected);
      expect(step.controls.filter((c) => c !== 'epoch')).toEqual(expected);
      expect(step.guards.every((g) => g.callback === 'G')).toBe(true);
    }
    expect(at(plan, 'trainBegin').controls).toContain('epoch');
    expect(at(plan, 'batchBegin', false).guards.map((g) => g.control)).toEqual(['stopTraining']);
    expect(describeLoop([guarded])).toMatch(/backwardEnd[^\n]*\n[^\n]*\n\s+controls\s+cancelBatch, skipStep, stopEpoch, skipValidate, stopTraining\n\s+guards\s+G → cancelBatch, G → skipStep/);
  });

  it('learn.describeLoop lists the learner\'s callbacks and the extra ones of a fit', () => {
    const learn = tinyLearner([new Named('Mine', 3)], { recorder: true });
    const text = learn.describeLoop([new Named('Extra', -2)]);
    expect(text).toContain('Callbacks (by order): Extra(-2), Mine(3), Recorder(50)');
    expect(text).toContain('Extra(-2) → Mine(3) → Recorder(50)');
  });
});
