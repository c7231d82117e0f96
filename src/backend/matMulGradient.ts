/**
 * A gradient for the `BatchMatMul` kernel that is right when batch dimensions broadcast.
 *
 * tfjs's stock gradient returns `dy·bᵀ` and `aᵀ·dy` with the *output's* batch shape, so as
 * soon as one operand was broadcast — `matMul(x [B, M, K], w [K, N])`, the shape of a layer
 * applied to a sequence — backprop fails with "The gradient of input 'b' has shape [B,K,N],
 * which does not match the shape of the input [K,N]". The derivative with respect to a
 * broadcast operand is the sum over the batches it was repeated into (as TensorFlow's own
 * BatchMatMulV2 gradient does), so this one sums over those dimensions.
 *
 * Same products as the stock gradient otherwise (the transposed forms, which trainchart's
 * wasm `BatchMatMul` runs fast), so where the stock gradient works this one computes exactly
 * what it did. One broadcast case gets a cheaper form: for `a [..., M, K] · b [K, N]` the
 * gradient of `b` is a single product of a's rows stacked, `a₂ᵀ · dy₂` with a₂ = [B·M, K],
 * instead of B products then a sum.
 */
import * as tf from '@tensorflow/tfjs';

const BATCH_MAT_MUL = 'BatchMatMul';

/**
 * Sums `g` ([...outBatch, r, c]) over the batch dimensions that `shape` ([...batch, r, c])
 * broadcast, and gives it `shape`.
 */
function sumToShape(g: tf.Tensor, shape: readonly number[]): tf.Tensor {
  if (tf.util.arraysEqual(g.shape, shape as number[])) return g;
  const lead = g.rank - shape.length;
  const axes: number[] = [];
  for (let d = 0; d < g.rank - 2; d++) {
    if (d < lead || (shape[d - lead] === 1 && g.shape[d] !== 1)) axes.push(d);
  }
  const summed = axes.length > 0 ? tf.sum(g, axes) : g;
  return tf.reshape(summed, shape as number[]);
}

/** Product of the batch dimensions (all but the last two). */
const batchSize = (t: tf.Tensor): number => t.shape.slice(0, -2).reduce((x, y) => x * y, 1);

export const matMulGradConfig: tf.GradConfig = {
  kernelName: BATCH_MAT_MUL,
  inputsToSave: ['a', 'b'],
  gradFunc: (dy, saved, attrs) => {
    const [a, b] = saved as [tf.Tensor, tf.Tensor];
    const { transposeA, transposeB } = attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const d = dy as tf.Tensor;
    // The stock gradient's products, per flag combination.
    let da: () => tf.Tensor;
    let db: () => tf.Tensor;
    if (!transposeA && !transposeB) {
      da = () => tf.matMul(d, b, false, true);
      db = () => tf.matMul(a, d, true, false);
    } else if (!transposeA && transposeB) {
      da = () => tf.matMul(d, b, false, false);
      db = () => tf.matMul(d, a, true, false);
    } else if (transposeA && !transposeB) {
      da = () => tf.matMul(b, d, false, true);
      db = () => tf.matMul(a, d, false, false);
    } else {
      da = () => tf.matMul(b, d, true, true);
      db = () => tf.matMul(d, a, true, true);
    }
    // b broadcast against a batched, untransposed a: stack the batches as rows.
    if (!transposeA && batchSize(b) === 1 && batchSize(a) > 1) {
      const k = a.shape[a.rank - 1]!;
      const n = d.shape[d.rank - 1]!;
      db = () => {
        const a2 = tf.reshape(a, [-1, k]);
        const d2 = tf.reshape(d, [-1, n]);
        return transposeB ? tf.matMul(d2, a2, true, false) : tf.matMul(a2, d2, true, false);
      };
    }
    return { a: () => sumToShape(da(), a.shape), b: () => sumToShape(db(), b.shape) };
  },
};
