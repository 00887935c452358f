/**
 * SGDRegressor hyper-parameters: scikit-learn 1.2.1 defaults and its
 * `_parameter_constraints` / `_more_validate_params` checks, in camelCase.
 */
import { LOSS_NAMES, type LossName } from './losses.js';

/** Regularisation term; `null` (or the deprecated `'none'`) means no penalty. */
export type Penalty = 'l2' | 'l1' | 'elasticnet' | null;

/** Learning-rate schedule (scikit-learn's `learning_rate=`). */
export type LearningRate = 'constant' | 'optimal' | 'invscaling' | 'adaptive';

/** Constructor options of {@link SGDRegressor}; every field is optional. */
export interface SGDRegressorOptions {
  /** Default `'squared_error'`. */
  loss?: LossName;
  /** Default `'l2'`. `null` or `'none'`: no penalty. */
  penalty?: Penalty | 'none';
  /** Regularisation strength (also used by the `'optimal'` schedule). Default 1e-4. */
  alpha?: number;
  /** Elastic-net mixing, 0 = L2, 1 = L1. Only used with `penalty: 'elasticnet'`. Default 0.15. */
  l1Ratio?: number;
  /** Default true. */
  fitIntercept?: boolean;
  /** Maximum number of epochs in {@link SGDRegressor.fit}. Default 1000. */
  maxIter?: number;
  /** Stopping tolerance on the training loss in `fit`; `null` disables it. Default 1e-3. */
  tol?: number | null;
  /** Shuffle the samples before every epoch. Default true. */
  shuffle?: boolean;
  /** Threshold of the huber / epsilon-insensitive losses. Default 0.1. */
  epsilon?: number;
  /** Default `'invscaling'`. */
  learningRate?: LearningRate;
  /** Initial learning rate of 'constant', 'invscaling' and 'adaptive'. Default 0.01. */
  eta0?: number;
  /** Exponent of 'invscaling': eta = eta0 / t^powerT. Default 0.25. */
  powerT?: number;
  /**
   * Averaged SGD: `true` averages from the first sample; an integer N starts averaging at
   * the N-th sample seen. Default false.
   */
  average?: boolean | number;
  /** Seed of the shuffle (an integer in [0, 2^32)); unset: a fresh seed per call. */
  randomState?: number | null;
  /** Epochs without improvement of the training loss before `fit` stops. Default 5. */
  nIterNoChange?: number;
  /** `fit` continues from the current coefficients instead of restarting. Default false. */
  warmStart?: boolean;
  /** Only `false` (scikit-learn's default) is supported. */
  earlyStopping?: false;
}

/** Normalised, validated parameters (what {@link SGDRegressor.getParams} returns). */
export interface SGDRegressorParams {
  loss: LossName;
  penalty: Penalty;
  alpha: number;
  l1Ratio: number;
  fitIntercept: boolean;
  maxIter: number;
  tol: number | null;
  shuffle: boolean;
  epsilon: number;
  learningRate: LearningRate;
  eta0: number;
  powerT: number;
  average: boolean | number;
  randomState: number | null;
  nIterNoChange: number;
  warmStart: boolean;
}

/** scikit-learn 1.2.1 `SGDRegressor` defaults. */
export const DEFAULTS: Readonly<SGDRegressorParams> = Object.freeze({
  loss: 'squared_error',
  penalty: 'l2',
  alpha: 0.0001,
  l1Ratio: 0.15,
  fitIntercept: true,
  maxIter: 1000,
  tol: 1e-3,
  shuffle: true,
  epsilon: 0.1,
  learningRate: 'invscaling',
  eta0: 0.01,
  powerT: 0.25,
  average: false,
  randomState: null,
  nIterNoChange: 5,
  warmStart: false,
});

const KNOWN = new Set<string>([...Object.keys(DEFAULTS), 'earlyStopping']);
const PENALTIES: readonly (Exclude<Penalty, null> | 'none')[] = ['l2', 'l1', 'elasticnet', 'none'];
const LEARNING_RATES: readonly LearningRate[] = ['constant', 'optimal', 'invscaling', 'adaptive'];

function num(v: unknown, name: string): number {
  if (typeof v !== 'number') throw new TypeError(`option ${name} must be a number, got ${typeof v}`);
  if (!Number.isFinite(v)) throw new RangeError(`option ${name} must be finite, got ${v}`);
  return v;
}

