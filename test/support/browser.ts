/**
 * Headless Chromium for the page tests: Debian's `chromium` through playwright-core (never a
 * downloaded browser). Outside CI a missing browser skips the test with a message; in CI
 * (`.ci/run` installs it) it is a failure.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';
export const ARTIFACTS = join(process.cwd(), 'test-artifacts');

export function chromiumMissing(): string | null {
  if (existsSync(CHROMIUM)) return null;
  const why = `${CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium) to run the browser tests`;
  if (process.env.CI) throw new Error(why);
  console.warn(`skipping: ${why}`);
  return why;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] });
}

export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return join(ARTIFACTS, name);
}
