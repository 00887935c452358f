/**
 * The SGD inner loop: a line-by-line port of scikit-learn 1.2.x `_plain_sgd`
 * (`sklearn/linear_model/_sgd_fast.pyx`) for dense regression data, keeping its order of
 * floating-point operations so the results are bit-identical (the 'optimal' schedule can
 * blow weights up to 1e13, where any reordering shows).
 *
 * Not ported (regression with dense data never reaches them): passive-aggressive
 * schedules, class weights (always 1.0), validation split / early stopping, the sparse
 * intercept decay (1.0 for dense data), verbose output.
 */
import type { Design, Vector } from './input.js';
import type { Loss } from './losses.js';
import { shuffleIndex } from './shuffle.js';
import { WeightVector } from './weight-vector.js';

/** Penalty codes of scikit-learn's `PENALTY_TYPES` (the order matters: `>= L2` scales). */
export const PenaltyType = { None: 0, L1: 1, L2: 2, ElasticNet: 3 } as const;
export type PenaltyType = (typeof PenaltyType)[keyof typeof PenaltyType];

/** Learning-rate codes of scikit-learn's `LEARNING_RATE_TYPES`. */
export const Schedule = { Constant: 1, Optimal: 2, InvScaling: 3, Adaptive: 4 } as const;
export type Schedule = (typeof Schedule)[keyof typeof Schedule];

/** Scalar arguments of `_plain_sgd`. */
export interface SgdConfig {
  loss: Loss;
  penaltyType: PenaltyType;
  alpha: number;
  l1Ratio: number;
  nIterNoChange: number;
  maxIter: number;
  /** -Infinity disables the tolerance check (scikit-learn's tol=None). */
  tol: number;
  fitIntercept: boolean;
  shuffle: boolean;
  seed: number;
  schedule: Schedule;
  eta0: number;
  powerT: number;
  /** Initial `t` (scikit-learn's `t_`). */
  t: number;
  /** int(average): averaging starts when t reaches it; 0 = off. */
  average: number;
}

/** What `_plain_sgd` returns besides the in-place weights. */
export interface SgdOutcome {
  intercept: number;
  averageIntercept: number;
  nIter: number;
}

const MAX_DLOSS = 1e12;

/**
 * Runs up to `cfg.maxIter` epochs over `X`, updating `weights` (and `averageWeights` when
 * averaging) in place. Throws RangeError on floating-point overflow, like scikit-learn's
 * ValueError; callers should pass copies if they want to keep the old state on error.
 */
