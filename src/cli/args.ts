import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../errors.js';

export type OptionSpec = NonNullable<ParseArgsConfig['options']>;

/** parseArgs, but every mistake becomes a ConfigError that says what to type instead. */
export function parseCommandArgs(command: string, argv: string[], options: OptionSpec) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    const why = (e instanceof Error ? e.message : String(e)).replace(/\.+$/, '');
    throw new ConfigError(`${command}: ${why}. Run \`trainchart ${command} --help\` for the options.`);
  }
}

export function intOption(name: string, raw: unknown, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    throw new ConfigError(`--${name} must be an integer ≥ ${min}, got "${String(raw)}"`);
  }
  return n;
}

export function positiveNumberOption(name: string, raw: unknown, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new ConfigError(`--${name} must be a positive number, got "${String(raw)}"`);
  return n;
}

export function choiceOption<T extends string>(name: string, raw: unknown, choices: readonly T[], fallback: T): T {
  if (raw === undefined) return fallback;
  if (!choices.includes(raw as T)) {
    throw new ConfigError(`--${name} must be one of ${choices.join(', ')}, got "${String(raw)}"`);
  }
  return raw as T;
}

/**
 * `--flag [VALUE]`: node's parseArgs has no options with an optional value, so a bare `flag`
 * (last, or followed by another option) is rewritten to `flag=` (an empty value, which the
 * command reads as "the default"). `flag VALUE` and `flag=VALUE` pass through unchanged.
 */
export function withOptionalValue(argv: readonly string[], flag: string): string[] {
  return argv.map((arg, i) => {
    const next = argv[i + 1];
    return arg === flag && (next === undefined || next.startsWith('-')) ? `${flag}=` : arg;
  });
}
