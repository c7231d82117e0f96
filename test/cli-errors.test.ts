/**
 * The CLI's errors: output paths are checked before any training, a user error is one line
 * (never a stack trace), an unexpected error still ends stdout with the `--json` line, and
 * `--version` prints the package's version.
 */
import { execFile, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const CLI = 'dist/src/cli/main.js';
const dir = mkdtempSync(join(tmpdir(), 'trainchart-cli-errors-'));
chmodSync(dir, 0o755);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[], nodeArgs: string[] = [], options: { uid?: number; gid?: number } = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run('node', [...nodeArgs, CLI, ...args], { maxBuffer: 1 << 24, timeout: 60_000, ...options });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string; killed?: boolean };
    if (err.killed) throw new Error(`trainchart ${args.join(' ')} timed out`);
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
/** A Node stack frame, as a trace prints it. */
const STACK_FRAME = /^\s+at .+[:(]/m;
const QUICK = ['--epochs', '1', '--limit-train', '64', '--limit-valid', '64', '--backend', 'cpu'];

describe('trainchart train checks --out before training', () => {
  const file = join(dir, 'a-file');
  writeFileSync(file, 'not a directory');

  it.each([
    ['a regular file', file, /--out .*a-file: is a file, not a directory; choose another directory with --out DIR/],
    ['a path through a regular file', join(file, 'sub'), /--out .*a-file\/sub: .*a-file is a file, not a directory/],
    ['a path under /proc (refused by name: mkdir there hangs Node 20)', '/proc/trainchart-test/out', /--out \/proc\/trainchart-test\/out: \/proc is a virtual file system/],
    ['a directory that cannot be created (/sys)', '/sys/trainchart-test', /--out \/sys\/trainchart-test: cannot be created \(E[A-Z]+\)/],
  ])('%s: exit 2 at once, one line, no stack trace, and the --json line says failed', async (_what, out, message) => {
    const { code, stdout, stderr } = await cli(['train', ...QUICK, '--out', out, '--json']);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).not.toMatch(STACK_FRAME);
    // Refused before the backend, the data or any training.
    expect(stderr).not.toMatch(/backend|data: MNIST/);
    expect(lastJson(stdout)).toEqual({ status: 'failed', error: expect.stringMatching(message), code: 'CONFIG' });
  });

  it('a symlink into /proc is refused by where it leads, and an empty --out is refused too', async () => {
    const link = join(dir, 'to-proc');
    symlinkSync('/proc/self', link);
    const viaLink = await cli(['train', ...QUICK, '--out', join(link, 'out')]);
    expect(viaLink.code).toBe(2);
    expect(viaLink.stderr).toMatch(/--out .*to-proc\/out: .*to-proc leads to \/proc\/\d+, under \/proc, a virtual file system/);
    const empty = await cli(['train', ...QUICK, '--out=']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/--out needs a directory, got an empty string/);
  });

  it('--save-best without --out checks runs/train (relative to the working directory) the same way', async () => {
    const cwd = join(dir, 'cwd-with-runs-file');
    mkdirSync(cwd, { recursive: true });
    writeFileSync(join(cwd, 'runs'), 'a file where the runs directory would go');
    const err = (await run('node', [join(process.cwd(), CLI), 'train', ...QUICK, '--save-best'], { cwd }).catch((e: unknown) => e)) as Outcome;
    expect(err.code).toBe(2);
    expect(err.stderr).toMatch(/--save-best runs\/train: .*runs is a file, not a directory; give --out DIR for the best weights/);
  });

  // Root may write anywhere, so an unwritable directory is tried as the user nobody.
  // And only where nobody can run the CLI at all: a checkout under a root-only directory (mktemp -d
  // makes them 0700) fails before any --out check, which would test nothing.
  const canDropPrivileges =
    process.getuid?.() === 0 &&
    existsSync('/usr/bin/setpriv') &&
    spawnSync(process.execPath, [CLI, '--version'], { uid: 65534, gid: 65534, stdio: 'ignore' }).status === 0;
  it.skipIf(!canDropPrivileges)('a directory the user may not write to: exit 2 with "is not writable", before training', async () => {
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o555);
    const { code, stderr } = await cli(['train', ...QUICK, '--out', locked], [], { uid: 65534, gid: 65534 });
    expect(code).toBe(2);
    expect(stderr).toMatch(/--out .*locked: is not writable \(EACCES\)/);
    expect(stderr).not.toMatch(STACK_FRAME);
  });

  it('a good --out is created before training and gets result.json and history.json, whole', async () => {
    const out = join(dir, 'new', 'nested', 'run');
    const { code, stdout } = await cli(['train', ...QUICK, '--out', out, '--json']);
    expect(code).toBe(0);
    const summary = lastJson(stdout);
    expect(JSON.parse(readFileSync(join(out, 'result.json'), 'utf8'))).toEqual(summary);
    expect(JSON.parse(readFileSync(join(out, 'history.json'), 'utf8'))).toHaveLength(1);
  }, 60_000);
});

describe('an unexpected error (a plain Error from inside training)', () => {
  it('prints its message (and stack), exits 1, and with --json still ends stdout with { status: failed, error, code: null }', async () => {
    const preload = ['--import', './test/support/failingFit.mjs'];
    const { code, stdout, stderr } = await cli(['train', ...QUICK, '--json'], preload);
    expect(code).toBe(1);
    expect(stderr).toMatch(/trainchart: unexpected error: disk on fire/);
    expect(lastJson(stdout)).toEqual({ status: 'failed', error: expect.stringMatching(/^disk on fire/), code: null });
    const plain = await cli(['train', ...QUICK], preload);
    expect(plain.code).toBe(1);
    expect(plain.stdout).not.toMatch(/"status"/);
  });
});

describe('trainchart lr-find', () => {
  it('--start-lr ≥ --end-lr: exit 2 naming both, before any data is loaded', async () => {
    const { code, stderr } = await cli(['lr-find', '--start-lr', '1', '--end-lr', '0.1', '--backend', 'cpu']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--start-lr \(1\) must be below --end-lr \(0\.1\)/);
    expect(stderr).not.toMatch(/data: MNIST/);
  });

  it('too few batches for a suggestion: exit 1, the reason on stderr, and the JSON carries it in `warning`', async () => {
    const out = join(dir, 'lr-find');
    const { code, stdout, stderr } = await cli(['lr-find', '--num-it', '6', '--limit-train', '640', '--backend', 'cpu', '--out', out, '--json']);
    expect(code).toBe(1);
    expect(stderr).toMatch(/lr-find found no meaningful learning rate: only 6 batches ran; .*raise numIt to at least 16/);
    expect(stderr).not.toMatch(/recommended/);
    expect(lastJson(stdout).warning).toMatch(/only 6 batches ran/);
  }, 60_000);

  it('--out under /proc is refused before anything runs', async () => {
    const { code, stderr } = await cli(['lr-find', '--out', '/proc/trainchart-lr-find']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/\/proc is a virtual file system/);
  });
});

describe('trainchart --version', () => {
  const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
  it.each([['--version'], ['-v']])('%s prints the package version and exits 0', async (flag) => {
    const { code, stdout } = await cli([flag]);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(version);
  });
});
