/**
 * Is a checkpoint a state of *this* run? A resume continues the same run, so everything that
 * decides what the run computes must match: the model's architecture, the optimizer's kind,
 * the callbacks (by name), the data (sample count, shapes, content fingerprint), batching and
 * the data order's seed, the learner's seed, loss and metrics, the fit's recipe (fit or
 * fitOneCycle with the same schedule) and its length. Options that are not state (a
 * Checkpoint's dir or keep, a Progress stream) may differ. A mismatch is a CheckpointError
 * that names the checkpoint and says what differs, both ways.
 */
import type { DataOrder } from '../data/dataLoader.js';
import type { FitRecipe, LayerSignature } from './capture.js';
import { checkpointError, MANIFEST_FILE } from './format.js';
import type { LoadedCheckpoint } from './read.js';
import { join } from 'node:path';

/** What this fit would be, in the terms a checkpoint records. */
export interface ResumeTarget {
  nEpochs: number;
  recipe: FitRecipe;
  learner: { seed: number; loss: string; metrics: string[] };
  architecture: LayerSignature[];
  optimizerKind: string;
  /** The callbacks' state keys (`Name`, `Name#2`), as `learn.callbackStates()` names them. */
  callbacks: string[];
  data: { train: DataOrder; valid: DataOrder | null };
  seededLayers: number;
  trainableWeights: number;
}

const show = (v: unknown) => JSON.stringify(v);

function describeLayer(l: LayerSignature): string {
  const config = Object.entries(l.config)
    .filter(([k]) => ['units', 'activation', 'rate', 'filters', 'kernelSize', 'useBias', 'targetShape'].includes(k))
    .map(([k, v]) => `${k} ${show(v)}`);
  return `${l.className}${config.length ? `(${config.join(', ')})` : ''}`;
}

function layerDifference(a: LayerSignature, b: LayerSignature): string | null {
  if (a.className !== b.className) return 'class';
  if (show(a.outputShape) !== show(b.outputShape)) return `output shape ${show(a.outputShape)} vs ${show(b.outputShape)}`;
  if (show(a.weights) !== show(b.weights)) {
    return `weights ${a.weights.map((w) => `[${w.shape.join(',')}]`).join(' ')} vs ${b.weights.map((w) => `[${w.shape.join(',')}]`).join(' ')}`;
  }
  const keys = new Set([...Object.keys(a.config), ...Object.keys(b.config)]);
  for (const k of keys) if (show(a.config[k]) !== show(b.config[k])) return `${k} ${show(a.config[k])} vs ${show(b.config[k])}`;
  return null;
}

function dataDifferences(name: string, saved: DataOrder | null, now: DataOrder | null): string[] {
  if (!saved && !now) return [];
  if (!saved || !now) return [`${name} data: ${saved ? 'the checkpoint has it, this learner has none' : 'this learner has it, the checkpoint has none'}`];
  const out: string[] = [];
  const field = (label: string, a: unknown, b: unknown) => {
    if (show(a) !== show(b)) out.push(`${name} data: ${label} ${show(a)} in the checkpoint, ${show(b)} here`);
  };
  field('sample count', saved.length, now.length);
  field('sample shape', saved.sampleShape, now.sampleShape);
  field('target shape', saved.targetShape, now.targetShape);
  field('target dtype', saved.targetDtype, now.targetDtype);
  field('batchSize', saved.batchSize, now.batchSize);
  field('shuffle', saved.shuffle, now.shuffle);
  field('seed', saved.seed, now.seed);
  field('dropLast', saved.dropLast, now.dropLast);
  if (out.length === 0 && saved.fingerprint !== now.fingerprint) {
    out.push(`${name} data: same size and shapes but other values (content fingerprint ${saved.fingerprint.slice(0, 12)}… in the checkpoint, ${now.fingerprint.slice(0, 12)}… here)`);
  }
  return out;
}

