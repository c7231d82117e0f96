/**
 * A gradient for the `Conv2D` kernel built only from *forward* convolutions.
 *
 * tfjs's stock gradient calls the `Conv2DBackpropInput` and `Conv2DBackpropFilter` kernels,
 * and the wasm backend has no `Conv2DBackpropFilter`, so any CNN fails to train there. Both
 * derivatives of a convolution are themselves convolutions, which every backend implements
 * (and wasm runs through XNNPACK), so expressing them that way makes CNN training work on
 * every backend without touching tfjs.
 *
 * Notation (NHWC): x [N, H, W, Cin], filter [kh, kw, Cin, Cout], dy [N, OH, OW, Cout];
 * strides (sh, sw), dilations (dh, dw); padTop/padLeft are the padding the forward pass
 * added before row/column 0 (tfjs puts the odd pixel of 'same' padding at the bottom/right,
 * which is why top and bottom are computed separately below).
 */
import * as tf from '@tensorflow/tfjs';
import { BackendError, ConfigError } from '../errors.js';

type Pair = [number, number];
type ExplicitPadding = [[number, number], [number, number], [number, number], [number, number]];

/** The attributes tfjs records for a `Conv2D` kernel call. */
interface Conv2DAttrs {
  strides: number | Pair;
  pad: 'valid' | 'same' | number | ExplicitPadding;
  dataFormat: 'NHWC' | 'NCHW';
  dilations: number | Pair;
  dimRoundingMode?: 'floor' | 'round' | 'ceil';
}

/** What the gradient maths needs to know about one forward convolution. */
interface Geometry {
  inH: number;
  inW: number;
  kh: number;
  kw: number;
  outH: number;
  outW: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  padTop: number;
  padLeft: number;
}

const CONV2D = 'Conv2D';
const BACKPROP_FILTER = 'Conv2DBackpropFilter';
const BACKPROP_INPUT = 'Conv2DBackpropInput';

const pair = (v: number | Pair): Pair => (typeof v === 'number' ? [v, v] : v);

/**
 * Runs `fn` with tfjs's own console warnings switched off. tfjs routes its notices (the
 * "Overriding the gradient" / "already registered" warnings, the Node.js banner of the cpu
 * backend) through a logger that stays quiet while the IS_TEST flag is set, so this mutes
 * exactly those without touching `console`.
 * @internal
 */
export function withTfjsWarningsMuted<T>(fn: () => T): T {
  const env = tf.env();
  const previous = env.getBool('IS_TEST');
  env.set('IS_TEST', true);
  try {
    return fn();
  } finally {
    env.set('IS_TEST', previous);
  }
}

