/**
 * The update rules, for one parameter at a time (fastai's conventions, which are PyTorch's
 * documented torch.optim rules with hyper-parameters that may change between steps):
 *
 *   sgd:   if wd > 0: g ← g + wd·p                    (L2 penalty folded into the gradient)
 *          buf ← momentum·buf + g                      (buf starts at 0, so buf₁ = g, as PyTorch's clone)
 *          p   ← p − lr·buf                            (no buffer yet and momentum 0: p ← p − lr·g)
 *
 *   adam:  t ← t + 1                                   (the parameter's own count: steps it got a gradient)
 *          if wd > 0: g ← g + wd·p                    (L2)
 *          m ← β1·m + (1−β1)·g                         (β1 = hp.momentum, read every step)
 *          v ← β2·v + (1−β2)·g²
 *          p ← p − lr · (m / (1−β1ᵗ)) / (sqrt(v / (1−β2ᵗ)) + eps)
 *          The debias term uses the *current* β1, as fastai does (PyTorch's β1 is constant).
 *          ε is added outside the square root, as in PyTorch and fastai.
 *
 *   adamw: as adam, but the weight decay is decoupled: p ← p·(1 − lr·wd) before the Adam
 *          update, and g is left alone.
 *
 * `t` is per parameter (PyTorch's and fastai's `state['step']`): a parameter whose first
 * gradient comes late (a layer unfrozen after some steps) takes a first step of ≈ lr, not one
 * shrunk by the debiasing of a count it never took part in.
 *
 * The hyper-parameters come in as scalars the caller made (and may keep between steps); each
 * function runs in its own tidy, so only the assigned variables outlive it.
 */
import * as tf from '@tensorflow/tfjs';
import { ADAM_UPDATE } from '../backend/cpuAdamUpdate.js';

export interface SgdScalars {
  lr: tf.Scalar;
  momentum: tf.Scalar;
  /** null when wd is 0. */
  wd: tf.Scalar | null;
}

/** One sgd update of `p`; `buf` is its momentum buffer, or null when none is kept. */
export function sgdUpdate(p: tf.Variable, g: tf.Tensor, buf: tf.Variable | null, s: SgdScalars): void {
  tf.tidy(() => {
    let d: tf.Tensor = s.wd ? tf.add(g, tf.mul(p, s.wd)) : g;
    if (buf) {
      d = tf.add(tf.mul(buf, s.momentum), d);
      buf.assign(d);
    }
    p.assign(tf.sub(p, tf.mul(d, s.lr)));
  });
}

export interface AdamScalars {
  beta1: tf.Scalar;
  oneMinusBeta1: tf.Scalar;
  beta2: tf.Scalar;
  oneMinusBeta2: tf.Scalar;
  /** adam's L2 factor wd; null for adamw or wd 0. */
  l2: tf.Scalar | null;
  /** adamw's decay factor 1 − lr·wd; null for adam or wd 0. */
  decay: tf.Scalar | null;
  /** `adamDebias(...).stepSize` for this parameter's t. */
  stepSize: tf.Scalar;
  /** `adamDebias(...).epsHat` for this parameter's t. */
  epsHat: tf.Scalar;
}

/**
 * The debiasing folded into two scalars (as PyTorch does), which is algebraically the formula
 * in the header and saves three full-size ops per parameter:
 *
 *   lr·(m/bc1)/(sqrt(v/bc2)+eps) = [lr·sqrt(bc2)/bc1] · m / (sqrt(v) + eps·sqrt(bc2))
 *
 * with bc1 = 1 − β1ᵗ, bc2 = 1 − β2ᵗ and t ≥ 1 the parameter's own step count.
 */
export function adamDebias(lr: number, beta1: number, beta2: number, eps: number, t: number): { stepSize: number; epsHat: number } {
  const bc1 = 1 - beta1 ** t;
  const sqrtBc2 = Math.sqrt(1 - beta2 ** t);
  return { stepSize: (lr * sqrtBc2) / bc1, epsHat: eps * sqrtBc2 };
}

/**
 * One adam/adamw update of `p` with its moments `m` and `v` (updated in place). Where the
 * backend has trainchart's one-pass kernel for it (cpu, trainchart kernel set:
 * backend/cpuAdamUpdate.ts), that kernel computes exactly these ops, rounded the same way.
 */
export function adamUpdate(p: tf.Variable, g0: tf.Tensor, m: tf.Variable, v: tf.Variable, s: AdamScalars): void {
  if (tf.getKernel(ADAM_UPDATE, tf.getBackend()) !== undefined) {
    tf.tidy(() => {
      const { l2, decay, ...always } = s;
      const inputs: tf.NamedTensorMap = { p, g: g0, m, v, ...always };
      if (l2) inputs.l2 = l2;
      if (decay) inputs.decay = decay;
      const [p1, m1, v1] = tf.engine().runKernel(ADAM_UPDATE, inputs, {}) as tf.Tensor[];
      m.assign(m1!);
      v.assign(v1!);
      p.assign(p1!);
    });
    return;
  }
  tf.tidy(() => {
    const g = s.l2 ? tf.add(g0, tf.mul(p, s.l2)) : g0;
    const m1 = tf.add(tf.mul(m, s.beta1), tf.mul(g, s.oneMinusBeta1));
    const v1 = tf.add(tf.mul(v, s.beta2), tf.mul(tf.square(g), s.oneMinusBeta2));
    m.assign(m1);
    v.assign(v1);
    const upd = tf.mul(tf.div(m1, tf.add(tf.sqrt(v1), s.epsHat)), s.stepSize);
    const base = s.decay ? tf.mul(p, s.decay) : p;
    p.assign(tf.sub(base, upd));
  });
}
