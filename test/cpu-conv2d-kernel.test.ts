/**
 * trainchart's cpu Conv2D / FusedConv2D kernels against references that do not use them: the
 * definition of a 2D convolution (NHWC) written as float64 loops, with TensorFlow's documented
 * padding rule ('same': total padding max((out − 1)·stride + effective kernel − in, 0), the odd
 * pixel at the bottom/right), and tfjs's stock cpu kernels (toggled in the same process).
 *
 * The kernel sums each output in float64 over (tap row, tap column, channel) in that order and
 * rounds once; the definition below sums the same terms in the same order, so they must agree
 * bit for bit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/backend/selectBackend.js';
import { useStockKernels, useTrainchartKernels } from '../src/backend/kernelSet.js';
import { Rng } from '../src/rng.js';
import { randomValues, relErr } from './support/matMulReference.js';

const rng = new Rng(33);
const int = (lo: number, hi: number) => lo + rng.nextInt(hi - lo + 1);
const values = (shape: number[]) => randomValues(rng, shape);

type Pad = 'valid' | 'same' | number | [[0, 0], [number, number], [number, number], [0, 0]];
type Rounding = 'floor' | 'round' | 'ceil';

interface ConvCase {
  x: number[];
  f: number[];
  strides: [number, number];
  dilations: [number, number];
  pad: Pad;
  /** With a numeric pad: how tfjs rounds the output size (`dimRoundingMode`). */
  rounding?: Rounding;
}

/** Output size and top/left padding of one spatial axis. */
function axis(
  inSize: number,
  k: number,
  s: number,
  d: number,
  pad: Pad,
  which: 1 | 2,
  rounding?: Rounding,
  square?: { eff: number; s: number },
): { out: number; before: number } {
  const eff = (k - 1) * d + 1;
  if (pad === 'valid') return { out: Math.ceil((inSize - eff + 1) / s), before: 0 };
  if (typeof pad === 'number') {
    // tfjs's conv_util (getPadAndOutInfo → computeOutputShape2D): out = round((in − eff + 2·pad) /
    // stride + 1) by the rounding mode (floor when none), pad on every side — with the *height's*
    // effective filter size and stride for both axes (`square`), as tfjs computes it.
    const exact = (inSize - square!.eff + 2 * pad) / square!.s + 1;
    const out = rounding === 'ceil' ? Math.ceil(exact) : rounding === 'round' ? Math.round(exact) : Math.floor(exact);
    return { out, before: pad };
  }
  if (pad === 'same') {
    const out = Math.ceil(inSize / s);
    const total = Math.max((out - 1) * s + eff - inSize, 0);
    return { out, before: Math.floor(total / 2) };
  }
  const [before, after] = pad[which];
  return { out: Math.floor((inSize + before + after - eff) / s) + 1, before };
}

/** The definition: out[n, i, j, o] = Σ_a Σ_b Σ_c x[n, i·sh + a·dh − top, j·sw + b·dw − left, c] · f[a, b, c, o]. */
function referenceConv(xv: Float32Array, fv: Float32Array, c: ConvCase) {
  const [nb, h, w, cin] = c.x;
  const [kh, kw, , cout] = c.f;
  const square = { eff: (kh! - 1) * c.dilations[0] + 1, s: c.strides[0] };
  const rows = axis(h!, kh!, c.strides[0], c.dilations[0], c.pad, 1, c.rounding, square);
  const cols = axis(w!, kw!, c.strides[1], c.dilations[1], c.pad, 2, c.rounding, square);
  const out = new Float64Array(nb! * rows.out * cols.out * cout!);
  let o = 0;
  for (let n = 0; n < nb!; n++) {
    for (let i = 0; i < rows.out; i++) {
      for (let j = 0; j < cols.out; j++) {
        for (let co = 0; co < cout!; co++) {
          let s = 0;
          for (let a = 0; a < kh!; a++) {
            const y = i * c.strides[0] + a * c.dilations[0] - rows.before;
            if (y < 0 || y >= h!) continue;
            for (let b = 0; b < kw!; b++) {
              const xx = j * c.strides[1] + b * c.dilations[1] - cols.before;
              if (xx < 0 || xx >= w!) continue;
              for (let ci = 0; ci < cin!; ci++) s += xv[((n * h! + y) * w! + xx) * cin! + ci]! * fv[((a * kw! + b) * cin! + ci) * cout! + co]!;
            }
          }
          out[o++] = s;
        }
      }
    }
  }
  return { values: out, shape: [nb!, rows.out, cols.out, cout!] };
}

