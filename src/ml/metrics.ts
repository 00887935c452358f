/**
 * Regression metrics with scikit-learn's definitions (`sklearn.metrics.r2_score`,
 * `mean_squared_error`, single output). Sums are compensated (Neumaier), so they can differ
 * from numpy's pairwise sums in the last bits, never more.
 */
import { checkVector, checkWeights, type Vector } from './input.js';

/** Neumaier-compensated running sum. */
class Sum {
  private s = 0;
  private c = 0;
  add(v: number): void {
    const t = this.s + v;
    if (Math.abs(this.s) >= Math.abs(v)) this.c += this.s - t + v;
    else this.c += v - t + this.s;
    this.s = t;
  }
  get value(): number {
    return this.s + this.c;
  }
}

function prepare(yTrue: Vector, yPred: Vector, sampleWeight: Vector | null | undefined) {
  if (yTrue === null || typeof yTrue !== 'object' || typeof yTrue.length !== 'number') {
    throw new TypeError('yTrue must be an array of numbers');
  }
  const n = yTrue.length;
  if (n === 0) throw new RangeError('yTrue is empty');
  checkVector(yTrue, n, 'yTrue');
  checkVector(yPred, n, 'yPred');
  const w = checkWeights(sampleWeight, n);
  return { n, w };
}

/** Weighted mean `sum(w * v) / sum(w)` (np.average); RangeError if the weights sum to 0. */
function average(n: number, value: (i: number) => number, w: Float64Array | null): number {
  const num = new Sum();
  const den = new Sum();
  for (let i = 0; i < n; i++) {
    const wi = w === null ? 1 : w[i];
    num.add(wi * value(i));
    den.add(wi);
  }
  if (den.value === 0) throw new RangeError("sample weights sum to zero, can't be normalized");
  return num.value / den.value;
}

/**
 * Coefficient of determination R² = 1 - Σw(y - ŷ)² / Σw(y - ȳ)².
 * As scikit-learn (force_finite): a constant `yTrue` gives 1 when predicted exactly, else 0;
 * fewer than two samples give NaN (R² is not defined).
 */
export function r2Score(yTrue: Vector, yPred: Vector, sampleWeight?: Vector | null): number {
  const { n, w } = prepare(yTrue, yPred, sampleWeight);
  if (n < 2) return NaN;
  const mean = average(n, (i) => yTrue[i], w);
  const num = new Sum();
  const den = new Sum();
  for (let i = 0; i < n; i++) {
    const wi = w === null ? 1 : w[i];
    const e = yTrue[i] - yPred[i];
    const d = yTrue[i] - mean;
    num.add(wi * e * e);
    den.add(wi * d * d);
  }
  const numerator = num.value;
  const denominator = den.value;
  if (denominator !== 0) return 1 - numerator / denominator;
  return numerator === 0 ? 1.0 : 0.0;
}

/** Mean squared error Σw(y - ŷ)² / Σw. */
export function meanSquaredError(yTrue: Vector, yPred: Vector, sampleWeight?: Vector | null): number {
  const { n, w } = prepare(yTrue, yPred, sampleWeight);
  return average(
    n,
    (i) => {
      const e = yTrue[i] - yPred[i];
      return e * e;
    },
    w,
  );
}
