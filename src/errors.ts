/**
 * Typed errors. Every error the engine raises on bad input says what was wrong and
 * what to do; `code` lets programs branch on the kind without parsing messages.
 */
export type TrainchartErrorCode =
  | 'CONFIG' // a bad argument or option (epochs ≤ 0, lr ≤ 0, unknown loss, …)
  | 'DATA' // empty data, shapes that do not match the model, labels that do not match the output
  | 'CONTROL' // a hook returned an unknown control, or one that has no meaning at that stage
  | 'STAGE' // an exception thrown while the loop was in a stage (hook, model, loss, data, optimizer)
  | 'BACKEND' // a requested backend could not be loaded
  | 'CHECKPOINT' // a checkpoint could not be read or written
  | 'QUEUE'; // the job queue (Redis) could not be reached, or refused an operation

export class TrainchartError extends Error {
  readonly code: TrainchartErrorCode;
  constructor(code: TrainchartErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A bad argument or option. */
export class ConfigError extends TrainchartError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('CONFIG', message, options);
  }
}

/** Data that cannot be trained on as given. */
export class DataError extends TrainchartError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DATA', message, options);
  }
}

/** A hook returned a control the contract does not allow there. */
export class ControlError extends TrainchartError {
  constructor(
    message: string,
    readonly callback: string,
    readonly stage: string,
    readonly key: string,
  ) {
    super('CONTROL', message);
  }
}

export class BackendError extends TrainchartError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('BACKEND', message, options);
  }
}

/**
 * What was wrong with a checkpoint: `missing` (directory or file), `truncated`, `corrupt`
 * (checksum, unreadable JSON), `version` (a newer format), `format` (not a trainchart
 * checkpoint), `mismatch` (another architecture, optimizer, callbacks, data, seed, …).
 */
export type CheckpointProblem = 'missing' | 'truncated' | 'corrupt' | 'version' | 'format' | 'mismatch';

/** A checkpoint that cannot be read, verified or resumed from; `file` names it, `problem` says how. */
export class CheckpointError extends TrainchartError {
  readonly file: string | null;
  readonly problem: CheckpointProblem | null;
  constructor(message: string, options?: { cause?: unknown; file?: string; problem?: CheckpointProblem }) {
    super('CHECKPOINT', message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.file = options?.file ?? null;
    this.problem = options?.problem ?? null;
  }
}

/** The sweep queue's Redis could not be reached (or answered with an error). */
export class QueueError extends TrainchartError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('QUEUE', message, options);
  }
}

/**
 * What `fit` rejects with when anything throws inside the loop: names the stage and, when
 * the exception came from a callback, the callback and what of it threw (`phase`: `hook`,
 * `guard <control>`, `jumpToEpoch`, `setState`). The original error is `cause`.
 */
export class StageError extends TrainchartError {
  constructor(
    readonly stage: string,
    readonly callback: string | null,
    readonly phase: string,
    cause: unknown,
  ) {
    const origin =
      callback === null
        ? `stage ${stage} (${phase})`
        : phase === 'hook'
          ? `callback ${callback}, hook of stage ${stage}`
          : phase.startsWith('guard ')
            ? `callback ${callback}, ${phase} (read at stage ${stage})`
            : `callback ${callback}, ${phase} at stage ${stage}`;
    const why = cause instanceof Error ? cause.message : String(cause);
    super('STAGE', `Training failed in ${origin}: ${why}`, { cause });
  }
}
