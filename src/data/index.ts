import { mnist } from './mnist.js';

export { DataLoader } from './dataLoader.js';
export type { ArrayOptions, Batch, DataLoaderOptions, DataLoaderState, DataOrder, NestedNumbers, XArray, YArray } from './dataLoader.js';
export { readIdx, parseIdx } from './idx.js';
export type { IdxFile } from './idx.js';
export { mnist } from './mnist.js';
export type { MnistOptions } from './mnist.js';

/** Built-in datasets, e.g. `await datasets.mnist({ batchSize: 128 })`. */
export const datasets = { mnist };
