/**
 * Connections to the sweep's Redis, failing fast where a person is waiting.
 *
 * ioredis retries a lost connection forever by default, and queues commands until it is back:
 * right for a worker (Redis restarts, the worker carries on), wrong for `trainchart sweep …`,
 * which would hang with no word when the URL is wrong. So every command first connects with a
 * client that gives up after `connectTimeoutMs` and one try, and says which address it could
 * not reach; only then does it go on (a worker with BullMQ's own retrying connections).
 */
import { Redis, type RedisOptions } from 'ioredis';
import { ConfigError, QueueError } from '../errors.js';

/** `redis://[user:pass@]host:port[/db]`, ioredis options, or a connected ioredis client (yours: never closed here). */
export type SweepConnection = string | RedisOptions | Redis;

export const DEFAULT_CONNECT_TIMEOUT_MS = 3000;

export function isRedisClient(c: SweepConnection): c is Redis {
  return c instanceof Redis;
}

/** The address for messages, without a password. */
export function describeConnection(c: SweepConnection): string {
  if (typeof c === 'string') {
    try {
      const url = new URL(c);
      if (url.password) url.password = '***';
      return url.toString();
    } catch {
      return c;
    }
  }
  const o = isRedisClient(c) ? c.options : c;
  return o.path ? `unix:${o.path}` : `redis://${o.host ?? '127.0.0.1'}:${o.port ?? 6379}`;
}

/** ioredis options for a URL or options object, with `extra` on top. */
export function redisOptions(c: string | RedisOptions, extra: RedisOptions = {}): RedisOptions {
  if (typeof c !== 'string') return { ...c, ...extra };
  let url: URL;
  try {
    url = new URL(c);
  } catch {
    throw new ConfigError(`--redis must be a URL such as redis://127.0.0.1:6379, got "${c}"`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new ConfigError(`--redis must be a redis:// (or rediss://) URL, got "${c}"`);
  }
  const db = url.pathname.replace(/^\//, '');
  return {
    host: url.hostname || '127.0.0.1',
    port: url.port ? Number(url.port) : 6379,
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
    ...(db ? { db: Number(db) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
    ...extra,
  };
}

function unreachable(c: SweepConnection, cause: unknown): QueueError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new QueueError(
    `cannot reach Redis at ${describeConnection(c)} (${why}): start redis-server there, or pass --redis redis://HOST:PORT; nothing was enqueued or changed`,
    { cause },
  );
}

/**
 * A client that has answered PING, or a QueueError within about `timeoutMs`. It tries once:
 * no reconnection, and a command on a lost connection fails instead of waiting. A client
 * given in `c` is pinged and returned as it is (`owned: false`: the caller keeps it).
 */
export async function connectChecked(
  c: SweepConnection,
  timeoutMs = DEFAULT_CONNECT_TIMEOUT_MS,
): Promise<{ client: Redis; owned: boolean; close: () => Promise<void> }> {
  if (isRedisClient(c)) {
    try {
      await withTimeout(c.ping(), timeoutMs);
    } catch (e) {
      throw unreachable(c, e);
    }
    return { client: c, owned: false, close: async () => {} };
  }
  const client = new Redis(
    redisOptions(c, {
      lazyConnect: true,
      connectTimeout: timeoutMs,
      retryStrategy: () => null, // one try: a person is waiting
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      // Its timer outlives a socket that has already closed (a refused connection), and would
      // keep the process alive for the default 2 s after the error was reported.
      disconnectTimeout: 100,
    }),
  );
  // The socket's own error (ECONNREFUSED, ENOTFOUND, …) says more than connect()'s rejection
  // ("Connection is closed"); without a listener ioredis would also print it.
  let socketError: Error | null = null;
  client.on('error', (e: Error) => {
    socketError ??= e;
  });
  try {
    await withTimeout(client.connect(), timeoutMs);
    await withTimeout(client.ping(), timeoutMs);
  } catch (e) {
    if (client.status !== 'end') client.disconnect();
    throw unreachable(c, socketError ?? e);
  }
  return { client, owned: true, close: () => quit(client) };
}

/** QUIT, and a hard disconnect if Redis does not answer (it may be gone). */
export async function quit(client: Redis): Promise<void> {
  try {
    await withTimeout(client.quit(), 1000);
  } catch {
    client.disconnect();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