/** Throws a CheckpointError (problem 'mismatch') when `loaded` cannot continue as `target`. */
export function checkResumable(loaded: LoadedCheckpoint, target: ResumeTarget): void {
  const file = join(loaded.path, MANIFEST_FILE);
  const run = loaded.run;
  const refuse = (what: string, fix: string): never => {
    throw checkpointError('mismatch', file, `cannot resume from ${file}: ${what}; ${fix}`);
  };

  // The architecture first: nothing else means anything with other weights.
  const a = run.model.architecture;
  const b = target.architecture;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (!x || !y) {
      refuse(
        `the model is another architecture: the checkpoint's has ${a.length} layers, this one ${b.length} (layer ${i}: ${x ? describeLayer(x) : 'none'} vs ${y ? describeLayer(y) : 'none'})`,
        'build the model exactly as in the run that wrote the checkpoint',
      );
    }
    const diff = layerDifference(x!, y!);
    if (diff) {
      refuse(
        `the model is another architecture: layer ${i} is ${describeLayer(x!)} (${x!.name}) in the checkpoint, ${describeLayer(y!)} (${y!.name}) here — ${diff}`,
        'build the model exactly as in the run that wrote the checkpoint',
      );
    }
  }
  if (run.optimizer.kind !== target.optimizerKind) {
    refuse(`the checkpoint's optimizer is '${run.optimizer.kind}', this learner's is '${target.optimizerKind}'`, `create the learner with optimizer '${run.optimizer.kind}'`);
  }
  // The recipe before the callbacks: fitOneCycle's ParamScheduler would otherwise be all it says.
  const r = run.recipe;
  const t = target.recipe;
  if (r.kind !== t.kind) {
    refuse(
      `the checkpoint was written by ${r.kind === 'fit' ? 'learn.fit' : 'learn.fitOneCycle'}, and this is ${t.kind === 'fit' ? 'learn.fit' : 'learn.fitOneCycle'}`,
      `resume with learn.${r.kind}(n, { resumeFrom })`,
    );
  }
  if (r.kind === 'fitOneCycle' && t.kind === 'fitOneCycle') {
    for (const k of ['lrMax', 'divFactor', 'pctStart', 'finalDiv', 'moms'] as const) {
      if (show(r[k]) !== show(t[k])) refuse(`fitOneCycle's ${k} is ${show(t[k])}, the checkpoint's ${show(r[k])}`, `leave ${k} out (it comes from the checkpoint) or give the same`);
    }
  }
  const saved = [...run.callbacks.names].sort();
  const now = [...target.callbacks].sort();
  if (show(saved) !== show(now)) {
    refuse(
      `other callbacks: the checkpoint's are [${run.callbacks.names.join(', ')}], this fit's are [${target.callbacks.join(', ')}]`,
      'declare the same callbacks (by name) as the run that wrote the checkpoint; their options may differ',
    );
  }
  const data = [...dataDifferences('train', run.data.train, target.data.train), ...dataDifferences('valid', run.data.valid, target.data.valid)];
  if (data.length) refuse(`the data differs: ${data.join('; ')}`, 'resume on the same data, batch size and seed');
  const l = run.learner;
  if (l.seed !== target.learner.seed) refuse(`the learner's seed is ${target.learner.seed}, the checkpoint's ${l.seed}`, `create the learner with seed ${l.seed}`);
  if (l.loss !== target.learner.loss) refuse(`the loss is '${target.learner.loss}', the checkpoint's '${l.loss}'`, 'use the same loss');
  if (show(l.metrics) !== show(target.learner.metrics)) {
    refuse(`the metrics are [${target.learner.metrics.join(', ')}], the checkpoint's [${l.metrics.join(', ')}]`, 'use the same metrics');
  }
  if (run.random.layers.length !== target.seededLayers) {
    refuse(`the model has ${target.seededLayers} seeded random layers, the checkpoint ${run.random.layers.length}`, 'build the model exactly as in the run that wrote the checkpoint');
  }
  if ((run.engine.carriedGradients ?? []).some((g) => g.index >= target.trainableWeights)) {
    refuse('the checkpoint carries gradients for parameters this model does not train', 'build the model exactly as in the run that wrote the checkpoint (and freeze the same layers)');
  }

  const { epoch, batchIndex, nEpochs } = run.position;
  if (r.kind === 'fitOneCycle' && target.nEpochs !== nEpochs) {
    refuse(`the one-cycle schedule ran over ${nEpochs} epochs, this fit asks for ${target.nEpochs}`, `give n = ${nEpochs}, the run's total epochs`);
  }
  if (target.nEpochs < epoch || (batchIndex > 0 && target.nEpochs <= epoch)) {
    refuse(
      `the checkpoint is ${batchIndex > 0 ? `in the middle of epoch ${epoch}` : `at the start of epoch ${epoch}`}, beyond a run of ${target.nEpochs} epochs`,
      `give n = ${nEpochs}, the run's total epochs (n counts the whole run, as in fastai)`,
    );
  }
}
