/**
 * Exact ordinary least squares with intercept (what `sklearn.linear_model.LinearRegression`
 * returns), the reference the SGD models are compared with.
 *
 * One pass over the data accumulates the means and the centred co-moments XᵀX, Xᵀy with
 * West's weighted update (the stable form of Welford's algorithm), so neither a large
 * offset in the features nor 1e6 rows loses precision the way raw normal equations do.
 * The small d×d system is then equilibrated (unit diagonal) and solved by mathjs's LU
 * with partial pivoting.
 */
import { createRequire } from 'node:module';
import { checkVector, checkWeights, toDesign, type Matrix, type Vector } from './input.js';

type MathJs = typeof import('mathjs');

let mathjs: MathJs | undefined;
/** mathjs takes ~0.5 s to load: load it on first use, not when the package is imported. */
function math(): MathJs {
  mathjs ??= createRequire(import.meta.url)('mathjs') as MathJs;
  return mathjs;
}

/** Result of {@link leastSquares}. */
export interface LinearFit {
  coef: Float64Array;
  intercept: number;
}

/**
 * Fits `y ≈ X · coef + intercept` minimising the (weighted) sum of squared residuals.
 * @param X rows or `{ columns }` (read in place)
 * @param y targets
 * @param sampleWeight optional non-negative weights
 * @throws RangeError when the fit is not unique (a constant feature, collinear features,
 *   fewer samples than features + 1), TypeError/RangeError on malformed input.
 */
export function leastSquares(X: Matrix, y: Vector, sampleWeight?: Vector | null): LinearFit {
  const design = toDesign(X);
  const n = design.nSamples;
  const d = design.nFeatures;
  checkVector(y, n, 'y');
  const w = checkWeights(sampleWeight, n);

  const mx = new Float64Array(d);
  const dx = new Float64Array(d);
  const cxx = new Float64Array(d * d); // upper triangle used
  const cxy = new Float64Array(d);
  const x = new Float64Array(d);
  let my = 0;
  let sumW = 0;
  let used = 0;
  for (let i = 0; i < n; i++) {
    const wi = w === null ? 1 : w[i];
    if (wi === 0) continue;
    used++;
    design.load(i, x);
    sumW += wi;
    const r = wi / sumW;
    for (let a = 0; a < d; a++) {
      dx[a] = x[a] - mx[a];
      mx[a] += r * dx[a];
    }
    const dy = y[i] - my;
    my += r * dy;
    const ry = y[i] - my;
    for (let a = 0; a < d; a++) {
      const wa = wi * dx[a];
      for (let b = a; b < d; b++) cxx[a * d + b] += wa * (x[b] - mx[b]);
      cxy[a] += wa * ry;
    }
  }
  if (used < d + 1) {
    throw new RangeError(`least squares needs at least ${d + 1} samples with non-zero weight for ${d} features, got ${used}`);
  }

  // Equilibrate: A[a][b] = C[a][b] / (s_a s_b) with s_a = sqrt(C[a][a]).
  const s = new Float64Array(d);
  for (let a = 0; a < d; a++) {
    const v = cxx[a * d + a];
    if (!(v > 0)) throw new RangeError(`least squares: feature ${a} is constant, the fit is not unique`);
    s[a] = Math.sqrt(v);
  }
  const A: number[][] = [];
  const b: number[] = [];
  for (let a = 0; a < d; a++) {
    const row: number[] = [];
    for (let c = 0; c < d; c++) {
      const v = a <= c ? cxx[a * d + c] : cxx[c * d + a];
      row.push(v / (s[a] * s[c]));
    }
    A.push(row);
    b.push(cxy[a] / s[a]);
  }
  // A has unit diagonal (a correlation matrix): a pivot this small means the features are
  // collinear to working precision and the coefficients would be noise.
  const lu = math().lup(A);
  const U = lu.U as number[][];
  for (let a = 0; a < d; a++) {
    if (!(Math.abs(U[a][a]) > 64 * Number.EPSILON * d)) {
      throw new RangeError('least squares: features are collinear, the fit is not unique');
    }
  }
  const sol = math().lusolve(lu, b).toArray() as number[][];
  const coef = new Float64Array(d);
  let intercept = my;
  for (let a = 0; a < d; a++) {
    coef[a] = sol[a][0] / s[a];
    intercept -= coef[a] * mx[a];
  }
  return { coef, intercept };
}
