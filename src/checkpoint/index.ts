export { writeCheckpoint, type WriteCheckpointOptions, type WrittenCheckpoint, type WriteStep } from './write.js';
export { readCheckpoint, resolveCheckpoint, type LoadedCheckpoint } from './read.js';
export { listCheckpoints, type CheckpointInfo } from './list.js';
export { checkResumable, type ResumeTarget } from './compat.js';
export {
  asCapturedRun,
  modelArchitecture,
  modelTopology,
  weightArrays,
  writeWeights,
  type CapturedRun,
  type FitRecipe,
  type LayerSignature,
} from './capture.js';
export { CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, checkpointName, type Manifest, type CheckpointPosition } from './format.js';