function cases(): ConvCase[] {
  const out: ConvCase[] = [];
  // Every (movement, padding) pair: movement is t % 3 (none, strided, dilated — tfjs refuses
  // both at once), padding ⌊t / 3⌋ % 4 (valid, same, explicit per side, a number with a rounding
  // mode), so 48 cases cover each of the 12 pairs 4 times.
  const roundings: Rounding[] = ['floor', 'round', 'ceil'];
  for (let t = 0; t < 48; t++) {
    const kh = int(1, 4);
    const kw = int(1, 4);
    const strided = t % 3 === 1;
    const dilated = t % 3 === 2;
    // Strided and dilated cases really stride or dilate the rows (which size both axes for a numeric pad).
    const strides: [number, number] = strided ? [int(2, 3), int(1, 3)] : [1, 1];
    const dilations: [number, number] = dilated ? [2, int(1, 2)] : [1, 1];
    const kind = Math.floor(t / 3) % 4;
    const pads: Pad[] = ['valid', 'same', [[0, 0], [int(0, 2), int(0, 2)], [int(0, 2), int(0, 2)], [0, 0]], int(0, 2)];
    const pad = pads[kind]!;
    const effH = (kh - 1) * dilations[0] + 1;
    const effW = (kw - 1) * dilations[1] + 1;
    // A numeric pad sizes the columns by the rows' filter: wide enough for both, so no case is empty.
    const h = int(effH, 12);
    const w = int(kind === 3 ? Math.max(effH, effW) : effW, 12);
    const cin = int(1, 5);
    // Each rounding mode with every movement (t / 12 picks it, t % 3 the movement).
    const rounding = kind === 3 ? { rounding: roundings[Math.floor(t / 12) % 3]! } : {};
    out.push({ x: [int(1, 3), h, w, cin], f: [kh, kw, cin, int(1, 7)], strides, dilations, pad, ...rounding });
  }
  // The MNIST CNN preset's two layers, and the filter-gradient convolution its second layer's
  // gradient is made of (x as [Cin, H, W, N], dy as a [OH, OW, N, Cout] filter).
  out.push({ x: [4, 28, 28, 1], f: [3, 3, 1, 16], strides: [1, 1], dilations: [1, 1], pad: 'valid' });
  out.push({ x: [4, 13, 13, 16], f: [3, 3, 16, 32], strides: [1, 1], dilations: [1, 1], pad: 'valid' });
  out.push({ x: [16, 13, 13, 4], f: [11, 11, 4, 32], strides: [1, 1], dilations: [1, 1], pad: 'valid' });
  return out;
}

const caseName = (c: ConvCase) => `x [${c.x}] * f [${c.f}] s ${c.strides} d ${c.dilations} pad ${JSON.stringify(c.pad)}${c.rounding ? ` ${c.rounding}` : ''}`;
const cpu = () => tf.backend() as unknown as { numDataIds(): number };

beforeAll(async () => {
  await selectBackend('cpu');
});

afterAll(() => {
  useTrainchartKernels();
});

describe('cpu Conv2D (trainchart kernel set)', () => {
  const all = cases();

  it('is installed by selectBackend; the stock set puts tfjs-backend-cpu’s kernels back', () => {
    const ours = [tf.getKernel('Conv2D', 'cpu'), tf.getKernel('FusedConv2D', 'cpu')];
    useStockKernels();
    const stock = [tf.getKernel('Conv2D', 'cpu'), tf.getKernel('FusedConv2D', 'cpu')];
    useTrainchartKernels();
    expect(stock.map((k) => k.kernelFunc.name)).toEqual(['conv2D', 'fusedConv2D']);
    expect(ours.map((k) => k.kernelFunc.name)).not.toContain('conv2D');
  });

  it.each(all.map((c) => [caseName(c), c] as const))('%s is the definition rounded once, and matches the stock kernel', (_, c) => {
    const xv = values(c.x);
    const fv = values(c.f);
    const want = referenceConv(xv, fv, c);
    expect(want.values.length, 'a case with outputs').toBeGreaterThan(0);
    const run = () => tf.tidy(() => tf.conv2d(tf.tensor4d(xv, c.x as never), tf.tensor4d(fv, c.f as never), c.strides, c.pad, 'NHWC', c.dilations, c.rounding));
    const before = cpu().numDataIds();
    const ours = run();
    expect(ours.shape).toEqual(want.shape);
    expect(Array.from(ours.dataSync())).toEqual(Array.from(Float32Array.from(want.values)));
    ours.dispose();
    expect(cpu().numDataIds()).toBe(before);
    try {
      useStockKernels();
      const stock = run();
      expect(relErr(stock.dataSync(), want.values)).toBeLessThan(2e-6);
      stock.dispose();
    } finally {
      useTrainchartKernels();
    }
  });

  it('a non-finite filter value with padding gives what the stock kernel gives (padded taps skipped, not 0·Inf)', () => {
    const fv = new Float32Array(9).fill(1);
    fv[0] = Infinity;
    const run = () => tf.tidy(() => Array.from(tf.conv2d(tf.ones([1, 3, 3, 1]) as tf.Tensor4D, tf.tensor4d(fv, [3, 3, 1, 1]), 1, 'same').dataSync()));
    const ours = run();
    useStockKernels();
    const stock = run();
    useTrainchartKernels();
    expect(ours).toEqual(stock);
    expect(ours[0]).toBe(4);
  });

  it('NCHW goes to the stock kernel and gives the NHWC result transposed', () => {
    const c = all[0]!;
    const xv = values(c.x);
    const fv = values(c.f);
    const want = referenceConv(xv, fv, { ...c, strides: [1, 1], dilations: [1, 1], pad: 'valid' });
    const got = tf.tidy(() => {
      const xNchw = tf.transpose(tf.tensor4d(xv, c.x as never), [0, 3, 1, 2]) as tf.Tensor4D;
      const y = tf.conv2d(xNchw, tf.tensor4d(fv, c.f as never), 1, 'valid', 'NCHW');
      return tf.transpose(y, [0, 2, 3, 1]);
    });
    expect(got.shape).toEqual(want.shape);
    expect(relErr(got.dataSync(), want.values)).toBeLessThan(2e-6);
    got.dispose();
  });

  it('gradients through a conv layer match the stock kernels', () => {
    const x = tf.tensor4d(values([3, 9, 9, 2]), [3, 9, 9, 2]);
    const f = tf.tensor4d(values([3, 3, 2, 4]), [3, 3, 2, 4]);
    const up = tf.tensor4d(values([3, 5, 5, 4]), [3, 5, 5, 4]);
    const grads = () =>
      tf.tidy(() => {
        const loss = (xx: tf.Tensor, ff: tf.Tensor) => tf.sum(tf.mul(tf.relu(tf.conv2d(xx as tf.Tensor4D, ff as tf.Tensor4D, 2, 'same')), up));
        return tf.grads(loss)([x, f]).map((g) => Array.from(g.dataSync()));
      });
    const ours = grads();
    useStockKernels();
    const stock = grads();
    useTrainchartKernels();
    expect(relErr(ours[0]!, stock[0]!)).toBeLessThan(2e-6);
    expect(relErr(ours[1]!, stock[1]!)).toBeLessThan(2e-6);
    tf.dispose([x, f, up]);
  });
});

