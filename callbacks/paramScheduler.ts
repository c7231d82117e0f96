import { Callback } from '../src/loop/callback.js';
import { ConfigError } from '../src/errors.js';
import type { JumpPosition, TrainContext } from '../src/loop/context.js';

/** The hyper-parameters a schedule may drive: the Learner's setters read at every step. */
export type ScheduledParam = 'lr' | 'momentum' | 'beta1' | 'wd';
/** Position in the run, in [0, 1) → value (see src/schedule/annealers.ts). */
export type ParamSchedule = (pos: number) => number;
export type ParamSchedules = Partial<Record<ScheduledParam, ParamSchedule>>;

const PARAMS: readonly ScheduledParam[] = ['lr', 'momentum', 'beta1', 'wd'];

/**
 * Sets hyper-parameters from schedules at every train batch (fastai's ParamScheduler).
 *
 * At each train batchBegin the position is `pct_train` as fastai defines it,
 *   pos = (epoch · nBatches + batchIndex) / (nEpochs · nBatches),
 * i.e. train batches since the fit started over the fit's train batches, and
 * `learn[param] = schedule(pos)` for every schedule. Computing it from the epoch (not from a
 * running count) is what puts a resumed run (jumpToEpoch) and an epoch cut short by
 * stopEpoch where fastai puts them. Validation batches are left alone.
 *
 * ```ts
 * new ParamScheduler({ lr: combinedCos(0.25, 4e-5, 1e-3, 1e-8), momentum: combinedCos(0.25, 0.95, 0.85, 0.95) })
 * ```
 *
 * State: what the batches used (`hps`, with the epoch of each batch in `hpEpochs`) and `pos`;
 * the schedules are options. The values themselves follow from the position, so a resume
 * needs no state to continue the schedule: jumpToEpoch sets them.
 */
export class ParamScheduler extends Callback {
  /** The values each train batch used, by hyper-parameter (fastai's `hps`). */
  hps: Partial<Record<ScheduledParam, number[]>> = {};
  /** The epoch of each train batch recorded in `hps`. */
  hpEpochs: number[] = [];
  /** Position of the latest train batch scheduled. */
  pos = 0;
  // The fit's length, from its context at trainBegin: not state.
  private nEpochs = 1;
  private nBatches = 1;
  readonly scheds: Readonly<ParamSchedules>;
  protected override readonly stateKeys: readonly string[] = ['hps', 'hpEpochs', 'pos'];

  constructor(scheds: ParamSchedules) {
    super();
    if (!scheds || typeof scheds !== 'object') throw new ConfigError('ParamScheduler(scheds): give an object { lr?: (pos) => value, ... }');
    for (const [key, fn] of Object.entries(scheds)) {
      if (!(PARAMS as readonly string[]).includes(key)) {
        throw new ConfigError(`ParamScheduler: cannot schedule '${key}'; schedulable are ${PARAMS.map((p) => `'${p}'`).join(', ')}`);
      }
      if (typeof fn !== 'function') throw new ConfigError(`ParamScheduler: the schedule of '${key}' must be a function (pos) => value`);
    }
    if ('momentum' in scheds && 'beta1' in scheds) {
      throw new ConfigError("ParamScheduler: 'momentum' and 'beta1' are the same hyper-parameter; schedule one of them");
    }
    this.scheds = { ...scheds };
  }

  /** The position of the batch about to run; the LR finder counts against its own length instead. */
  protected position(ctx: TrainContext): number {
    return (ctx.epoch * ctx.nBatches + ctx.batchIndex) / (ctx.nEpochs * ctx.nBatches);
  }

  protected apply(pos: number): void {
    for (const [key, fn] of Object.entries(this.scheds) as Array<[ScheduledParam, ParamSchedule]>) this.learn[key] = fn(pos);
  }

  onTrainBegin(ctx: TrainContext): void {
    this.nEpochs = ctx.nEpochs;
    this.nBatches = Math.max(1, ctx.nBatches);
    this.pos = 0;
    this.hps = Object.fromEntries(Object.keys(this.scheds).map((k) => [k, []]));
    this.hpEpochs = [];
  }

  onBatchBegin(ctx: TrainContext): void {
    if (!ctx.train) return;
    this.pos = this.position(ctx);
    this.apply(this.pos);
  }

  onBatchEnd(ctx: TrainContext): void {
    if (!ctx.train) return;
    for (const key of Object.keys(this.scheds) as ScheduledParam[]) (this.hps[key] ??= []).push(this.learn[key]);
    this.hpEpochs.push(ctx.epoch);
  }

  /**
   * Resuming at `epoch`: the hyper-parameters take their values at the start of that epoch at
   * once (its first batch would set them anyway; this way they are right before it too).
   * What batches of that epoch and later recorded in `hps` is forgotten — mid-epoch, only those
   * after the checkpoint; and from a checkpoint the values are the run's own, left as they are.
   */
  jumpToEpoch(epoch: number, at?: JumpPosition): void {
    // Mid-epoch (a checkpoint taken after batch at.batchIndex − 1) that epoch's first batches stay.
    const inEpoch = at?.batchIndex ?? 0;
    const first = this.hpEpochs.findIndex((e) => e >= epoch);
    if (first >= 0) {
      let kept = first;
      while (kept < this.hpEpochs.length && kept - first < inEpoch && this.hpEpochs[kept] === epoch) kept++;
      this.hpEpochs.length = kept;
      for (const values of Object.values(this.hps)) values.length = Math.min(values.length, kept);
    }
    // From a checkpoint, the hyper-parameters and `pos` are the run's own: nothing to set.
    if (at?.fromCheckpoint) return;
    // The position of the batch about to run, as onBatchBegin will compute it.
    this.pos = (epoch * this.nBatches + inEpoch) / (this.nEpochs * this.nBatches);
    this.apply(Math.min(this.pos, 1));
  }
}
