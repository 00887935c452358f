/** Online linear regression with scikit-learn's semantics, metrics and the exact OLS fit. */
export { SGDRegressor, NotFittedError, type SGDRegressorJSON } from './sgd-regressor.js';
export {
  DEFAULTS as SGD_REGRESSOR_DEFAULTS,
  type SGDRegressorOptions,
  type SGDRegressorParams,
  type Penalty,
  type LearningRate,
} from './params.js';
export type { LossName } from './losses.js';
export type { Matrix, ColumnBatch, Vector } from './input.js';
export { r2Score, meanSquaredError } from './metrics.js';
export { leastSquares, type LinearFit } from './least-squares.js';
