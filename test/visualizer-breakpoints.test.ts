/**
 * Breakpoint specs (`--break SPEC`, `{ viz: { break } }`) and conditions. The expected values are
 * the issue's own examples and arithmetic done by hand, not the parser's output played back.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../src/errors.js';
import type { TrainContext } from '../src/loop/context.js';
import { conditionHolds, loopMachineInfo, parseBreakSpec, toBreakpoints } from '../visualizer/index.js';
import { matchBreakpoint } from '../visualizer/server/breakpoints.js';

const { paths } = loopMachineInfo();

describe('parseBreakSpec', () => {
  it.each([
    ['backwardEnd', { stage: 'backwardEnd' }],
    ['backwardEnd:smoothLoss>2', { stage: 'backwardEnd', when: { field: 'smoothLoss', op: '>', value: 2 } }],
    ['epochBegin:epoch>=3', { stage: 'epochBegin', when: { field: 'epoch', op: '>=', value: 3 } }],
    ['lossBegin:iteration==120', { stage: 'lossBegin', when: { field: 'iteration', op: '==', value: 120 } }],
    ['batchEnd: lastLossValue <= 0.25 ', { stage: 'batchEnd', when: { field: 'lastLossValue', op: '<=', value: 0.25 } }],
    ['stepEnd:lr!=1e-3', { stage: 'stepEnd', when: { field: 'lr', op: '!=', value: 0.001 } }],
    ['batchEnd:train==false', { stage: 'batchEnd', when: { field: 'train', op: '==', value: false } }],
    ['epoch.validation.batchEnd', { stage: 'batchEnd', path: 'epoch.validation.batchEnd' }],
    ['epoch.train.lossBegin:batchIndex<2', { stage: 'lossBegin', path: 'epoch.train.lossBegin', when: { field: 'batchIndex', op: '<', value: 2 } }],
  ])('%s', (spec, expected) => {
    expect(parseBreakSpec(spec, paths)).toEqual(expected);
  });

  it.each([
    ['nope', /stage must be one of/],
    ['', /stage must be one of/],
    ['backwardEnd:smoothLoss=2', /no operator/],
    ['backwardEnd:smoothLoss>', /finite number/],
    ['backwardEnd:smoothLoss>abc', /finite number/],
    ['backwardEnd:constructor>1', /when.field must be one of/],
    ['backwardEnd:__proto__==1', /when.field must be one of/],
    ['batchEnd:train>0', /true or false/],
    ['batchEnd:train==1', /true or false/],
    ['epoch.train.gradients', /not a state with hooks/],
    ['epoch.nowhere.lossBegin', /not a state with hooks/],
  ])('%s is refused with a ConfigError', (spec, why) => {
    let err: unknown = null;
    try {
      parseBreakSpec(spec, paths);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(why);
    expect((err as Error).message).toContain('e.g. backwardEnd or backwardEnd:smoothLoss>2');
  });

  it('a list of specs and objects; the same place twice keeps the last condition', () => {
    expect(toBreakpoints(['lossBegin', { stage: 'backwardEnd' }, 'lossBegin:epoch==1'], paths)).toEqual([
      { stage: 'backwardEnd' },
      { stage: 'lossBegin', when: { field: 'epoch', op: '==', value: 1 } },
    ]);
    expect(() => toBreakpoints([{ stage: 'lossBegin', cond: 'x' }], paths)).toThrow(/unknown key "cond"/);
    expect(() => toBreakpoints(42, paths)).toThrow(ConfigError);
  });
});

/** Only the fields a condition reads; the learner supplies lr, momentum and wd. */
function ctx(fields: Partial<TrainContext> & { lr?: number }): TrainContext {
  const { lr = 0.01, ...rest } = fields;
  return { epoch: 0, iteration: 0, batchIndex: 0, train: true, smoothLoss: Number.NaN, lastLossValue: null, learn: { lr, momentum: 0.9, wd: 0 }, ...rest } as unknown as TrainContext;
}

describe('conditions', () => {
  it.each([
    ['>', 2, true],
    ['>', 2.5, false],
    ['>=', 2.5, true],
    ['<', 3, true],
    ['<', 2.5, false],
    ['<=', 2.4, false],
    ['==', 2.5, true],
    ['==', 2.4, false],
    ['!=', 2.5, false],
    ['!=', 2, true],
  ] as const)('smoothLoss 2.5 %s %d is %s', (op, value, holds) => {
    expect(conditionHolds({ field: 'smoothLoss', op, value }, ctx({ smoothLoss: 2.5 }))).toBe(holds);
  });

  it('a field with no value yet never satisfies a condition', () => {
    for (const op of ['<', '<=', '>', '>=', '==', '!='] as const) {
      expect(conditionHolds({ field: 'smoothLoss', op, value: 1 }, ctx({ smoothLoss: Number.NaN }))).toBe(false);
      expect(conditionHolds({ field: 'lastLossValue', op, value: 1 }, ctx({ lastLossValue: null }))).toBe(false);
    }
  });

  it('booleans compare with == and !=; lr is read from the learner', () => {
    expect(conditionHolds({ field: 'train', op: '==', value: false }, ctx({ train: false }))).toBe(true);
    expect(conditionHolds({ field: 'train', op: '!=', value: false }, ctx({ train: false }))).toBe(false);
    expect(conditionHolds({ field: 'lr', op: '<', value: 0.005 }, ctx({ lr: 0.001 }))).toBe(true);
  });

  it('a stage breakpoint matches the stage in train and validation; a path only its state', () => {
    const any = [{ stage: 'batchEnd' as const }];
    expect(matchBreakpoint(any, 'batchEnd', 'epoch.train.batchEnd', ctx({}))).toEqual(any[0]);
    expect(matchBreakpoint(any, 'batchEnd', 'epoch.validation.batchEnd', ctx({ train: false }))).toEqual(any[0]);
    const one = [{ stage: 'batchEnd' as const, path: 'epoch.validation.batchEnd' }];
    expect(matchBreakpoint(one, 'batchEnd', 'epoch.train.batchEnd', ctx({}))).toBeNull();
    expect(matchBreakpoint(one, 'batchEnd', 'epoch.validation.batchEnd', ctx({ train: false }))).toEqual(one[0]);
    const when = [{ stage: 'lossBegin' as const, when: { field: 'iteration', op: '==' as const, value: 3 } }];
    expect(matchBreakpoint(when, 'lossBegin', 'epoch.train.lossBegin', ctx({ iteration: 2 }))).toBeNull();
    expect(matchBreakpoint(when, 'lossBegin', 'epoch.train.lossBegin', ctx({ iteration: 3 }))).toEqual(when[0]);
  });
});
