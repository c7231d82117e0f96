export {
  createOptimizer,
  DEFAULT_HYPERPARAMS,
  OPTIMIZER_KINDS,
  type HyperParams,
  type Optimizer,
  type OptimizerKind,
  type OptimizerState,
} from './optimizer.js';
