import * as tf from '@tensorflow/tfjs';

type SymbolicTensor = tf.SymbolicTensor;
interface Node {
  inputTensors: SymbolicTensor[];
  callArgs?: Record<string, unknown>;
}

/**
 * Runs a LayersModel on concrete tensors with an explicit `training` flag.
 *
 * Why not `model.apply(x, { training })`: tfjs-layers' Container drops that flag while it
 * walks its graph (only `fit` passes it, through an internal executor), so Dropout and
 * BatchNormalization would silently run in inference mode during our training steps.
 * This walks the same graph (inputs → each layer's inbound node → outputs) and hands the
 * flag to every layer; a nested model is walked the same way.
 */
export function forward(model: tf.LayersModel, input: tf.Tensor | tf.Tensor[], training: boolean): tf.Tensor {
  const inputs = Array.isArray(input) ? input : [input];
  if (inputs.length !== model.inputs.length) {
    throw new Error(`the model takes ${model.inputs.length} input(s), got ${inputs.length}`);
  }
  const values = new Map<SymbolicTensor, tf.Tensor>();
  model.inputs.forEach((st, i) => values.set(st, inputs[i]!));

  const evaluate = (st: SymbolicTensor): tf.Tensor => {
    const known = values.get(st);
    if (known) return known;
    const layer = st.sourceLayer as tf.layers.Layer;
    const node = (layer as unknown as { inboundNodes: Node[] }).inboundNodes[st.nodeIndex]!;
    const args = node.inputTensors.map(evaluate);
    const layerInput = args.length === 1 ? args[0]! : args;
    const out =
      layer instanceof tf.LayersModel
        ? forward(layer, layerInput, training)
        : (layer.apply(layerInput, { ...(node.callArgs ?? {}), training }) as tf.Tensor | tf.Tensor[]);
    const outs = Array.isArray(out) ? out : [out];
    // A layer's outputs from this node are the symbolic tensors that name it as their source.
    const outputsOfNode = (node as unknown as { outputTensors: SymbolicTensor[] }).outputTensors;
    outputsOfNode.forEach((sym, i) => values.set(sym, outs[i]!));
    return values.get(st)!;
  };

  if (model.outputs.length !== 1) {
    throw new Error(`trainchart trains models with one output; this one has ${model.outputs.length}`);
  }
  return evaluate(model.outputs[0]!);
}
