/**
 * `--inspect-ws URL`: the loop's inspection events for Stately's tools, through
 * `@statelyai/inspect`'s WebSocket inspector (the maintained successor of `@xstate/inspect`).
 *
 * The loop emits about 29 inspection events per batch, and that inspector serializes and sends
 * each one on its own timer. So by default only what draws the chart goes: the actor (with the
 * machine's definition) once, and its snapshot (with the event that led there) at most once per
 * `everyMs`, plus the last one. `all: true` sends every event, for short runs.
 */
import { createWebSocketInspector } from '@statelyai/inspect';
import type { InspectionEvent } from 'xstate';
import { ConfigError } from '../../src/errors.js';

export interface StatelyInspectOptions {
  /** Minimum time between two snapshots sent (ms, default 100). */
  everyMs?: number;
  /** Send every inspection event, unthrottled. */
  all?: boolean;
}

export interface StatelyInspect {
  /** Pass to fit: `fit(n, { inspect: stately.inspect })`. */
  inspect: (event: InspectionEvent) => void;
  /** Sends what is queued, then closes the socket. */
  close(): Promise<void>;
}

export function createStatelyInspect(url: string, options: StatelyInspectOptions = {}): StatelyInspect {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`--inspect-ws: "${url}" is not a URL; give the inspector's WebSocket address, e.g. ws://localhost:8080`);
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new ConfigError(`--inspect-ws: "${url}" must be a ws:// or wss:// URL`);
  }
  const everyMs = options.everyMs ?? 100;
  const inspector = createWebSocketInspector({ url });
  let last = -Infinity;
  let held: InspectionEvent | null = null;
  const forward = (e: InspectionEvent) => inspector.inspect.next?.(e);
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
      // The inspector converts each event on a timer (setTimeout 0), then sends it or queues it until the socket opens.
      await new Promise((resolve) => setTimeout(resolve, 20));
      const adapter = inspector.adapter as unknown as { ws?: { readyState: number; bufferedAmount: number; OPEN: number }; status?: string };
      const deadline = performance.now() + 2000;
      while (adapter.status !== 'open' && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      while ((adapter.ws?.bufferedAmount ?? 0) > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      inspector.stop();
    },
  };
}