function geometry(
  xShape: number[],
  filterShape: number[],
  strides: number | Pair,
  dilations: number | Pair,
  pad: Conv2DAttrs['pad'],
  dimRoundingMode: Conv2DAttrs['dimRoundingMode'],
  dataFormat: Conv2DAttrs['dataFormat'],
): Geometry {
  const [sh, sw] = pair(strides);
  const [dh, dw] = pair(dilations);
  if ((sh > 1 || sw > 1) && (dh > 1 || dw > 1)) {
    // tf.conv2d itself refuses this combination, so it only arises from a hand-made kernel call.
    throw new ConfigError(
      `Conv2D gradient: strides ${sh}x${sw} together with dilations ${dh}x${dw} are not supported; ` +
        'use strides 1 or dilations 1 (tf.conv2d requires the same).',
    );
  }
  const info = tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    [sh, sw],
    [dh, dw],
    pad,
    dimRoundingMode,
    false,
    dataFormat === 'NHWC' ? 'channelsLast' : 'channelsFirst',
  );
  return {
    inH: info.inHeight,
    inW: info.inWidth,
    kh: info.filterHeight,
    kw: info.filterWidth,
    outH: info.outHeight,
    outW: info.outWidth,
    sh,
    sw,
    dh,
    dw,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/**
 * Pads (positive amounts) or crops (negative amounts) the two spatial axes of an NHWC tensor.
 * Cropping is done here with a slice; the padding is returned as an explicit padding for
 * `tf.conv2d`, which applies it for free inside the convolution.
 */
function padOrCrop(
  t: tf.Tensor4D,
  top: number,
  bottom: number,
  left: number,
  right: number,
): [tf.Tensor4D, ExplicitPadding | 'valid'] {
  const [n, h, w, c] = t.shape;
  const cropTop = Math.max(0, -top);
  const cropLeft = Math.max(0, -left);
  const keepH = h - cropTop - Math.max(0, -bottom);
  const keepW = w - cropLeft - Math.max(0, -right);
  const cropped =
    keepH === h && keepW === w ? t : tf.slice(t, [0, cropTop, cropLeft, 0], [n, keepH, keepW, c]);
  const p: ExplicitPadding = [
    [0, 0],
    [Math.max(0, top), Math.max(0, bottom)],
    [Math.max(0, left), Math.max(0, right)],
    [0, 0],
  ];
  const none = p[1][0] === 0 && p[1][1] === 0 && p[2][0] === 0 && p[2][1] === 0;
  return [cropped, none ? 'valid' : p];
}

/**
 * dL/dfilter[a, b, ci, co] = Σ_{n,i,j} xpad[n, i·sh + a·dh, j·sw + b·dw, ci] · dy[n, i, j, co]
 *
 * That is a convolution of x with batch and channel axes swapped ([Cin, H, W, N]) by dy used
 * as the filter ([OH, OW, N, Cout]): the forward stride becomes the filter's dilation and the
 * forward dilation becomes the stride. The input is padded (or cropped) to exactly the rows the
 * forward windows covered, so the result is exactly kh × kw.
 */
function filterGradNHWC(x: tf.Tensor4D, dy: tf.Tensor4D, g: Geometry): tf.Tensor4D {
  const neededH = (g.outH - 1) * g.sh + (g.kh - 1) * g.dh + 1;
  const neededW = (g.outW - 1) * g.sw + (g.kw - 1) * g.dw + 1;
  const xT = tf.transpose(x, [3, 1, 2, 0]);
  const [input, pad] = padOrCrop(
    xT,
    g.padTop,
    neededH - g.inH - g.padTop,
    g.padLeft,
    neededW - g.inW - g.padLeft,
  );
  const dyAsFilter = tf.transpose(dy, [1, 2, 0, 3]);
  const r = tf.conv2d(input, dyAsFilter, [g.dh, g.dw], pad, 'NHWC', [g.sh, g.sw]);
  return tf.transpose(r, [1, 2, 0, 3]);
}

/** Inserts (s - 1) zeros after every row / column of dy, undoing the forward stride. */
function strideDilate(dy: tf.Tensor4D, sh: number, sw: number): tf.Tensor4D {
  const [n, oh, ow, c] = dy.shape;
  let t = dy;
  if (sh > 1) {
    const rows = tf.pad(tf.reshape(t, [n, oh, 1, ow * c]), [
      [0, 0],
      [0, 0],
      [0, sh - 1],
      [0, 0],
    ]);
    t = tf.reshape(rows, [n, oh * sh, ow, c]);
  }
  if (sw > 1) {
    const h = t.shape[1];
    const cols = tf.pad(tf.reshape(t, [n * h, ow, 1, c]), [
      [0, 0],
      [0, 0],
      [0, sw - 1],
      [0, 0],
    ]);
    t = tf.reshape(cols, [n, h, ow * sw, c]);
  }
  return t;
}

/**
 * dL/dx[n, h, w, ci] = Σ dyd[n, h + padTop − a·dh, w + padLeft − b·dw, co] · filter[a, b, ci, co]
 *
 * where dyd is dy with the stride undone (zeros between its rows and columns). That is a
 * stride-1 "full" convolution of dyd by the filter flipped in space with its in/out axes
 * swapped; padding dyd by (effective kernel − 1 − forward padding) on the top/left, and by
 * whatever makes the output exactly H × W on the bottom/right, reproduces tfjs's asymmetric
 * 'same' padding and the rows 'valid' with a stride never read.
 */
function inputGradNHWC(dy: tf.Tensor4D, filter: tf.Tensor4D, g: Geometry): tf.Tensor4D {
  const effH = (g.kh - 1) * g.dh + 1;
  const effW = (g.kw - 1) * g.dw + 1;
  const dyd = strideDilate(dy, g.sh, g.sw);
  const top = effH - 1 - g.padTop;
  const left = effW - 1 - g.padLeft;
  const [input, pad] = padOrCrop(
    dyd,
    top,
    g.inH + effH - 1 - top - dyd.shape[1],
    left,
    g.inW + effW - 1 - left - dyd.shape[2],
  );
  const flipped = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]);
  return tf.conv2d(input, flipped, 1, pad, 'NHWC', [g.dh, g.dw]);
}

