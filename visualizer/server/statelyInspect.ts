/**
 * `--inspect-ws URL`: the loop's inspection events for Stately's tools, in the format of
 * `@statelyai/inspect` (the maintained successor of `@xstate/inspect`): its `createInspector`
 * converts XState's inspection events to Stately's, and an adapter sends them as JSON text over
 * a WebSocket — what its `createWebSocketInspector` does, except that this adapter never
 * reconnects on its own (that one retries every 5 s forever, which would keep a finished
 * training process alive when nothing listens) and says once when it cannot connect.
 *
 * The loop emits about 29 inspection events per batch, and the inspector serializes each on its
 * own timer. So by default only what draws the chart goes: the actor (with the machine's
 * definition) once, and its snapshot (with the event that led there) at most once per
 * `everyMs`, plus the last one. `all: true` sends every event, for short runs.
 */
import { createInspector } from '@statelyai/inspect';
import WebSocket from 'ws';
import type { InspectionEvent } from 'xstate';
import { ConfigError } from '../../src/errors.js';

export interface StatelyInspectOptions {
  /** Minimum time between two snapshots sent (ms, default 100). */
  everyMs?: number;
  /** Send every inspection event, unthrottled. */
  all?: boolean;
  /** Where a failure to connect is reported (default: a line on stderr). */
  warn?: (line: string) => void;
}

export interface StatelyInspect {
  /** Pass to fit: `fit(n, { inspect: stately.inspect })`. */
  inspect: (event: InspectionEvent) => void;
  /** Sends what is queued, then closes the socket. */
  close(): Promise<void>;
}

/** Events held until the socket opens; beyond this the oldest go (as the Stately adapter does, with 200). */
const MAX_QUEUED = 1000;

class OneShotSocketAdapter {
  private ws: WebSocket | null = null;
  private queue: string[] = [];
  private failed = false;

  constructor(
    private readonly url: string,
    private readonly warn: (line: string) => void,
  ) {}

  start(): void {
    if (this.ws || this.failed) return;
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.on('open', () => {
      for (const text of this.queue) ws.send(text);
      this.queue = [];
    });
    ws.on('error', (e) => {
      if (!this.failed) this.warn(`inspect-ws: cannot send to ${this.url} (${e.message}); the run goes on without it`);
      this.failed = true;
      this.queue = [];
    });
  }

  stop(): void {
    this.ws?.close();
  }

  send(event: unknown): void {
    if (this.failed) return;
    // toJSON (a machine snapshot has one) and cycles are handled by JSON.stringify's replacer below.
    const seen = new WeakSet<object>();
    const text = JSON.stringify(event, (_k, v: unknown) => {
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return undefined;
        seen.add(v);
      }
      return typeof v === 'function' ? { type: v.name } : v;
    });
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(text);
    else {
      this.queue.push(text);
      if (this.queue.length > MAX_QUEUED) this.queue.shift();
    }
  }

  /** Resolves once the queue is sent and the socket's buffer is empty (or after `ms`). */
  async drain(ms: number): Promise<void> {
    const deadline = performance.now() + ms;
    const pause = () => new Promise((resolve) => setTimeout(resolve, 10));
    while (!this.failed && this.ws && this.ws.readyState === WebSocket.CONNECTING && performance.now() < deadline) await pause();
    while (!this.failed && this.ws && this.ws.bufferedAmount > 0 && performance.now() < deadline) await pause();
  }
}

export function createStatelyInspect(url: string, options: StatelyInspectOptions = {}): StatelyInspect {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`--inspect-ws: "${url}" is not a URL; give the inspector's WebSocket address, e.g. ws://localhost:8080`);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') throw new ConfigError(`--inspect-ws: "${url}" must be a ws:// or wss:// URL`);
  const everyMs = options.everyMs ?? 100;
  const adapter = new OneShotSocketAdapter(url, options.warn ?? ((line) => process.stderr.write(line + '\n')));
  // Connects on the first event, so a run that never starts leaves no socket open.
  const inspector = createInspector(adapter, { autoStart: false });
  let started = false;
  let last = -Infinity;
  let held: InspectionEvent | null = null;
  const forward = (e: InspectionEvent) => {
    if (!started) {
      started = true;
      inspector.start();
    }
    inspector.inspect.next?.(e);
  };
  const inspect = (event: InspectionEvent) => {
    if (options.all || event.type === '@xstate.actor') return forward(event);
    if (event.type !== '@xstate.snapshot') return;
    const now = performance.now();
    // The final snapshot always goes: the inspector should end where the run ended.
    if (now - last >= everyMs || event.snapshot.status !== 'active') {
      last = now;
      held = null;
      forward(event);
    } else {
      held = event;
    }
  };
  return {
    inspect,
    async close() {
      if (held) forward(held);
      held = null;
      if (!started) return;
      // The inspector converts each event on a timer (setTimeout 0) before it reaches the adapter.
      await new Promise((resolve) => setTimeout(resolve, 10));
      await adapter.drain(2000);
      inspector.stop();
    },
  };
}
