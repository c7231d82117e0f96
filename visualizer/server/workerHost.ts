/**
 * The training thread's side of the server's worker: starts it, posts to it, reads the control
 * port synchronously, closes it. Knows nothing of runs or breakpoints (visualizer.ts does).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { ConfigError } from '../../src/errors.js';
import { listenError } from './errors.js';
import { DETACHED, SEQ, newFlags, type ControlCommand, type FromWorker, type ToWorker, type WorkerInit } from './sharedFlags.js';

/**
 * The worker's script and the page's directory, next to this module once built
 * (dist/visualizer/server/ and dist/visualizer/page/). Run from the TypeScript sources (tests),
 * the worker — which must be JavaScript — and the page are taken from dist/.
 */
function builtFile(relative: string): URL {
  const here = new URL(relative, import.meta.url);
  if (!import.meta.url.endsWith('.ts')) return here;
  return new URL(`../../dist/visualizer/server/${relative}`, import.meta.url);
}

export const WORKER_URL = builtFile('./worker.js');
export const PAGE_DIR = fileURLToPath(builtFile('../page/'));

export interface HostOptions extends Omit<WorkerInit, 'flags' | 'control' | 'pageDir'> {
  pageDir?: string;
}

export class WorkerHost {
  readonly flags = newFlags();
  private worker: Worker | null = null;
  private control: MessagePort | null = null;
  private seen = 0;
  private exited: Promise<void> | null = null;
  onSigint: (duringRun: boolean) => void = () => {};

  /** Starts the worker and resolves once it listens: `{ host, port, sigint }` (the real port when 0 was asked). */
  async start(o: HostOptions): Promise<{ host: string; port: number; sigint: boolean }> {
    if (!existsSync(fileURLToPath(WORKER_URL))) {
      throw new ConfigError(`visualizer: the server is not built (${fileURLToPath(WORKER_URL)} is missing); run npm run build`);
    }
    const { port1, port2 } = new MessageChannel();
    const init: WorkerInit = { ...o, pageDir: o.pageDir ?? PAGE_DIR, flags: this.flags, control: port1 };
    const worker = new Worker(WORKER_URL, { workerData: init, transferList: [port1] });
    this.worker = worker;
    this.control = port2;
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    return new Promise((resolve, reject) => {
      const onMessage = (m: FromWorker) => {
        if (m.kind === 'listening') {
          // A training process may end while the server is up: once listening, the worker alone does not keep it alive.
          worker.unref();
          resolve(m);
        }
        else if (m.kind === 'listenError') reject(listenError(o.host, o.port, m.code, m.message));
        else if (m.kind === 'sigint') this.onSigint(m.duringRun);
      };
      worker.on('message', onMessage);
      // After the start, an error ends the worker (DETACHED is set): a paused run goes on, the page is gone.
      worker.on('error', (e) => reject(new ConfigError(`visualizer: the server failed: ${e.message}`, { cause: e })));
      worker.once('exit', (code) => reject(new ConfigError(`visualizer: the server stopped before listening (exit code ${code})`)));
    });
  }

  post(m: ToWorker): void {
    if (this.worker && !this.detached) this.worker.postMessage(m);
  }

  get detached(): boolean {
    return Atomics.load(this.flags, DETACHED) === 1;
  }

  /** Has the worker posted control commands not read yet? One atomic read: the per-stage cost. */
  get hasCommands(): boolean {
    return Atomics.load(this.flags, SEQ) !== this.seen;
  }

  /** Every control command posted so far, read synchronously (works while the event loop is blocked). */
  takeCommands(): ControlCommand[] {
    this.seen = Atomics.load(this.flags, SEQ);
    const out: ControlCommand[] = [];
    if (!this.control) return out;
    for (let m = receiveMessageOnPort(this.control); m; m = receiveMessageOnPort(this.control)) out.push(m.message as ControlCommand);
    return out;
  }

  /** Blocks the calling thread until a command is posted (or the worker is gone), at most `ms`. */
  waitForCommand(ms: number): void {
    if (this.detached) return;
    Atomics.wait(this.flags, SEQ, this.seen, ms);
  }

  /** Keep the process alive while serving (a finished run shown until Ctrl-C). */
  ref(): void {
    this.worker?.ref();
  }

  async close(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.post({ kind: 'close' });
    // Wait for the worker to end (its clients closed), at most 2 s: both keep the process alive meanwhile.
    worker.ref();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), 2000)));
    if ((await Promise.race([this.exited, timeout])) === 'timeout') await worker.terminate();
    clearTimeout(timer);
    Atomics.store(this.flags, DETACHED, 1);
    this.control?.close();
    this.worker = null;
    this.control = null;
  }
}
