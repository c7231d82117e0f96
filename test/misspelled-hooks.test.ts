/**
 * A hook with a misspelled name would never run, silently. `fit` refuses one in every shape a
 * callback can carry it:
 *  - class members (methods, getters): any `on<Capital>…` member that is not a hook name;
 *  - own fields holding a function (class fields, or assigned in the constructor): when the
 *    name looks like a hook — it names a stage word (`onEpochEnds`, `onBatchStart`,
 *    `onValidationEnd`) or is within two edits of a hook name (`onEpcohEnd`).
 * An own field that holds no function (`onSaved = 'saved.json'`), or a function-valued handler
 * option whose name is nothing like a stage (`onSaved = () => …`), is an option: allowed.
 */
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import { tinyLearner } from './support/tracing.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

class Method extends Callback {
  onEpochEnds() {}
}
class Getter extends Callback {
  get onEpochEnds() {
    return () => {};
  }
}
class Field extends Callback {
  onEpochEnds = () => {};
}
class InConstructor extends Callback {
  constructor() {
    super();
    (this as unknown as Record<string, unknown>).onBatchStart = () => {};
  }
}
class Transposed extends Callback {
  onEpcohEnd = () => {};
}
class Validation extends Callback {
  onValidationEnd = function () {};
}
class Inherited extends Method {}

describe('a misspelled hook is refused in every shape', () => {
  for (const [shape, make, name] of [
    ['a method', () => new Method(), 'onEpochEnds'],
    ['a getter', () => new Getter(), 'onEpochEnds'],
    ['a class field holding a function', () => new Field(), 'onEpochEnds'],
    ['a function assigned in the constructor', () => new InConstructor(), 'onBatchStart'],
    ['a field two edits from a hook name', () => new Transposed(), 'onEpcohEnd'],
    ['a field naming the validation stage', () => new Validation(), 'onValidationEnd'],
    ['a method of a parent class', () => new Inherited(), 'onEpochEnds'],
  ] as const) {
    it(`${shape} (${name}): ConfigError naming it and the real hooks, before anything runs`, async () => {
      const learn = tinyLearner([make()]);
      const err = (await learn.fit(1).catch((e: unknown) => e)) as ConfigError;
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toMatch(new RegExp(`has a .*${name}, which is not a stage hook.*onEpochEnd`));
    });
  }

  // fastai v2's documented events (Callback docs: before_fit … after_fit) and Keras's, as a
  // port would write them: each would silently never run; the error names the hook to use.
  for (const [name, meant, shape] of [
    ['afterEpoch', 'onEpochEnd', 'method'],
    ['after_epoch', 'onEpochEnd', 'method'],
    ['beforeBatch', 'onBatchBegin', 'field'],
    ['before_fit', 'onTrainBegin', 'field'],
    ['afterLoss', 'onBackwardBegin', 'method'],
    ['afterStep', 'onStepEnd', 'field'],
    ['OnEpochEnd', 'onEpochEnd', 'method'],
    ['on_epoch_end', 'onEpochEnd', 'field'],
    ['onepochend', 'onEpochEnd', 'method'],
  ] as const) {
    it(`a ${shape} named ${name} (another framework's hook) is refused, naming ${meant}`, async () => {
      class Ported extends Callback {}
      if (shape === 'method') Object.defineProperty(Ported.prototype, name, { value() {}, writable: true, configurable: true });
      const cb = new Ported();
      if (shape === 'field') (cb as unknown as Record<string, unknown>)[name] = () => {};
      const err = (await tinyLearner([cb]).fit(1).catch((e: unknown) => e)) as ConfigError;
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.message).toContain(`${name}, which is not a stage hook; the hook that runs there is ${meant}`);
    });
  }

  it('option fields named on… are not hooks: a string, a handler with a name like no stage', async () => {
    class Options extends Callback {
      onSaved = 'saved.json';
      onProgress = (_n: number) => {};
      onError: null = null;
    }
    await expect(tinyLearner([new Options()]).fit(1)).resolves.toMatchObject({ status: 'completed' });
  });

  it('hooks given as own fields with the right names run', async () => {
    const seen: string[] = [];
    class Fields extends Callback {
      onEpochEnd = () => void seen.push('epochEnd');
    }
    await tinyLearner([new Fields()]).fit(1);
    expect(seen).toEqual(['epochEnd']);
  });
});
