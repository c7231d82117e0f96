/**
 * trainchart — a TensorFlow.js training engine whose loop is an XState statechart.
 */
export { Learner } from './learner.js';
export type { LearnerOptions, LearnerData, FitOptions, FitResult } from './learner.js';
export { Callback } from './loop/callback.js';
export type { Hook, HookResult, Guard, Guards } from './loop/callback.js';
export { learnerDefaults, type LearnerDefaults } from './defaults.js';
export type { Prediction, PredictInput, NestedArray } from './engine/predict.js';
export type { TrainContext, JumpPosition } from './loop/context.js';
export type { QuietPoint } from './loop/quietPoint.js';
export { listCheckpoints, readCheckpoint, resolveCheckpoint, writeCheckpoint, CHECKPOINT_FORMAT_VERSION } from './checkpoint/index.js';
export type { CheckpointInfo, LoadedCheckpoint, CapturedRun, FitRecipe, WriteCheckpointOptions, WrittenCheckpoint } from './checkpoint/index.js';
export type { ResumedFrom } from './resume.js';
export type { LoopEngine } from './loop/engine.js';
export { runLoop, type RunLoopOptions, type LoopResult, type LoopActor } from './loop/runLoop.js';
export { HookTable } from './loop/hookTable.js';
export { SmoothLoss } from './loop/smoothLoss.js';
export { DataLoader, datasets } from './data/index.js';
export type { Batch, DataLoaderOptions, ArrayOptions, MnistOptions } from './data/index.js';
export * as models from './models/index.js';
export { createOptimizer } from './optim/optimizer.js';
export type { Optimizer, OptimizerKind, HyperParams, OptimizerState, ParamNames } from './optim/optimizer.js';
export { stableParamNames } from './models/paramNames.js';
export { resolveLoss, type LossName, type LossFn } from './losses.js';
export { resolveMetric, type Metric, type MetricName } from './metrics.js';
export { selectBackend, type BackendChoice, type BackendInfo } from './backend/selectBackend.js';
export { registerConv2dGradient } from './backend/conv2dGradient.js';
export {
  setKernelSet,
  getKernelSet,
  useStockKernels,
  useTrainchartKernels,
  KERNEL_SETS,
  type KernelSet,
} from './backend/kernelSet.js';
export { Rng, type RngState } from './rng.js';
export { weightsSha256 } from './weightsHash.js';
export { saveWeights, loadWeights, readWeights, type WeightsHeader, type WeightEntry } from './io/weightsFile.js';
export { writeFileAtomic } from './io/atomicWrite.js';
export { exportModel, loadModelFiles, checkModelDir, type ExportedModel } from './io/tfjsModelFiles.js';
export { encodeState, decodeState, type JsonValue } from './io/stateCodec.js';
export { sampleBeta, sampleGamma, sampleNormal } from './random/beta.js';
export * from './errors.js';
export {
  STAGES,
  CONTROLS,
  CONTROL_NAMES,
  trainLoopMachine,
  describeMachine,
  QUIET,
  resumePointOf,
  type ResumePoint,
  type Stage,
  type Control,
  type ControlName,
  type FinalStatus,
} from '../machines/index.js';
export * from '../callbacks/index.js';
export {
  annealNo,
  annealLinear,
  annealCos,
  annealExp,
  annealPoly,
  schedule,
  schedNo,
  schedLin,
  schedCos,
  schedExp,
  schedPoly,
  combineScheds,
  combinedCos,
  type Annealer,
  type Schedule,
} from './schedule/annealers.js';
export { fitOneCycle, oneCycleSchedules, type FitOneCycleOptions } from './oneCycle.js';
export { lrFind, suggestLrs, suggestionMarks, type LrFindOptions, type LrFindResult, type LrSuggestions } from './lrFind.js';
// The package entry sits on top of every layer: it also offers the visualizer (whose module
// registers how fit turns `{ viz: { port } }` into a server).
export { Visualizer, PortInUseError, type VisualizerOptions } from '../visualizer/index.js';
export { renderVegaLite, renderSvg, svgToPng, plotPaths, plotFont, type PlotFiles, type PlotFont } from './plot/render.js';
export { lossChartSpec, lrChartSpec, lrFindChartSpec, type Suggestion } from './plot/charts.js';
export { enqueueSweep, type EnqueueOptions, type EnqueuedSweep } from './sweep/enqueue.js';
export { startWorker, type WorkerOptions, type SweepWorker } from './sweep/worker.js';
export { sweepResults, type SweepResults, type RankedRun } from './sweep/results.js';
export { sweepStatus, type SweepStatus, type RunStatus } from './sweep/status.js';
export { cancelSweep, type CancelledSweep } from './sweep/cancel.js';
export { validateSpec, type SweepSpec, type RandomSearch, type ParamRange, type ParamValue } from './sweep/spec.js';
export { expandSweep, type SweepRun } from './sweep/expand.js';
export type { RunConfig } from './sweep/runOptions.js';
export type { SweepConnection } from './sweep/connection.js';
export type { SweepRunResult } from './sweep/names.js';
export { sweepChartSpec, type SweepChartData } from './plot/sweepChart.js';
