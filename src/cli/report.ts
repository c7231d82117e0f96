/**
 * How the CLI reports a command that threw. A user error (any TrainchartError: a bad option,
 * bad data, an output directory that cannot be written, a failed stage) is one line saying
 * what was wrong and what to do, never a stack trace. Anything else is a defect or an
 * environment failure: its message and, for a bug report, its stack. With `--json` the last
 * line of stdout is still one JSON object, `{ status: 'failed', error, code }`, so a script
 * reading it learns that the run failed and why instead of finding no JSON at all.
 */
import { TrainchartError } from '../errors.js';

export interface ReportStreams {
  stdout: { write(s: string): unknown };
  stderr: { write(s: string): unknown };
}

/** The JSON line printed for a failed command with `--json`. */
export interface FailedSummary {
  status: 'failed';
  /** The error's message, as printed on stderr. */
  error: string;
  /** The TrainchartError's code ('CONFIG', 'DATA', 'STAGE', …), or null for an unexpected error. */
  code: string | null;
}

/** Bad input (exit 2) or a failure while running (exit 1). */
export function exitCodeOf(error: unknown): number {
  return error instanceof TrainchartError && (error.code === 'CONFIG' || error.code === 'DATA') ? 2 : 1;
}

/** Writes the report of `error` and returns the process's exit code. */
export function reportFailure(error: unknown, json: boolean, streams: ReportStreams = process): number {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof TrainchartError) {
    streams.stderr.write(`trainchart: ${message}\n`);
  } else {
    const stack = error instanceof Error && error.stack ? `\n${error.stack}` : '';
    streams.stderr.write(`trainchart: unexpected error: ${message}${stack}\n`);
  }
  if (json) {
    const summary: FailedSummary = { status: 'failed', error: message, code: error instanceof TrainchartError ? error.code : null };
    streams.stdout.write(JSON.stringify(summary) + '\n');
  }
  return exitCodeOf(error);
}

/** Does this command line ask for JSON output? Read from the raw arguments: the parse itself may be what failed. */
export function wantsJson(argv: readonly string[]): boolean {
  return argv.includes('--json');
}
