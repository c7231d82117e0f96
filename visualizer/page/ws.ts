/**
 * The WebSocket to the server that served the page (same origin, `/ws`). Reconnects with a
 * growing delay until the run is over and the server has gone; a reconnect gets a fresh
 * `hello` (with the history so far), so nothing is kept across connections here.
 */
import type { ClientMessage, ServerMessage } from './protocol.js';

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface Connection {
  send(message: ClientMessage): boolean;
  /** No more reconnects (the run is done and the server may go away). */
  finish(): void;
}

export function connect(
  onMessage: (message: ServerMessage) => void,
  onState: (state: ConnectionState) => void,
): Connection {
  let socket: WebSocket | null = null;
  let delay = 250;
  let finished = false;
  const open = () => {
    onState('connecting');
    const ws = new WebSocket(`ws://${location.host}/ws`);
    socket = ws;
    ws.onopen = () => {
      delay = 250;
      onState('open');
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== 'string') return;
      let message: unknown;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message && typeof message === 'object' && typeof (message as { type?: unknown }).type === 'string') {
        onMessage(message as ServerMessage);
      }
    };
    ws.onclose = () => {
      socket = null;
      onState('closed');
      if (finished) return;
      setTimeout(open, delay);
      delay = Math.min(delay * 2, 4000);
    };
  };
  open();
  return {
    send(message) {
      if (!socket || socket.readyState !== WebSocket.OPEN) return false;
      socket.send(JSON.stringify(message));
      return true;
    },
    finish() {
      finished = true;
    },
  };
}