const toNHWC = (t: tf.Tensor4D, nchw: boolean): tf.Tensor4D => (nchw ? tf.transpose(t, [0, 2, 3, 1]) : t);
const fromNHWC = (t: tf.Tensor4D, nchw: boolean): tf.Tensor4D => (nchw ? tf.transpose(t, [0, 3, 1, 2]) : t);

/**
 * dL/dfilter of a 2D convolution, computed with forward convolutions only.
 * Shapes and attributes are those of the forward `tf.conv2d` call (x and dy rank 4).
 */
export function conv2dFilterGrad(
  x: tf.Tensor4D,
  dy: tf.Tensor4D,
  filterShape: [number, number, number, number],
  attrs: Conv2DAttrs,
): tf.Tensor4D {
  return tf.tidy(() => {
    const g = geometry(x.shape, filterShape, attrs.strides, attrs.dilations, attrs.pad, attrs.dimRoundingMode, attrs.dataFormat);
    const nchw = attrs.dataFormat === 'NCHW';
    return filterGradNHWC(toNHWC(x, nchw), toNHWC(dy, nchw), g);
  });
}

/**
 * dL/dx of a 2D convolution, computed with forward convolutions only.
 * Shapes and attributes are those of the forward `tf.conv2d` call (dy rank 4).
 */
export function conv2dInputGrad(
  xShape: [number, number, number, number],
  dy: tf.Tensor4D,
  filter: tf.Tensor4D,
  attrs: Conv2DAttrs,
): tf.Tensor4D {
  return tf.tidy(() => {
    const g = geometry(xShape, filter.shape, attrs.strides, attrs.dilations, attrs.pad, attrs.dimRoundingMode, attrs.dataFormat);
    const nchw = attrs.dataFormat === 'NCHW';
    return fromNHWC(inputGradNHWC(toNHWC(dy, nchw), filter, g), nchw);
  });
}

/** `Conv2DBackpropFilter` kernels trainchart registered (fill-ins, and faster ones for wasm). */
const ownFilterKernels = new WeakSet<tf.KernelConfig>();

/**
 * Marks a `Conv2DBackpropFilter` kernel as trainchart's own, so that the Conv2D gradient
 * routes the filter derivative through it (see {@link filterGrad}).
 * @internal
 */
export function adoptBackpropFilterKernel(config: tf.KernelConfig): void {
  ownFilterKernels.add(config);
}

/**
 * The filter derivative for the gradient below. Where the backend's `Conv2DBackpropFilter` is
 * one trainchart registered (wasm, which has none of its own), it goes through that kernel, so
 * that a faster one registered for the backend (wasmConv2dFilterGrad.ts) is used; elsewhere
 * (the backend's own kernel, often slower) it is the forward-convolution form directly. The
 * kernel has no dilations attribute, so dilated convolutions always take the direct form.
 */
function filterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, filterShape: [number, number, number, number], a: Conv2DAttrs): tf.Tensor4D {
  const [dh, dw] = pair(a.dilations);
  const kernel = tf.getKernel(BACKPROP_FILTER, tf.getBackend());
  if (dh === 1 && dw === 1 && kernel !== undefined && ownFilterKernels.has(kernel)) {
    const attrs = { strides: a.strides, pad: a.pad, dataFormat: a.dataFormat, dimRoundingMode: a.dimRoundingMode, filterShape };
    return tf.engine().runKernel(BACKPROP_FILTER, { x, dy }, attrs as unknown as tf.NamedAttrMap) as tf.Tensor4D;
  }
  return conv2dFilterGrad(x, dy, filterShape, a);
}

const gradConfig: tf.GradConfig = {
  kernelName: CONV2D,
  inputsToSave: ['x', 'filter'],
  gradFunc: (dy, saved, attrs) => {
    const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
    const a = attrs as unknown as Conv2DAttrs;
    const dy4 = dy as tf.Tensor4D;
    return {
      x: () => conv2dInputGrad(x.shape, dy4, filter, a),
      filter: () => filterGrad(x, dy4, filter.shape, a),
    };
  },
};

