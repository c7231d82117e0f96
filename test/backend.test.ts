import { createRequire } from 'node:module';
import { describe, expect, it, vi } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/selectBackend.js';
import { stockConv2dGradient } from '../src/backend/conv2dGradient.js';
import { BackendError } from '../src/errors.js';

// These tests describe a machine without a native TensorFlow (as CI's is); where one is
// installed, 'auto' rightly picks it, so the fallback tests below would not apply.
const nativeInstalled = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].some((pkg) => {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
});

// Test order matters: the banner test must be the first use of the cpu backend in this file.
describe.skipIf(nativeInstalled)('selectBackend without a native backend', () => {
  it("does not print tfjs's Node.js banner on the cpu backend", async () => {
    const warn = vi.spyOn(console, 'warn');
    const log = vi.spyOn(console, 'log');
    try {
      await selectBackend('cpu');
      expect(tf.square(tf.tensor([1, 2, 3])).dataSync()).toEqual(new Float32Array([1, 4, 9]));
      const printed = [...warn.mock.calls, ...log.mock.calls].flat().map(String).join('\n');
      expect(printed).not.toContain('Hi, looks like you are running TensorFlow.js in Node.js');
    } finally {
      warn.mockRestore();
      log.mockRestore();
    }
  });

  it("'auto' falls back to wasm when no native backend is installed, with a hint", async () => {
    const lines: string[] = [];
    const info = await selectBackend('auto', (l) => lines.push(l));
    expect(info.name).toBe('wasm');
    expect(info.native).toBe(false);
    expect(info.hint).toContain('npm install @tensorflow/tfjs-node');
    expect(tf.getBackend()).toBe('wasm');
    expect(lines).toEqual(['backend: wasm', `hint: ${info.hint}`]);
    expect(tf.getGradient('Conv2D')).not.toBe(stockConv2dGradient());
  });

  it('is idempotent', async () => {
    const first = await selectBackend('auto');
    const gradient = tf.getGradient('Conv2D');
    const second = await selectBackend('auto');
    expect(second).toEqual(first);
    expect(tf.getGradient('Conv2D')).toBe(gradient);
    expect(stockConv2dGradient()).not.toBe(gradient);
    expect(tf.getBackend()).toBe('wasm');
  });

  it("'tensorflow' rejects with a BackendError saying what to install, leaving the backend alone", async () => {
    await selectBackend('wasm');
    const err = await selectBackend('tensorflow').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackendError);
    expect((err as BackendError).code).toBe('BACKEND');
    expect((err as BackendError).message).toMatch(/@tensorflow\/tfjs-node-gpu.*@tensorflow\/tfjs-node/s);
    expect((err as BackendError).message).toContain('--backend wasm');
    expect(tf.getBackend()).toBe('wasm');
  });

  it("'cpu' gives cpu", async () => {
    const lines: string[] = [];
    const info = await selectBackend('cpu', (l) => lines.push(l));
    expect(info).toMatchObject({ name: 'cpu', native: false });
    expect(info.hint).not.toBeNull();
    expect(tf.getBackend()).toBe('cpu');
    expect(lines[0]).toBe('backend: cpu');
  });

  it('rejects an unknown choice', async () => {
    await expect(selectBackend('gpu' as never)).rejects.toThrow(BackendError);
    expect(tf.getBackend()).toBe('cpu');
  });
});
