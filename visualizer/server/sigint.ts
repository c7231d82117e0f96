/**
 * Ctrl-C for a paused run. While paused, the training thread is blocked in `Atomics.wait`, so a
 * `process.on('SIGINT')` listener there cannot run — and Node delivers no signal events to
 * worker threads. libuv itself can watch a signal from any thread's loop, though: the worker
 * opens a signal handle through Node's `signal_wrap` binding (what `process.on('SIGINT')` uses
 * internally). Then Ctrl-C reaches the worker, which sets the stop flag and wakes the paused run.
 *
 * `process.binding` is deprecated (DEP0111); the warning it prints is suppressed for this one
 * call. If a future Node removes the binding, this returns null and the caller falls back to a
 * listener on the training thread (Ctrl-C then stops a running run, not a paused one).
 */
interface SignalHandle {
  onsignal: (signum: number) => void;
  start(signum: number): number;
  close(): void;
  unref(): void;
}

const SIGINT = 2;

export function catchSigint(onSignal: () => void): (() => void) | null {
  const proc = process as unknown as { binding?: (name: string) => unknown; noDeprecation?: boolean };
  const quiet = proc.noDeprecation;
  try {
    proc.noDeprecation = true;
    const binding = proc.binding?.('signal_wrap') as { Signal?: new () => SignalHandle } | undefined;
    if (!binding?.Signal) return null;
    const handle = new binding.Signal();
    handle.onsignal = () => onSignal();
    if (handle.start(SIGINT) !== 0) {
      handle.close();
      return null;
    }
    // The worker's server keeps it alive; the signal handle alone must not.
    handle.unref();
    return () => handle.close();
  } catch {
    return null;
  } finally {
    proc.noDeprecation = quiet;
  }
}
