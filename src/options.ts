import { ConfigError } from './errors.js';

/** Unknown option keys are typos until proven otherwise: say so instead of ignoring them. */
export function checkKeys(where: string, options: object, known: readonly string[]): void {
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new ConfigError(`${where}: unknown option "${key}"; known options: ${known.join(', ')}`);
    }
  }
}
