/**
 * Stable names for a model's variables: the names optimizer states (and checkpoints) are
 * saved under, so that they restore into a brand-new model built the same way.
 *
 * tfjs's own variable names cannot serve: layer names come from process-wide counters, so a
 * second instance of one architecture in the same process gets `dense_Dense3/kernel` where the
 * first has `dense_Dense1/kernel` (and a user-named layer `fc` gets `fc/kernel_1`), and the
 * same model built in a fresh process gets whatever the counters say there.
 *
 * A stable name is the layer's **position path** in `model.layers` plus the weight's own name
 * inside its layer:
 *
 *   layers.<i>/<weight>                    e.g. `layers.1/kernel`, `layers.1/bias`
 *   layers.<i>/layers.<j>/<weight>         a layer of a nested model (a tf.Sequential as a layer)
 *
 * `<weight>` is the weight's `originalName` after its layer's name (`dense_Dense1/kernel` →
 * `kernel`; BatchNormalization's `moving_mean`), which tfjs derives from the layer's code, not
 * from a counter; when it cannot be read that way (a custom layer naming weights oddly) or two
 * weights of a layer would get the same one, it is `weights.<k>`, the weight's position in
 * `layer.weights` (an order that freezing the layer does not change).
 *
 * So the names depend only on how the model is built: the same code gives the same names in
 * any process and in any instance, and `layer.trainable` changes nothing (frozen weights keep
 * their names, and are named at all: a frozen layer's optimizer state is still saved). Every
 * weight of the model is named, trainable or not.
 */
import type * as tf from '@tensorflow/tfjs';

/** The structural view of a tfjs layer this module reads (a nested model is one with `layers`). */
interface LayerLike {
  name: string;
  weights: Array<{ originalName: string; read(): tf.Tensor }>;
  layers?: LayerLike[];
}

/** Stable name of every variable of `model` (each `LayerVariable.read()`), in layer order. */
export function stableParamNames(model: tf.LayersModel): Map<tf.Variable, string> {
  const names = new Map<tf.Variable, string>();
  nameLayers(model.layers as unknown as LayerLike[], '', names);
  return names;
}

function nameLayers(layers: readonly LayerLike[], prefix: string, names: Map<tf.Variable, string>): void {
  layers.forEach((layer, i) => {
    const path = `${prefix}layers.${i}`;
    if (Array.isArray(layer.layers)) {
      nameLayers(layer.layers, `${path}/`, names);
      return;
    }
    const used = new Set<string>();
    layer.weights.forEach((w, k) => {
      const variable = w.read() as tf.Variable;
      // A weight shared with a layer met earlier keeps its first name.
      if (names.has(variable)) return;
      let own = ownName(layer.name, w.originalName);
      if (own === null || used.has(own)) own = `weights.${k}`;
      // Only a layer that itself names a weight `weights.<k>` gets here; still, never a duplicate.
      for (let n = 1; used.has(own); n++) own = `weights.${k}.${n}`;
      used.add(own);
      names.set(variable, `${path}/${own}`);
    });
  });
}

/**
 * `dense_Dense1/kernel` → `kernel` for layer `dense_Dense1`. The layer's name may be preceded by
 * name scopes (`sequential_1/dense_Dense1/kernel` when a layer is built inside a model's apply).
 */
function ownName(layerName: string, originalName: string): string | null {
  const marker = `${layerName}/`;
  const at = originalName.lastIndexOf(marker);
  if (at < 0 || (at > 0 && originalName[at - 1] !== '/')) return null;
  const own = originalName.slice(at + marker.length);
  return own.length > 0 ? own : null;
}
