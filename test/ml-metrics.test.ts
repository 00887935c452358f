import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { leastSquares, meanSquaredError, r2Score } from '../src/ml/index.js';

function near(actual: number, expected: number, tol: number, what = ''): void {
  assert.ok(Math.abs(actual - expected) <= tol, `${what} ${actual} vs ${expected}`);
}

describe('r2Score', () => {
  test('hand-computed value', () => {
    // y = [3, -0.5, 2, 7], ŷ = [2.5, 0, 2, 8]: SS_res = 1.5, mean 2.875, SS_tot = 29.1875
    near(r2Score([3, -0.5, 2, 7], [2.5, 0.0, 2, 8]), 1 - 1.5 / 29.1875, 1e-15);
    near(r2Score([3, -0.5, 2, 7], [2.5, 0.0, 2, 8]), 0.9486081370449679, 1e-15, 'sklearn doc example');
  });

  test('perfect prediction is 1, predicting the mean is 0, worse is negative', () => {
    const y = new Float64Array([1, 2, 3, 4]);
    assert.equal(r2Score(y, y), 1);
    assert.equal(r2Score(y, [2.5, 2.5, 2.5, 2.5]), 0);
    assert.ok(r2Score(y, [4, 3, 2, 1]) < 0);
  });

  test('weights act like repeated samples', () => {
    const y = [1, 4, 2, 8, 5];
    const p = [1.5, 3, 2.5, 7, 5.5];
    const w = [1, 3, 2, 1, 2];
    const yRep: number[] = [];
    const pRep: number[] = [];
    w.forEach((k, i) => {
      for (let r = 0; r < k; r++) {
        yRep.push(y[i]);
        pRep.push(p[i]);
      }
    });
    near(r2Score(y, p, w), r2Score(yRep, pRep), 1e-15);
    assert.notEqual(r2Score(y, p, w), r2Score(y, p));
  });

  test('constant yTrue: 1 if predicted exactly, else 0 (force_finite); fewer than 2 samples: NaN', () => {
    assert.equal(r2Score([2, 2, 2], [2, 2, 2]), 1);
    assert.equal(r2Score([2, 2, 2], [2, 2, 3]), 0);
    assert.ok(Number.isNaN(r2Score([1], [1])));
  });

  test('bad input', () => {
    assert.throws(() => r2Score([1, 2], [1]), /yPred has length 1, expected 2/);
    assert.throws(() => r2Score([1, Number.NaN], [1, 2]), RangeError);
    assert.throws(() => r2Score([1, 2], [1, 2], [1, -1]), /sampleWeight\[1\] is -1/);
    assert.throws(() => r2Score([], []), /empty/);
    assert.throws(() => r2Score(null as never, []), TypeError);
  });
});

describe('meanSquaredError', () => {
  test('values, weights, errors', () => {
    assert.equal(meanSquaredError([3, -0.5, 2, 7], [2.5, 0.0, 2, 8]), 0.375);
    assert.equal(meanSquaredError([1, 2], [1, 2]), 0);
    // weighted: (1*1 + 3*4) / 4
    assert.equal(meanSquaredError([0, 0], [1, 2], [1, 3]), 13 / 4);
    assert.throws(() => meanSquaredError([0, 0], [1, 2], [0, 0]), /sum to zero/);
    assert.throws(() => meanSquaredError([0, Infinity], [1, 2]), RangeError);
  });
});

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

describe('leastSquares', () => {
  test('recovers exact coefficients on noiseless data (rows and columns)', () => {
    const r = rng(1);
    const coef = [2.5, -1.25, 0.5];
    const X = Array.from({ length: 500 }, () => [r() * 10 - 5, r() * 2, r() * 100 - 50]);
    const y = X.map((row) => 4 + row[0] * coef[0] + row[1] * coef[1] + row[2] * coef[2]);
    for (const input of [X, { columns: [0, 1, 2].map((j) => Float64Array.from(X, (row) => row[j])) }]) {
      const fit = leastSquares(input, y);
      coef.forEach((c, j) => near(fit.coef[j], c, 1e-12, `coef[${j}]`));
      near(fit.intercept, 4, 1e-11, 'intercept');
    }
  });

  test('one feature, 1e6 rows, large offset: y = a0 + a1 x exactly', () => {
    const n = 1_000_000;
    const x = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      x[i] = 1e6 + (i % 1000) * 1e-3; // raw normal equations would lose ~12 digits here
      y[i] = -3 + 0.75 * x[i];
    }
    const fit = leastSquares({ columns: [x] }, y);
    near(fit.coef[0], 0.75, 1e-9, 'a1');
    near(fit.intercept, -3, 1e-3, 'a0'); // intercept is 1e6 away from the data: ~1e-9 * 1e6
  });

  test('equals the closed form cov(x, y) / var(x) on noisy data, and weights act like repeats', () => {
    const r = rng(2);
    const x = Array.from({ length: 200 }, () => r() * 4);
    const y = x.map((v) => 1 + 2 * v + (r() - 0.5));
    const mx = x.reduce((a, b) => a + b) / x.length;
    const my = y.reduce((a, b) => a + b) / y.length;
    let sxy = 0;
    let sxx = 0;
    x.forEach((v, i) => {
      sxy += (v - mx) * (y[i] - my);
      sxx += (v - mx) * (v - mx);
    });
    const fit = leastSquares(x.map((v) => [v]), y);
    near(fit.coef[0], sxy / sxx, 1e-12);
    near(fit.intercept, my - (sxy / sxx) * mx, 1e-12);

    const w = x.map((_, i) => (i % 3) + 1);
    const xr: number[][] = [];
    const yr: number[] = [];
    w.forEach((k, i) => {
      for (let j = 0; j < k; j++) {
        xr.push([x[i]]);
        yr.push(y[i]);
      }
    });
    const weighted = leastSquares(x.map((v) => [v]), y, w);
    const repeated = leastSquares(xr, yr);
    near(weighted.coef[0], repeated.coef[0], 1e-12);
    near(weighted.intercept, repeated.intercept, 1e-12);
    assert.ok(Math.abs(weighted.coef[0] - fit.coef[0]) > 1e-6);
  });

  test('non-unique fits are errors', () => {
    assert.throws(() => leastSquares([[1], [1], [1]], [1, 2, 3]), /feature 0 is constant/);
    assert.throws(() => leastSquares([[1, 2]], [1]), /at least 3 samples/);
    assert.throws(
      () => leastSquares([[1, 2], [2, 4], [3, 6], [4, 8]], [1, 2, 3, 5]),
      (e: unknown) => e instanceof RangeError && /collinear|singular/.test(e.message),
    );
    assert.throws(() => leastSquares([[1], [2]], [1]), /y has length 1, expected 2/);
  });
});
