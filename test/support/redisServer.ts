/**
 * A real redis-server for a test file: on a free loopback port, no persistence, killed after.
 *
 * Without `redis-server` on the PATH the sweep tests are skipped with a message saying how to
 * get it — except in CI (`process.env.CI`), where `.ci/run` installs the Debian package and a
 * missing server is a failure, not a skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { Redis } from 'ioredis';

export const HAVE_REDIS = spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

export const REDIS_MISSING =
  'redis-server is not installed: the sweep tests need a real Redis (Debian: apt-get install redis-server). ' +
  (process.env.CI ? 'In CI this is a failure (.ci/run installs it).' : 'Skipped outside CI.');

/** Run the sweep tests, skip them (outside CI), or fail (in CI) when redis-server is missing. */
export function redisOrSkip(): 'run' | 'skip' | 'fail' {
  if (HAVE_REDIS) return 'run';
  if (process.env.CI) return 'fail';
  console.warn(REDIS_MISSING);
  return 'skip';
}

/** A port nothing listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface RedisServer {
  port: number;
  url: string;
  /** A client for the test's own checks (closed by stop()). */
  client: Redis;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const proc: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  proc.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  proc.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = new Redis({ host: '127.0.0.1', port, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch {
      probe.disconnect();
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start:\n${log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    client,
    stop: async () => {
      client.disconnect();
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGKILL');
        await exited;
      }
    },
  };
}
