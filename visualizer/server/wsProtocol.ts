/**
 * Reads what a client sends: JSON text, one message per frame, checked against the protocol
 * (visualizer/server/protocol.ts). Anything else — not JSON, an unknown type, a missing or
 * unexpected field — is answered with `{ type: 'error', message }` and changes nothing.
 * Messages are data: nothing received is ever evaluated.
 */
import { checkBreakpoint, type StatePaths } from './breakpoints.js';
import type { ClientMessage } from './protocol.js';
import { STAGES, type Stage } from '../../machines/stages.js';

/** Larger frames are refused by the WebSocket server itself; no client message needs more. */
export const MAX_MESSAGE_BYTES = 16 * 1024;

const ALLOWED_KEYS: Record<ClientMessage['type'], readonly string[]> = {
  pause: ['type'],
  resume: ['type'],
  step: ['type'],
  stop: ['type'],
  break: ['type', 'stage', 'path', 'when'],
  clear: ['type', 'stage', 'path'],
};

export type Parsed = { ok: true; message: ClientMessage } | { ok: false; error: string };

const fail = (error: string): Parsed => ({ ok: false, error });

export function parseClientMessage(text: string, paths: StatePaths): Parsed {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return fail('not JSON: send one JSON object per message, e.g. {"type":"pause"}');
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return fail('a message must be a JSON object with a "type"');
  const o = raw as Record<string, unknown>;
  const type = o.type;
  if (typeof type !== 'string' || !Object.hasOwn(ALLOWED_KEYS, type)) {
    return fail(`unknown message type ${JSON.stringify(type)}; known: ${Object.keys(ALLOWED_KEYS).join(', ')}`);
  }
  const allowed = ALLOWED_KEYS[type as ClientMessage['type']];
  for (const key of Object.keys(o)) {
    if (!allowed.includes(key)) return fail(`${type}: unexpected field "${key}" (fields: ${allowed.join(', ')})`);
  }
  switch (type) {
    case 'break': {
      const bp = checkBreakpoint(o, paths);
      return typeof bp === 'string' ? fail(`break: ${bp}`) : { ok: true, message: { type: 'break', ...bp } };
    }
    case 'clear': {
      if (o.stage === undefined) {
        if (o.path !== undefined) return fail('clear: a path needs its stage');
        return { ok: true, message: { type: 'clear' } };
      }
      if (typeof o.stage !== 'string' || !(STAGES as readonly string[]).includes(o.stage)) {
        return fail(`clear: stage must be one of ${STAGES.join(', ')}; got ${JSON.stringify(o.stage)}`);
      }
      if (o.path !== undefined && (typeof o.path !== 'string' || paths.get(o.path) !== o.stage)) {
        return fail(`clear: path must be a state of stage ${o.stage}; got ${JSON.stringify(o.path)}`);
      }
      return { ok: true, message: { type: 'clear', stage: o.stage as Stage, ...(o.path !== undefined ? { path: o.path as string } : {}) } };
    }
    default:
      return { ok: true, message: { type } as ClientMessage };
  }
}
