/**
 * A short-lived handle on the sweep queue for one command (enqueue, status, results, cancel):
 * a fail-fast connection (see connection.ts), the BullMQ queue on it, the sweep's record, and
 * `close()`, which every command calls on every path so that the process can exit.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { ConfigError } from '../errors.js';
import { connectChecked, type SweepConnection } from './connection.js';
import { QUEUE_NAME, sweepKey, type SweepRecord } from './names.js';
import { checkSweepName } from './spec.js';

export interface SweepSession {
  client: Redis;
  queue: Queue;
  close(): Promise<void>;
}

export async function openSession(connection: SweepConnection): Promise<SweepSession> {
  const { client, close: closeClient } = await connectChecked(connection);
  // The queue shares our client (BullMQ does not close a shared one): one connection, one quit.
  const queue = new Queue(QUEUE_NAME, { connection: client });
  queue.on('error', () => {}); // surfaced by the awaited calls themselves
  return {
    client,
    queue,
    close: async () => {
      try {
        await queue.close();
      } finally {
        await closeClient();
      }
    },
  };
}

/** Runs `fn` with a session and closes it whatever happens. */
export async function withSession<T>(connection: SweepConnection, fn: (s: SweepSession) => Promise<T>): Promise<T> {
  const session = await openSession(connection);
  try {
    return await fn(session);
  } finally {
    await session.close();
  }
}

export async function readSweep(client: Redis, name: string): Promise<SweepRecord | null> {
  const raw = await client.get(sweepKey(name));
  return raw === null ? null : (JSON.parse(raw) as SweepRecord);
}

/** The names of the sweeps in this Redis (for "no sweep named …" messages). */
export async function sweepNames(client: Redis): Promise<string[]> {
  const names: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await client.scan(cursor, 'MATCH', sweepKey('*'), 'COUNT', 200);
    cursor = next;
    for (const k of keys) names.push(k.slice(sweepKey('').length));
  } while (cursor !== '0');
  return names.sort();
}

/** The sweep's record, or a ConfigError that lists the sweeps there are. */
export async function requireSweep(client: Redis, name: string): Promise<SweepRecord> {
  checkSweepName(name, 'the sweep name');
  const record = await readSweep(client, name);
  if (record) return record;
  const names = await sweepNames(client);
  throw new ConfigError(
    `no sweep named "${name}" in this Redis; ${names.length ? `there are: ${names.join(', ')}` : 'there is none: enqueue one with `trainchart sweep SPEC.json --redis URL`'}`,
  );
}
