export { mlp, cnn, type MlpOptions, type CnnOptions } from './presets.js';
export { SeededDropout, rngStatefulLayers, type SeededDropoutArgs, type RngStatefulLayer } from './seededDropout.js';
export { unseededRandomness, UNSEEDED_WARNING_CODE, type UnseededFinding } from './unseeded.js';