export function plainSgd(
  weights: Float64Array,
  intercept: number,
  averageWeights: Float64Array | null,
  averageIntercept: number,
  X: Design,
  y: Vector,
  sampleWeight: Float64Array | null,
  cfg: SgdConfig,
): SgdOutcome {
  const nSamples = X.nSamples;
  const nFeatures = weights.length;
  const { loss, penaltyType, alpha, schedule, eta0, powerT, average, tol } = cfg;
  const w = new WeightVector(weights, averageWeights);
  const x = new Float64Array(nFeatures);

  // q and u: the cumulative L1 penalty of Tsuruoka et al.; local to one call, as in sklearn.
  const useL1 = penaltyType === PenaltyType.L1 || penaltyType === PenaltyType.ElasticNet;
  const q = useL1 ? new Float64Array(nFeatures) : null;
  let u = 0.0;

  let l1Ratio = cfg.l1Ratio;
  if (penaltyType === PenaltyType.L2) l1Ratio = 0.0;
  else if (penaltyType === PenaltyType.L1) l1Ratio = 1.0;

  let eta = eta0;
  let optimalInit = 0.0;
  if (schedule === Schedule.Optimal) {
    // Bottou's heuristic: t offset such that eta at the first sample is typw / dloss bound.
    const typw = Math.sqrt(1.0 / Math.sqrt(alpha));
    const d0 = loss.dloss(-typw, 1.0);
    const initialEta0 = typw / (d0 > 1.0 ? d0 : 1.0);
    optimalInit = 1.0 / (initialEta0 * alpha);
  }

  const index = cfg.shuffle ? identity(nSamples) : null;
  let t = cfg.t;
  let bestLoss = Infinity;
  let noImprovementCount = 0;
  let nIter = 0;

  for (let epoch = 0; epoch < cfg.maxIter; epoch++) {
    nIter = epoch + 1;
    let sumloss = 0.0;
    if (index !== null) shuffleIndex(index, cfg.seed);
    for (let k = 0; k < nSamples; k++) {
      const i = index === null ? k : index[k];
      X.load(i, x);
      const yi = y[i];
      const sw = sampleWeight === null ? 1.0 : sampleWeight[i];

      const p = w.dot(x) + intercept;
      if (schedule === Schedule.Optimal) eta = 1.0 / (alpha * (optimalInit + t - 1));
      else if (schedule === Schedule.InvScaling) eta = eta0 / powT(t, powerT);

      sumloss += loss.loss(p, yi);

      let dloss = loss.dloss(p, yi);
      // clip huge gradients (MAX_DLOSS) to avoid numerical instabilities
      if (dloss < -MAX_DLOSS) dloss = -MAX_DLOSS;
      else if (dloss > MAX_DLOSS) dloss = MAX_DLOSS;
      let update = -eta * dloss;
      update *= sw; // class_weight (1.0) * sample_weight

      if (penaltyType >= PenaltyType.L2) {
        // never scale to negative values when eta * alpha is too big: zero the weights
        const c = 1.0 - (1.0 - l1Ratio) * eta * alpha;
        w.scale(c > 0 ? c : 0);
      }
      if (update !== 0.0) {
        w.add(x, update);
        if (cfg.fitIntercept) intercept += update * 1.0; // intercept_decay = 1.0 (dense)
      }

      if (0 < average && average <= t) {
        // averaging includes samples whose update is 0
        w.addAverage(x, update, t - average + 1);
        averageIntercept += (intercept - averageIntercept) / (t - average + 1);
      }

      if (q !== null) {
        u += l1Ratio * eta * alpha;
        l1Penalty(w, q, u);
      }
      t += 1;
    }

    // floating-point under-/overflow check (on the raw weights, as sklearn)
    if (!Number.isFinite(intercept) || !allFinite(weights)) {
      throw new RangeError(
        `Floating-point under-/overflow occurred at epoch #${epoch + 1}. ` +
          'Scaling the input data or lowering eta0 / raising alpha might help.',
      );
    }

    if (tol > -Infinity && sumloss > bestLoss - tol * nSamples) noImprovementCount += 1;
    else noImprovementCount = 0;
    if (sumloss < bestLoss) bestLoss = sumloss;

    if (noImprovementCount >= cfg.nIterNoChange) {
      if (schedule === Schedule.Adaptive && eta > 1e-6) {
        eta = eta / 5;
        noImprovementCount = 0;
      } else {
        break;
      }
    }
  }

  w.resetWscale();
  return { intercept, averageIntercept, nIter };
}

/**
 * `l1penalty`: truncated-gradient L1 step (Tsuruoka, Tsujii & Ananiadou, 2009). Each weight
 * moves towards 0 by the penalty accumulated since it was last clipped, never across 0.
 * max/min are written as Cython expands them (`b > a ? b : a`), which fixes the sign of 0.
 */
function l1Penalty(w: WeightVector, q: Float64Array, u: number): void {
  const wscale = w.wscale;
  const wd = w.w;
  for (let j = 0; j < wd.length; j++) {
    const z = wd[j];
    if (wscale * z > 0.0) {
      const v = wd[j] - (u + q[j]) / wscale;
      wd[j] = v > 0.0 ? v : 0.0;
    } else if (wscale * z < 0.0) {
      const v = wd[j] + (u - q[j]) / wscale;
      wd[j] = v < 0.0 ? v : 0.0;
    }
    q[j] += wscale * (wd[j] - z);
  }
}

/**
 * t ** powerT. V8's Math.pow costs ~70 ns for a fractional exponent, most of a sample's time;
 * the common exponents go through sqrt (correctly rounded), which differs from C's pow by at
 * most an ulp or two (the 1e-9 bar of the golden tests is 10^6 times wider).
 */
function powT(t: number, powerT: number): number {
  if (powerT === 0.25) return Math.sqrt(Math.sqrt(t));
  if (powerT === 0.5) return Math.sqrt(t);
  return Math.pow(t, powerT);
}

function allFinite(a: Float64Array): boolean {
  for (let j = 0; j < a.length; j++) if (!Number.isFinite(a[j])) return false;
  return true;
}

function identity(n: number): Uint32Array {
  const idx = new Uint32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  return idx;
}