function bool(v: unknown, name: string): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`option ${name} must be a boolean, got ${typeof v}`);
  return v;
}

function int(v: unknown, name: string, min: number): number {
  const x = num(v, name);
  if (!Number.isInteger(x) || x < min) throw new RangeError(`option ${name} must be an integer >= ${min}, got ${x}`);
  return x;
}

function oneOf<T extends string>(v: unknown, name: string, allowed: readonly T[]): T {
  if (typeof v !== 'string') throw new TypeError(`option ${name} must be a string, got ${typeof v}`);
  if (!(allowed as readonly string[]).includes(v)) {
    throw new RangeError(`option ${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}; got '${v}'`);
  }
  return v as T;
}

function atLeast(v: unknown, name: string, min: number): number {
  const x = num(v, name);
  if (x < min) throw new RangeError(`option ${name} must be >= ${min}, got ${x}`);
  return x;
}

/** Applies defaults and validates; throws TypeError (wrong type/unknown name) or RangeError. */
export function resolveParams(options: SGDRegressorOptions | undefined): SGDRegressorParams {
  if (options === undefined) options = {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError('SGDRegressor options must be an object');
  }
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new TypeError(`unknown SGDRegressor option '${key}'`);
  }
  const o = options as Record<string, unknown>;
  const pick = (k: keyof SGDRegressorParams): unknown => (o[k] === undefined ? DEFAULTS[k] : o[k]);

  if (o.earlyStopping !== undefined && o.earlyStopping !== false) {
    throw new RangeError('option earlyStopping: only false is supported');
  }
  const penaltyRaw = pick('penalty');
  let penalty: Penalty = null;
  if (penaltyRaw !== null) {
    const name = oneOf(penaltyRaw, 'penalty', PENALTIES);
    penalty = name === 'none' ? null : name;
  }
  const averageRaw = pick('average');
  const average = typeof averageRaw === 'boolean' ? averageRaw : int(averageRaw, 'average', 0);
  const randomRaw = o.randomState ?? null;
  const randomState = randomRaw === null ? null : int(randomRaw, 'randomState', 0);
  if (randomState !== null && randomState > 0xffffffff) {
    throw new RangeError(`option randomState must be < 2^32, got ${randomState}`);
  }
  const tolRaw = o.tol === undefined ? DEFAULTS.tol : o.tol;

  const p: SGDRegressorParams = {
    loss: oneOf(pick('loss'), 'loss', LOSS_NAMES),
    penalty,
    alpha: atLeast(pick('alpha'), 'alpha', 0),
    l1Ratio: atLeast(pick('l1Ratio'), 'l1Ratio', 0),
    fitIntercept: bool(pick('fitIntercept'), 'fitIntercept'),
    maxIter: int(pick('maxIter'), 'maxIter', 1),
    tol: tolRaw === null ? null : num(tolRaw, 'tol'),
    shuffle: bool(pick('shuffle'), 'shuffle'),
    epsilon: atLeast(pick('epsilon'), 'epsilon', 0),
    learningRate: oneOf(pick('learningRate'), 'learningRate', LEARNING_RATES),
    eta0: atLeast(pick('eta0'), 'eta0', 0),
    powerT: num(pick('powerT'), 'powerT'),
    average,
    randomState,
    nIterNoChange: int(pick('nIterNoChange'), 'nIterNoChange', 1),
    warmStart: bool(pick('warmStart'), 'warmStart'),
  };
  if (p.l1Ratio > 1) throw new RangeError(`option l1Ratio must be in [0, 1], got ${p.l1Ratio}`);
  // _more_validate_params
  if (p.learningRate !== 'optimal' && p.eta0 <= 0) {
    throw new RangeError(`option eta0 must be > 0 with learningRate '${p.learningRate}'`);
  }
  if (p.learningRate === 'optimal' && p.alpha === 0) {
    throw new RangeError("option alpha must be > 0 with learningRate 'optimal' (it sets the step size)");
  }
  return p;
}

/** The averaging threshold as scikit-learn's int(average): 0 = off, true = 1. */
export function averageStart(p: SGDRegressorParams): number {
  return typeof p.average === 'boolean' ? (p.average ? 1 : 0) : p.average;
}
