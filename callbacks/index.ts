export { Recorder, type EpochRecord } from './recorder.js';
export { Progress, type ProgressOptions } from './progress.js';
