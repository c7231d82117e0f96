import type { Callback } from './loop/callback.js';

/**
 * The key each callback's state goes under in `learn.callbackStates()` and in a checkpoint:
 * its name, or `Name#2`, `Name#3` … for further callbacks of the same name, in the order given.
 */
export function callbackStateKeys(callbacks: readonly Callback[]): Map<Callback, string> {
  const seen = new Map<string, number>();
  const keys = new Map<Callback, string>();
  for (const cb of callbacks) {
    const n = (seen.get(cb.name) ?? 0) + 1;
    seen.set(cb.name, n);
    keys.set(cb, n === 1 ? cb.name : `${cb.name}#${n}`);
  }
  return keys;
}