describe('cpu FusedConv2D (trainchart kernel set)', () => {
  const ACT: Record<string, (v: number) => number> = {
    linear: (v) => v,
    relu: (v) => Math.max(0, v),
    elu: (v) => (v >= 0 ? v : Math.exp(v) - 1),
    sigmoid: (v) => 1 / (1 + Math.exp(-v)),
    relu6: (v) => Math.min(Math.max(0, v), 6),
    // tfjs's: alpha·v below 0 (leakyreluAlpha, here 0.3), and prelu with one weight per channel (below).
    leakyrelu: (v) => (v < 0 ? Math.fround(0.3) * v : v),
    prelu: (v) => v,
  };
  const fusedCases = Object.keys(ACT).flatMap((activation) =>
    (['none', 'channel', 'row', 'full'] as const).map((bias) => ({ activation, bias, c: cases()[int(0, 47)]! })),
  );

  it.each(fusedCases.map((k) => [`${k.activation}, bias ${k.bias}, ${caseName(k.c)}`, k] as const))('%s equals the definition', (_, k) => {
    const { c, activation } = k;
    const cout = c.f[3]!;
    // relu6 on inputs scaled up, so that its clip at 6 is reached.
    const xv = activation === 'relu6' ? values(c.x).map((v) => v * 8) : values(c.x);
    const fv = values(c.f);
    const conv = referenceConv(xv, fv, c);
    const biasShape = k.bias === 'channel' ? [cout] : k.bias === 'row' ? [1, 1, 1, cout] : conv.shape;
    const bv = values(biasShape);
    const slopes = values([cout]);
    // A per-channel bias joins the exact sum (one rounding); a full one is added to the rounded conv.
    const want = conv.values.map((s, i) => {
      const biased = k.bias === 'none' ? s : k.bias === 'full' ? Math.fround(Math.fround(s) + bv[i]!) : s + bv[i % cout]!;
      if (activation === 'prelu') return biased < 0 ? slopes[i % cout]! * Math.fround(biased) : biased;
      return ACT[activation]!(biased);
    });
    const before = cpu().numDataIds();
    const got = tf.tidy(() =>
      tf.fused.conv2d({
        x: tf.tensor4d(xv, c.x as never),
        filter: tf.tensor4d(fv, c.f as never),
        strides: c.strides,
        pad: c.pad,
        dilations: c.dilations,
        bias: k.bias === 'none' ? undefined : tf.tensor(bv, biasShape),
        activation: activation as 'linear',
        ...(activation === 'leakyrelu' ? { leakyreluAlpha: 0.3 } : {}),
        ...(activation === 'prelu' ? { preluActivationWeights: tf.tensor1d(slopes) } : {}),
        ...(c.rounding ? { dimRoundingMode: c.rounding } : {}),
      }),
    );
    expect(got.shape).toEqual(conv.shape);
    if (activation === 'linear' || activation === 'relu') expect(Array.from(got.dataSync())).toEqual(Array.from(Float32Array.from(want)));
    else expect(relErr(got.dataSync(), want)).toBeLessThan(2e-6);
    got.dispose();
    expect(cpu().numDataIds()).toBe(before);
  });
});