/** The Conv2D gradient that was registered before ours (tfjs's stock one), kept for comparison. */
let stock: tf.GradConfig | undefined;

/**
 * The gradient tfjs had registered for `Conv2D` before {@link registerConv2dGradient}
 * replaced it (undefined before the first call). Lets tests and benchmarks compare against it.
 */
export function stockConv2dGradient(): tf.GradConfig | undefined {
  return stock;
}

/** The backends tfjs ships or that trainchart may load; only those with a Conv2D kernel matter. */
const KNOWN_BACKENDS = ['cpu', 'wasm', 'webgl', 'webgpu', 'tensorflow'];

/** Wraps one of our gradient functions as a kernel for a backend that lacks it. */
function backpropKernel(kernelName: string, backendName: string): tf.KernelConfig {
  return {
    kernelName,
    backendName,
    kernelFunc: ({ inputs, attrs }) => {
      const { x, dy, filter } = inputs as Record<string, tf.TensorInfo | undefined>;
      const a = attrs as unknown as Conv2DAttrs & {
        filterShape?: [number, number, number, number];
        inputShape?: [number, number, number, number];
      };
      // These kernels have no dilations attribute: tfjs only calls them for dilation 1.
      const conv: Conv2DAttrs = { ...a, dilations: 1 };
      const tensor = (t: tf.TensorInfo | undefined): tf.Tensor4D => {
        if (!(t instanceof tf.Tensor)) {
          throw new BackendError(`${kernelName} on '${backendName}' expected tensor inputs from a tf op.`);
        }
        return t as tf.Tensor4D;
      };
      // Ops run inside a kernel are not recorded on the gradient tape, and a returned Tensor
      // is taken as the kernel's output as is, so composing forward ops here is safe.
      return kernelName === BACKPROP_FILTER
        ? conv2dFilterGrad(tensor(x), tensor(dy), a.filterShape!, conv)
        : conv2dInputGrad(a.inputShape!, tensor(dy), tensor(filter), conv);
    },
  };
}

/**
 * For every loaded backend that has a `Conv2D` kernel but lacks `Conv2DBackpropFilter` /
 * `Conv2DBackpropInput` (wasm lacks the former), registers those kernels built from the
 * forward-convolution maths. The kernels matter because tfjs-layers' Conv2D with a linear
 * activation goes through `tf.fused.conv2d`, whose own gradient calls them directly, and
 * because tfjs's stock Conv2D gradient calls them too: with them, CNNs train on wasm whichever
 * Conv2D gradient is registered. Idempotent; call it again after loading a backend.
 */
export function registerConv2dBackpropKernels(): void {
  withTfjsWarningsMuted(() => {
    for (const backendName of KNOWN_BACKENDS) {
      if (tf.getKernel(CONV2D, backendName) === undefined) continue;
      for (const kernelName of [BACKPROP_FILTER, BACKPROP_INPUT]) {
        if (tf.getKernel(kernelName, backendName) === undefined) {
          const config = backpropKernel(kernelName, backendName);
          if (kernelName === BACKPROP_FILTER) adoptBackpropFilterKernel(config);
          tf.registerKernel(config);
        }
      }
    }
  });
}

/**
 * Registers the forward-convolution gradient for the `Conv2D` kernel (keeping the previous one,
 * see {@link stockConv2dGradient}) and the missing backprop kernels
 * ({@link registerConv2dBackpropKernels}). Idempotent; call it again after loading a backend.
 */
export function registerConv2dGradient(): void {
  withTfjsWarningsMuted(() => {
    const current = tf.getGradient(CONV2D);
    if (current !== gradConfig) {
      if (stock === undefined) stock = current;
      tf.registerGradient(gradConfig);
    }
  });
  registerConv2dBackpropKernels();
}

/**
 * Puts tfjs's own Conv2D gradient back (after {@link registerConv2dGradient} replaced it),
 * keeping the missing backprop kernels so that CNNs still train on wasm. Used to measure what
 * trainchart's gradient gains (see kernelSet.ts).
 */
export function restoreStockConv2dGradient(): void {
  withTfjsWarningsMuted(() => {
    if (stock !== undefined && tf.getGradient(CONV2D) !== stock) tf.registerGradient(stock);
  });
  registerConv2dBackpropKernels();
}
