export {
  createOptimizer,
  DEFAULT_HYPERPARAMS,
  OPTIMIZER_KINDS,
  type HyperParams,
  type Optimizer,
  type OptimizerKind,
  type OptimizerState,
  type ParamNames,
  type SlotState,
} from './optimizer.js';
