/**
 * docs/errors.md is the catalogue of bad inputs; this suite is its proof. The table is the single
 * source: for every row this file has exactly one case (keyed by the row's id) that performs the
 * input, and the row's own columns — error class, code and the key words of the message — are
 * what the thrown error is checked against. A row without a case, or a case without a row, fails.
 *
 * After every API error the environment is checked as the standards require: the tensor count
 * is back where it was before the bad call, the same Learner completes a new `fit`, and no file
 * was left half-written (no temp files in the case's scratch directory). CLI rows run the built
 * CLI in a child process: exit code 2 for CONFIG/DATA errors (1 otherwise), the key words on
 * stderr, and never a stack trace.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DataLoader } from '../src/data/dataLoader.js';
import { TrainchartError } from '../src/errors.js';
import { Learner } from '../src/learner.js';
import { Callback } from '../src/loop/callback.js';
import { createOptimizer } from '../src/optim/index.js';
import { selectBackend } from '../src/backend/selectBackend.js';
import { ParamScheduler } from '../callbacks/paramScheduler.js';
import { Checkpoint } from '../callbacks/checkpoint.js';
import { CSVLogger } from '../callbacks/csvLogger.js';
import { SaveModel } from '../callbacks/saveModel.js';
import { tinyLearner, tinyModel, tinyProblem } from './support/tracing.js';

interface Row {
  id: string;
  input: string;
  errorClass: string;
  code: string;
  words: string[];
}

/** The rows of docs/errors.md's table: `| id | input | Class · CODE | `word`, `word` | test |`. */
function readCatalog(): Row[] {
  const text = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const rows: Row[] = [];
  for (const line of text.split('\n')) {
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    if (cells.length < 5 || !/^[AC]\d+$/.test(cells[0]!)) continue;
    const [id, input, error, words] = cells as [string, string, string, string];
    const [errorClass, code] = error.split('·').map((s) => s.trim()) as [string, string];
    rows.push({ id, input, errorClass, code, words: [...words.matchAll(/`([^`]+)`/g)].map((m) => m[1]!.replace(/\\\|/g, '|')) });
  }
  return rows;
}

/** What an API case gets: a learner it may use (checked to still work afterwards) and a scratch dir. */
interface Env {
  learn: Learner;
  dir: string;
  /** Options for a new Learner, with a model built before the tensor count is taken. */
  options: ReturnType<typeof tinyOptions>;
}

type ApiCase = (env: Env) => unknown;
type CliCase = string[];

class Noop extends Callback {}
const hookReturning = (value: unknown, hook = 'onEpochBegin') => {
  const cb = new (class extends Callback {})();
  (cb as unknown as Record<string, unknown>)[hook] = () => value;
  return cb;
};

/** A callback that sets `learn.grads` at a stage where it has no meaning. */
const gradsSetterAt = (hook: string) => {
  const cb = new (class GradsSetter extends Callback {})();
  (cb as unknown as Record<string, unknown>)[hook] = (ctx: { train: boolean; learn: { params: tf.Variable[] } }) => {
    if (!ctx.train) return;
    const zeros: tf.NamedTensorMap = {};
    for (const p of ctx.learn.params) zeros[p.name] = tf.zerosLike(p);
    try {
      cb.learn.grads = zeros;
    } catch (e) {
      tf.dispose(zeros); // refused: the map is still the caller's to free
      throw e;
    }
  };
  return cb;
};

const API: Record<string, ApiCase> = {
  A01: ({ learn }) => learn.fit(0),
  A02: ({ learn }) => learn.fit(1.5),
  A03: ({ learn }) => learn.fit(1, { lr: -1 }),
  A04: ({ learn }) => learn.fit(1, { lr: Number.NaN }),
  A05: ({ learn }) => learn.fit(1, { wd: -0.5 }),
  A06: ({ learn }) => learn.fit(1, { lrr: 1e-3 } as never),
  A07: ({ options }) => new Learner({ ...options, epochs: 3 } as never),
  A08: ({ options }) => new Learner({ ...options, model: {} as never }),
  A09: ({ options }) => new Learner({ ...options, data: {} as never }),
  A10: ({ options }) => new Learner({ ...options, loss: 'crossEntropy' as never }),
  A11: ({ options }) => new Learner({ ...options, optimizer: 'rmsprop' as never }),
  A12: () => createOptimizer({ kind: 'adam', beta1: 0.8 } as never),
  A13: ({ options }) => new Learner({ ...options, metrics: ['f1' as never] }),
  A14: () => DataLoader.fromArrays([], [], { batchSize: 2 }),
  A15: () => DataLoader.fromArrays(new Float32Array(8), new Float32Array(6), { batchSize: 0, xShape: [4], yShape: [3] }),
  A16: () => DataLoader.fromArrays(new Float32Array(12), new Float32Array(6), { batchSize: 1, xShape: [4], yShape: [3] }),
  A17: () => DataLoader.fromArrays([[1, Number.NaN, 0, 0]], [[1, 0, 0]], { batchSize: 1 }),
  A18: () => DataLoader.fromArrays(new Float32Array(8), new Float32Array(6), { batchSize: 1, xShape: [3], yShape: [3] }),
  A19: () => DataLoader.fromArrays(new Float32Array(8), new Float32Array(6), { batchSize: 1, xShape: [4], yShape: [3], shufle: true } as never),
  A20: ({ learn }) => {
    learn.data = { train: DataLoader.fromArrays(new Float32Array(10), new Float32Array(6), { batchSize: 1, xShape: [5], yShape: [3] }) };
    return learn.fit(1);
  },
  A21: ({ learn }) => {
    learn.data = { train: DataLoader.fromArrays(new Float32Array(8), new Float32Array(14), { batchSize: 1, xShape: [4], yShape: [7] }) };
    return learn.fit(1);
  },
  A22: ({ options }) => {
    const train = DataLoader.fromArrays(new Float32Array(8), new Int32Array([0, 5]), { batchSize: 1, xShape: [4], yShape: [1] });
    return new Learner({ ...options, data: { train }, loss: 'sparseCategoricalCrossentropy' }).fit(1);
  },
  A23: ({ options }) => {
    const train = DataLoader.fromArrays(new Float32Array(8), new Float32Array([0, 1.5]), { batchSize: 1, xShape: [4], yShape: [1] });
    return new Learner({ ...options, data: { train }, loss: 'sparseCategoricalCrossentropy' }).fit(1);
  },
  A24: ({ learn }) => learn.fit(1, { callbacks: [hookReturning({ stopTrainning: true })] }),
  A25: ({ learn }) => learn.fit(1, { callbacks: [hookReturning({ skipStep: true })] }),
  A26: ({ learn }) => learn.fit(1, { callbacks: [hookReturning({ stopTraining: 1 })] }),
  A27: ({ learn }) => learn.fit(1, { callbacks: [hookReturning(Promise.resolve())] }),
  A28: ({ learn }) => learn.fit(1, { callbacks: [hookReturning(true)] }),
  A29: ({ learn }) => learn.fit(1, { callbacks: [hookReturning({ epoch: 1 })] }),
  A30: ({ learn }) => learn.fit(2, { callbacks: [hookReturning({ epoch: -1 }, 'onTrainBegin')] }),
  A31: ({ learn }) =>
    learn.fit(1, {
      callbacks: [
        // Typed away on purpose: TypeScript already refuses an async hook; plain JS does not.
        new (class AsyncHook extends Callback {
          // @ts-expect-error an async hook does not type-check; plain JavaScript has no such guard
          async onEpochBegin() {}
        })() as unknown as Callback,
      ],
    }),
  A32: ({ learn }) =>
    learn.fit(1, {
      callbacks: [
        new (class Misspelled extends Callback {
          onEpochStart() {}
        })(),
      ],
    }),
  A33: ({ learn }) => learn.fit(1, { callbacks: [Noop as never] }),
  A34: ({ learn }) => {
    const cb = new Noop();
    cb.guards = { stopTrainingNow: () => true } as never;
    return learn.fit(1, { callbacks: [cb] });
  },
  A35: async ({ learn }) => {
    const first = learn.fit(1);
    try {
      return await learn.fit(1);
    } finally {
      await first;
    }
  },
  A36: ({ learn }) =>
    learn.fit(1, {
      callbacks: [
        new (class Thrower extends Callback {
          onBatchEnd() {
            throw new Error('disk on fire');
          }
        })(),
      ],
    }),
  A37: ({ learn }) =>
    learn.fit(1, {
      callbacks: [
        new (class NanLr extends Callback {
          onBatchBegin() {
            this.learn.lr = Number.NaN;
          }
        })(),
      ],
    }),
  A38: ({ learn }) => learn.fit(2, { startEpoch: -1 }),
  A39: ({ learn }) => learn.fit(2, { callbackStates: {} }),
  A40: () => new ParamScheduler({ lr: (() => 1) as never }).setState({ patience: 3 }),
  A41: () => selectBackend('tpu' as never),
  A77: () => selectBackend('wasm', undefined, { threads: 9 }),
  A78: () => selectBackend('cpu', undefined, { threads: 2 }),
  A42: ({ learn }) => learn.lrFind({ numItt: 5 } as never),
  A43: ({ learn }) => learn.fitOneCycle(1, { lrMaxx: 1e-2 } as never),
  A44: ({ learn }) => learn.fit(1, { callbacks: [hookReturning({ skipBackward: true }, 'onBatchBegin')] }),
  A45: ({ learn }) => learn.fit(1, { callbacks: [gradsSetterAt('onStepEnd')] }),
  A46: ({ learn }) => {
    learn.grads = {};
  },
  A47: ({ learn, options }) => {
    const shared = new Noop();
    learn.addCallback(shared);
    try {
      return new Learner({ ...options, callbacks: [shared] });
    } finally {
      learn.removeCallback(shared);
    }
  },
  A48: ({ learn }) => learn.fit(2, { startEpoch: 2 }),
  A49: ({ learn }) => {
    const cb = new Noop();
    cb.guards = { stopTraining: (() => 1) as never };
    return learn.fit(1, { callbacks: [cb] });
  },
  A50: ({ learn }) => {
    const cb = new Noop();
    cb.guards = {
      stopTraining: () => {
        throw new Error('guard tripped');
      },
    };
    return learn.fit(1, { callbacks: [cb] });
  },
  A51: ({ learn }) =>
    learn.fit(1, {
      callbacks: [
        new (class FieldTypo extends Callback {
          onEpochEnds = () => {};
        })(),
      ],
    }),
  A52: ({ learn }) =>
    learn.fit(1, {
      callbacks: [
        new (class NotAFunction extends Callback {
          onEpochEnd = 3 as never;
        })(),
      ],
    }),
  A53: ({ options }) => new Learner({ ...options, data: { train: options.data.train } }).validate(),
  A54: ({ learn }) => learn.predict([1, 2, 3]),
  A55: ({ options }) => {
    const other = new Learner({ ...options, model: tinyModel(9) });
    other.dispose();
    return other.fit(1);
  },
  A56: ({ learn, dir }) => {
    writeFileSync(join(dir, 'model'), 'not a directory');
    return learn.exportModel(join(dir, 'model'));
  },
  A57: ({ options }) => new Learner({ ...options, progress: 1 as never }),
  A58: ({ learn }) =>
    learn.fit(1, {
      callbacks: [
        new (class PredictsMidFit extends Callback {
          onEpochEnd() {
            (this.learn as Learner).predict([1, 2, 3, 4]);
          }
        })(),
      ],
    }),
  A59: async () => {
    const base = { data: tinyProblem(), loss: 'categoricalCrossentropy' as const, recorder: false, optimizer: 'adam' as const };
    const source = new Learner({ ...base, model: tinyModel(11) });
    const target = new Learner({ ...base, model: tinyModel(12) });
    try {
      await source.fit(1);
      const state = source.optimizer.getState() as { slots: Array<{ param: string }> };
      state.slots.push({ ...state.slots[0]!, param: 'layers.9/kernel' } as never);
      return target.optimizer.setState(state as never);
    } finally {
      source.dispose();
      target.dispose();
    }
  },
  A62: ({ learn, dir }) => learn.fit(1, { resumeFrom: join(dir, 'no-such-run') }),
  A63: ({ learn, dir }) => learn.fit(1, { resumeFrom: dir, lr: 1e-3 }),
  A64: async ({ dir }) => {
    // A real checkpoint, then one byte of its weights changed: refused by checksum, before anything is loaded.
    const first = new Learner({ ...tinyOptions(), callbacks: [new Checkpoint({ dir: join(dir, 'run') })] });
    await first.fit(1);
    first.dispose();
    const weights = join(dir, 'run', readFileSync(join(dir, 'run', 'latest'), 'utf8').trim(), 'weights.bin');
    const bytes = readFileSync(weights);
    bytes[bytes.length - 1] ^= 0xff;
    writeFileSync(weights, bytes);
    const again = new Learner({ ...tinyOptions(), callbacks: [new Checkpoint({ dir: join(dir, 'again') })] });
    try {
      return await again.fit(1, { resumeFrom: join(dir, 'run') });
    } finally {
      again.dispose();
    }
  },
  A65: async ({ dir }) => {
    const first = new Learner({ ...tinyOptions(), optimizer: 'adam', callbacks: [new Checkpoint({ dir: join(dir, 'run') })] });
    await first.fit(1);
    first.dispose();
    const other = new Learner({ ...tinyOptions(), optimizer: 'sgd', callbacks: [new Checkpoint({ dir: join(dir, 'again') })] });
    try {
      return await other.fit(1, { resumeFrom: join(dir, 'run') });
    } finally {
      other.dispose();
    }
  },
  A66: ({ learn }) => learn.fit(1, { signal: 'stop' as never }),
  A67: ({ dir }) => new Checkpoint({ dir, everyBatches: 0 }),
  A68: ({ learn }) => learn.exportModel('/proc/trainchart-model'),
  A69: ({ learn }) => learn.fit(1, { callbacks: [new SaveModel({ dir: '/proc/trainchart-best' })] }),
  A70: ({ learn }) => learn.fit(1, { callbacks: [new CSVLogger({ path: '/proc/trainchart/history.csv' })] }),
  A71: ({ learn }) => {
    const data = learn.data;
    learn.data = {} as never;
    try {
      return learn.fit(1);
    } finally {
      learn.data = data;
    }
  },
  A72: ({ learn }) => {
    learn.lr = Number.NaN;
  },
  A73: ({ learn }) => learn.fit(1, null as never),
  A74: ({ options }) => new Learner({ ...options, metrics: 'accuracy' as never }),
  A75: ({ options }) => new Learner({ ...options, seed: 1.5 }),
  A76: ({ learn, dir }) => {
    mkdirSync(join(dir, 'model', 'model.json'), { recursive: true });
    return learn.exportModel(join(dir, 'model'));
  },
  A61: ({ learn }) => learn.lrFind({ startLr: 10, endLr: 1e-7 }),
  A60: async ({ options }) => {
    const optimizer = createOptimizer('adam');
    // Its smoothed loss read: the losses it holds for it are freed (the tensor count checks the refused call alone).
    void (await new Learner({ ...options, optimizer }).fit(1)).smoothLoss;
    const other = tinyOptions();
    try {
      return await new Learner({ ...other, optimizer }).fit(1);
    } finally {
      other.model.dispose();
      optimizer.dispose();
    }
  },
};

/** A sweep spec with a bad grid value, for the CLI rows: it is refused before any connection. */
const badSpec = join(mkdtempSync(join(tmpdir(), 'trainchart-spec-')), 'bad.json');
writeFileSync(badSpec, JSON.stringify({ name: 'bad', base: { model: 'mlp', epochs: 1 }, grid: { lr: [0.001, -1] } }));
// Port 1 on loopback: nothing listens there, so the connection is refused at once.
const NO_REDIS = 'redis://127.0.0.1:1';

const CLI: Record<string, CliCase> = {
  C01: ['train', '--epochs', '0'],
  C02: ['train', '--model', 'resnet'],
  C03: ['train', '--epoch', '1'],
  C04: ['trian'],
  C05: ['dry-run', '--callbacks', 'recorder,nope'],
  C06: ['train', '--lr=-1'],
  C07: ['train', '--backend', 'tpu'],
  C08: ['lr-find', '--model', 'vgg'],
  C09: ['train', '--save-model', '/etc/hostname', '--limit-train', '64'],
  C10: ['train', '--out', '/etc/hostname', '--limit-train', '64'],
  C11: ['train', '--out', '/proc/trainchart-run', '--limit-train', '64'],
  C12: ['lr-find', '--start-lr', '1', '--end-lr', '0.1'],
  C13: ['train', '--out=', '--limit-train', '64'],
  C14: ['train', '--checkpoint-every', '5'],
  C15: ['resume', '/nonexistent/run'],
  C16: ['resume'],
  C17: ['sweep', 'status', 'lr-scan', '--redis', 'localhost:6379'],
  C18: ['sweep', badSpec, '--redis', NO_REDIS],
  C19: ['sweep', 'status', 'lr-scan', '--redis', NO_REDIS],
  C20: ['train', '--threads', '9'],
  C21: ['train', '--threads', '2', '--backend', 'cpu'],
};

function tinyOptions() {
  const { train, valid } = tinyProblem();
  return { model: tinyModel(), data: { train, valid }, loss: 'categoricalCrossentropy' as const, recorder: false };
}

const rows = readCatalog();
const cli = join(process.cwd(), 'dist/src/cli/main.js');
let scratch: string;

beforeAll(async () => {
  await tf.setBackend('cpu');
  scratch = mkdtempSync(join(tmpdir(), 'trainchart-errors-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('docs/errors.md', () => {
  it('has at least 40 rows, each with a case here, and every case has a row', () => {
    expect(rows.length).toBeGreaterThanOrEqual(40);
    const ids = rows.map((r) => r.id);
    expect(new Set(ids).size, 'ids are unique').toBe(ids.length);
    expect(ids.filter((id) => !(id in API) && !(id in CLI)), 'rows without a case').toEqual([]);
    expect([...Object.keys(API), ...Object.keys(CLI)].filter((id) => !ids.includes(id)), 'cases without a row').toEqual([]);
    for (const r of rows) expect(r.words.length, `${r.id} names the key words of its message`).toBeGreaterThan(0);
  });
});

describe.each(rows.filter((r) => r.id in API))('API $id: $input', (row) => {
  it(`raises ${row.errorClass} (${row.code}) saying ${row.words.join(', ')}; the learner, the tensors and the files are as before`, async () => {
    const learn = tinyLearner([]);
    const options = tinyOptions();
    const dir = mkdtempSync(join(scratch, `${row.id}-`));
    // The optimizer's own slots are state a real step creates (a run that failed after its first
    // step has them, as it should); everything else the call made must be gone.
    const loopTensors = () => tf.memory().numTensors - learn.optimizer.numTensors;
    const before = loopTensors();
    let error: unknown = null;
    try {
      await API[row.id]!({ learn, dir, options });
    } catch (e) {
      error = e;
    }
    expect(error, 'the input is refused').toBeInstanceOf(TrainchartError);
    const e = error as TrainchartError;
    expect(e.name, e.message).toBe(row.errorClass);
    expect(e.code, e.message).toBe(row.code);
    for (const word of row.words) expect(e.message, e.message).toContain(word);

    // A fit the case ran (beside the refused call) holds its unread losses for its smoothed loss: read them.
    if (!learn.disposed) learn.smoothLossState();
    expect(loopTensors(), 'tensors made by the refused call are freed').toBe(before);
    options.model.dispose();
    expect(readdirSync(dir).filter((f) => /tmp|partial/i.test(f)), 'no half-written file').toEqual([]);
    learn.data = tinyProblem();
    const result = await learn.fit(1);
    expect(result.status, 'the learner trains afterwards').toBe('completed');
  });
});

describe.each(rows.filter((r) => r.id in CLI))('CLI $id: $input', (row) => {
  it(`exits ${row.code === 'CONFIG' || row.code === 'DATA' ? 2 : 1} saying ${row.words.join(', ')}, without a stack trace`, () => {
    const run = spawnSync(process.execPath, [cli, ...CLI[row.id]!], { encoding: 'utf8', timeout: 60_000 });
    expect(run.status, run.stderr).toBe(row.code === 'CONFIG' || row.code === 'DATA' ? 2 : 1);
    for (const word of row.words) expect(run.stderr, run.stderr).toContain(word);
    expect(run.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/);
  });
});
