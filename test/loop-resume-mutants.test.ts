/**
 * The resume property (test/loop-order.property.test.ts, "runs resumed from a checkpoint")
 * must catch a broken resume path. Each mutant is the real machine with one defect in what
 * contract §6 and the stop path say; the resumed scenarios must find a counterexample for each,
 * and the kill must be the oracle's verdict on a run that ended (not a crash).
 */
import fc from 'fast-check';
import { assign } from 'xstate';
import { describe, expect, it } from 'vitest';
import { noControls } from '../machines/controls.js';
import { trainLoopMachine, trainLoopSetup, type LoopContext } from '../machines/trainLoop.js';
import { checkScenario, orderProperty, resumedScenarioArb, type Variant } from './support/orderProperties.js';

interface ConfigNode {
  entry?: unknown[];
  tags?: string[];
  on?: Record<string, unknown>;
  states?: Record<string, ConfigNode>;
  [key: string]: unknown;
}

function copy<T>(x: T): T {
  if (Array.isArray(x)) return x.map(copy) as T;
  if (x !== null && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) {
    return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, copy(v)])) as T;
  }
  return x;
}

const node = (root: ConfigNode, path: string) => path.split('.').reduce((n, key) => n.states![key]!, root);

/** The real machine's config, edited, on the real setup (so the driver's `.provide()` still applies). */
function mutant(edit: (config: ConfigNode) => void): typeof trainLoopMachine {
  const config = copy(trainLoopMachine.config) as unknown as ConfigNode;
  edit(config);
  return trainLoopSetup.createMachine(config as never) as unknown as typeof trainLoopMachine;
}

type Next = Array<{ guard?: unknown; target?: string; actions?: unknown }>;

const MUTANTS: Record<string, Variant> = {
  'a half-done epoch begins again (epochBegin runs after a mid-epoch resume)': {
    machine: mutant((c) => {
      const next = node(c, 'resume').on!.NEXT as Next;
      next[0]!.target = '#trainLoop.epoch';
    }),
  },
  'jumpToEpoch not called on resume': {
    machine: mutant((c) => {
      node(c, 'resume').entry = ['restoreRun'];
    }),
  },
  "the half-done epoch's flags are lost (skipValidate, stopEpoch)": {
    machine: mutant((c) => {
      const next = node(c, 'trainBegin').on!.NEXT as Next;
      next[0]!.actions = assign(({ context }: { context: LoopContext }) => ({
        epoch: context.resume!.epoch,
        iteration: context.resume!.iteration,
        batchIndex: context.resume!.batchIndex,
        controls: { ...noControls(), stopTraining: context.controls.stopTraining },
      }));
    }),
  },
  'the resumed run starts its count at 0': {
    machine: mutant((c) => {
      const next = node(c, 'trainBegin').on!.NEXT as Next;
      next[0]!.actions = assign(({ context }: { context: LoopContext }) => ({
        epoch: context.resume!.epoch,
        batchIndex: context.resume!.batchIndex,
        controls: { ...noControls(), stopEpoch: context.resume!.stopEpoch, skipValidate: context.resume!.skipValidate },
      }));
    }),
  },
  'epochEnd is not a quiet point': {
    machine: mutant((c) => {
      node(c, 'epoch.epochEnd').tags = [];
    }),
  },
  'STOP is ignored': {
    machine: mutant((c) => {
      c.on!.STOP = { actions: [] };
    }),
  },
};

const PARAMS = { numRuns: 300, seed: 20_260_801 };

class OracleViolation extends Error {
  constructor(readonly violations: string[]) {
    super(`${violations.length} violation(s):\n  - ${violations.join('\n  - ')}`);
  }
}

const CRASH = [/^status is crashed/, /^no error was expected, got /, /^the run failed, so it must end with an Error/, /^an exception in the loop must fail the run with a StageError/];

function killProperty(variant: Variant) {
  return fc.asyncProperty(resumedScenarioArb, async (s) => {
    const { status, violations } = await checkScenario(s, variant);
    if (status.startsWith('crashed') || violations.some((m) => CRASH.some((re) => re.test(m)))) return;
    if (violations.length) throw new OracleViolation(violations);
  });
}

describe('mutants of the resume path are caught by the resumed-run property', () => {
  it('the unmutated machine passes the same runs', async () => {
    const details = await fc.check(orderProperty({}, resumedScenarioArb), PARAMS);
    expect(details.failed, String(details.errorInstance)).toBe(false);
  });

  for (const [name, variant] of Object.entries(MUTANTS)) {
    it(`mutant "${name}" is killed by an oracle violation`, async () => {
      const details = await fc.check(killProperty(variant), PARAMS);
      expect(details.failed, `mutant "${name}" survived ${PARAMS.numRuns} runs`).toBe(true);
      expect(details.errorInstance).toBeInstanceOf(OracleViolation);
      const { violations } = details.errorInstance as OracleViolation;
      expect(violations.every((m) => /^(grammar )?§[2-6][ :]|^status is |^the loop ends at iteration |^the loop reports |^engine: |^the weights after /.test(m)), violations.join('\n')).toBe(true);
    });
  }
});
