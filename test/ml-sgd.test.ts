import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  NotFittedError,
  SGDRegressor,
  SGD_REGRESSOR_DEFAULTS,
  leastSquares,
  r2Score,
  type SGDRegressorOptions,
} from '../src/ml/index.js';

// ---------------------------------------------------------------------------------------
// scikit-learn 1.2.1 golden states (test/fixtures/sgd-sklearn-golden.json)
// Compiled to dist/test/, so ../../test/fixtures points back at the source fixture.
// ---------------------------------------------------------------------------------------

interface GoldenStep {
  coef: number[];
  intercept: number[];
  t: number;
  predict_first3: number[];
}
interface GoldenCase {
  id: number;
  params: Record<string, unknown>;
  X: number[][];
  y: number[];
  sample_weight: number[] | null;
  batch_size: number;
  steps: GoldenStep[];
  fit_max_iter_5?: { coef: number[]; intercept: number[]; t: number; n_iter: number };
}

const FIXTURE = new URL('../../test/fixtures/sgd-sklearn-golden.json', import.meta.url);
assert.ok(existsSync(FIXTURE), `fixture not found at ${fileURLToPath(FIXTURE)}`);
const golden = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { sklearn_version: string; cases: GoldenCase[] };

const SNAKE_TO_CAMEL: Record<string, keyof SGDRegressorOptions> = {
  loss: 'loss',
  penalty: 'penalty',
  alpha: 'alpha',
  l1_ratio: 'l1Ratio',
  fit_intercept: 'fitIntercept',
  max_iter: 'maxIter',
  tol: 'tol',
  shuffle: 'shuffle',
  epsilon: 'epsilon',
  learning_rate: 'learningRate',
  eta0: 'eta0',
  power_t: 'powerT',
  average: 'average',
  random_state: 'randomState',
  n_iter_no_change: 'nIterNoChange',
  warm_start: 'warmStart',
};

function optionsFrom(params: Record<string, unknown>): SGDRegressorOptions {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) {
    const name = SNAKE_TO_CAMEL[k];
    assert.ok(name, `fixture parameter ${k} has no camelCase mapping`);
    out[name] = v; // penalty: null means no penalty, as in scikit-learn
  }
  return out as SGDRegressorOptions;
}

/** Worst relative error seen against scikit-learn (reported by the last test). */
const maxRelErr = { fixture: 0, inline: 0 };
let maxPredRelErr = 0;
type Source = keyof typeof maxRelErr;

/** Equal within 1e-9 relative, or 1e-12 absolute near zero (the fixture README's bar). */
function assertClose(actual: number, expected: number, what: string, source: Source = 'fixture'): void {
  const err = Math.abs(actual - expected);
  maxRelErr[source] = Math.max(maxRelErr[source], expected !== 0 ? err / Math.abs(expected) : err);
  assert.ok(err <= Math.max(1e-12, 1e-9 * Math.abs(expected)), `${what}: got ${actual}, sklearn ${expected} (|diff| ${err})`);
}

function assertCloseVec(actual: ArrayLike<number>, expected: number[], what: string, source: Source = 'fixture'): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let j = 0; j < expected.length; j++) assertClose(actual[j], expected[j], `${what}[${j}]`, source);
}

/**
 * Without 'invscaling' the update uses only + - * / and sqrt, which IEEE 754 rounds the
 * same everywhere: following _plain_sgd's order of operations must then give sklearn's
 * doubles exactly (pow() may differ by an ulp between libms, so invscaling only gets 1e-9).
 */
function assertBitExact(c: GoldenCase, actual: ArrayLike<number>, intercept: number, exp: { coef: number[]; intercept: number[] }, what: string): void {
  if (c.params.learning_rate === 'invscaling') return;
  for (let j = 0; j < exp.coef.length; j++) {
    assert.ok(actual[j] === exp.coef[j], `${what} coef[${j}] not bit-exact: ${actual[j]} vs ${exp.coef[j]}`);
  }
  assert.ok(intercept === exp.intercept[0], `${what} intercept not bit-exact: ${intercept} vs ${exp.intercept[0]}`);
}

/** Columns of rows [a, b) as zero-copy subarrays of full-length columns. */
function columnsOf(full: Float64Array[], a: number, b: number): { columns: Float64Array[] } {
  return { columns: full.map((c) => c.subarray(a, b)) };
}

function toColumns(X: number[][]): Float64Array[] {
  const d = X[0].length;
  return Array.from({ length: d }, (_, j) => Float64Array.from(X, (row) => row[j]));
}

function checkPrediction(m: SGDRegressor, c: GoldenCase, step: GoldenStep, what: string): void {
  const pred = m.predict(c.X.slice(0, 3));
  const coef = m.coef;
  for (let i = 0; i < 3; i++) {
    // numpy's BLAS sums in its own order: scale the tolerance by the size of the terms.
    let mag = Math.abs(m.intercept);
    for (let j = 0; j < coef.length; j++) mag += Math.abs(coef[j] * c.X[i][j]);
    const err = Math.abs(pred[i] - step.predict_first3[i]);
    maxPredRelErr = Math.max(maxPredRelErr, err / mag);
    assert.ok(err <= 1e-12 * mag, `${what} predict[${i}]: ${pred[i]} vs sklearn ${step.predict_first3[i]}`);
  }
}

function runGolden(c: GoldenCase, form: 'rows' | 'columns'): void {
  const m = new SGDRegressor(optionsFrom(c.params));
  const cols = toColumns(c.X);
  const bs = c.batch_size;
  c.steps.forEach((step, k) => {
    const a = k * bs;
    const b = a + bs;
    const X = form === 'rows' ? c.X.slice(a, b) : columnsOf(cols, a, b);
    const sw = c.sample_weight === null ? undefined : Float64Array.from(c.sample_weight.slice(a, b));
    assert.equal(m.partialFit(X, c.y.slice(a, b), sw), m, 'partialFit returns this');
    const what = `case ${c.id} (${form}) step ${k}`;
    assertCloseVec(m.coef, step.coef, `${what} coef`);
    assertClose(m.intercept, step.intercept[0], `${what} intercept`);
    assertBitExact(c, m.coef, m.intercept, step, what);
    assert.equal(m.t, step.t, `${what} t`);
    assert.equal(m.nIter, 1, `${what} nIter`);
    checkPrediction(m, c, step, what);
  });
}

describe('SGDRegressor equals scikit-learn 1.2.1 after every partial_fit', () => {
  test('fixture is the 1.2.1 one with 64 cases', () => {
    assert.equal(golden.sklearn_version, '1.2.1');
    assert.equal(golden.cases.length, 64);
  });
  for (const c of golden.cases) {
    const label = `case ${c.id}: ${c.params.loss} ${c.params.penalty} ${c.params.learning_rate} average=${c.params.average}`;
    test(`${label} (rows)`, () => runGolden(c, 'rows'));
    test(`${label} (columns)`, () => runGolden(c, 'columns'));
  }
});

describe('SGDRegressor.fit equals scikit-learn fit(max_iter=5, tol=None)', () => {
  const cases = golden.cases.filter((c) => c.fit_max_iter_5 !== undefined);
  test('fixture has fit cases', () => assert.ok(cases.length >= 10));
  for (const c of cases) {
    for (const form of ['rows', 'columns'] as const) {
      test(`case ${c.id} (${form})`, () => {
        const exp = c.fit_max_iter_5!;
        const X = form === 'rows' ? c.X : { columns: toColumns(c.X) };
        const m = new SGDRegressor({ ...optionsFrom(c.params), maxIter: 5, tol: null });
        assert.equal(m.fit(X, c.y, c.sample_weight ?? undefined), m, 'fit returns this');
        assertCloseVec(m.coef, exp.coef, `case ${c.id} fit coef`);
        assertClose(m.intercept, exp.intercept[0], `case ${c.id} fit intercept`);
        assertBitExact(c, m.coef, m.intercept, exp, `case ${c.id} fit`);
        assert.equal(m.t, exp.t);
        assert.equal(m.nIter, exp.n_iter);
      });
    }
  }
});

// ---------------------------------------------------------------------------------------
// More scikit-learn 1.2.1 states (Debian python3-sklearn), for what the shared fixture
// does not cover: fit() stopping on tol for each schedule, 'adaptive' in fit, warm_start,
// zero sample weights with average=N, wscale resets (eta * alpha = 0.5). Generated by:
//
// import json, warnings
// import numpy as np
// from sklearn.linear_model import SGDRegressor
// warnings.simplefilter("ignore")
// n, d = 120, 3
// X = np.array([[((i * 37 + j * 11) % 101) / 50 - 1 for j in range(d)] for i in range(n)])
// y = np.array([X[i, 0] * 1.5 - X[i, 1] * 2.0 + X[i, 2] * 0.5 + 3 + (((i * 13) % 17) / 17 - 0.5) for i in range(n)])  # no BLAS: same doubles in JS
// sw = np.array([0.0 if i % 10 == 0 else 0.5 + (i % 4) / 2 for i in range(n)])
// scenarios = [
//     ("fit", dict(shuffle=False), False, 1),
//     ("fit", dict(shuffle=False, learning_rate="adaptive", eta0=0.05, n_iter_no_change=3), False, 1),
//     ("fit", dict(shuffle=False, learning_rate="optimal", loss="huber", penalty="elasticnet", alpha=0.01), False, 1),
//     ("fit", dict(shuffle=False, learning_rate="constant", eta0=0.02, average=10, tol=1e-4), True, 1),
//     ("fit", dict(shuffle=False, warm_start=True, max_iter=3, tol=None, penalty="l1", alpha=0.01), False, 2),
//     ("partial_fit", dict(shuffle=False, learning_rate="constant", eta0=0.1, alpha=5.0), False, 4),
// ]
// out = []
// for mode, kw, weighted, calls in scenarios:
//     m = SGDRegressor(**kw)
//     for k in range(calls):
//         if mode == "fit":
//             m.fit(X, y, sample_weight=sw if weighted else None)
//         else:
//             s = slice(k * 30, (k + 1) * 30)
//             m.partial_fit(X[s], y[s])
//     out.append(dict(mode=mode, params=kw, weighted=weighted, calls=calls, coef=m.coef_.tolist(),
//                     intercept=float(m.intercept_[0]), t=float(m.t_), n_iter=int(m.n_iter_)))
// for o in out: print(json.dumps(o) + ",")
// ---------------------------------------------------------------------------------------

interface InlineCase {
  mode: 'fit' | 'partial_fit';
  params: Record<string, unknown>;
  weighted: boolean;
  calls: number;
  coef: number[];
  intercept: number;
  t: number;
  n_iter: number;
}

const INLINE_CASES: InlineCase[] = [
  {"mode": "fit", "params": {"shuffle": false}, "weighted": false, "calls": 1, "coef": [1.2181067838303063, -1.597356063333595, 0.25672028334563185], "intercept": 2.961532239448724, "t": 7681.0, "n_iter": 64},
  {"mode": "fit", "params": {"shuffle": false, "learning_rate": "adaptive", "eta0": 0.05, "n_iter_no_change": 3}, "weighted": false, "calls": 1, "coef": [1.5454099622779471, -2.036741952145899, 0.5294646502232666], "intercept": 2.9670817192347587, "t": 3601.0, "n_iter": 30},
  {"mode": "fit", "params": {"shuffle": false, "learning_rate": "optimal", "loss": "huber", "penalty": "elasticnet", "alpha": 0.01}, "weighted": false, "calls": 1, "coef": [0.7217090236620323, -1.1712739624476636, 0.32900591261459433], "intercept": 2.833548938816028, "t": 1081.0, "n_iter": 9},
  {"mode": "fit", "params": {"shuffle": false, "learning_rate": "constant", "eta0": 0.02, "average": 10, "tol": 0.0001}, "weighted": true, "calls": 1, "coef": [1.2708649210909229, -1.7312510597590542, 0.37745636777707187], "intercept": 2.9250626426870947, "t": 2281.0, "n_iter": 19},
  {"mode": "fit", "params": {"shuffle": false, "warm_start": true, "max_iter": 3, "tol": null, "penalty": "l1", "alpha": 0.01}, "weighted": false, "calls": 2, "coef": [0.368680796287295, -0.5915949470641902, -0.058420438439785755], "intercept": 2.6165868849690566, "t": 361.0, "n_iter": 3},
  {"mode": "partial_fit", "params": {"shuffle": false, "learning_rate": "constant", "eta0": 0.1, "alpha": 5.0}, "weighted": false, "calls": 4, "coef": [-0.023496151463106428, -0.04727251062027262, -0.00865830245454103], "intercept": 2.756485763513591, "t": 121.0, "n_iter": 1},
];

describe('SGDRegressor equals scikit-learn on fit / warm_start / wscale-reset scenarios', () => {
  const n = 120;
  const X = Array.from({ length: n }, (_, i) => [0, 1, 2].map((j) => ((i * 37 + j * 11) % 101) / 50 - 1));
  const y = X.map((r, i) => r[0] * 1.5 - r[1] * 2.0 + r[2] * 0.5 + 3 + (((i * 13) % 17) / 17 - 0.5));
  const sw = X.map((_, i) => (i % 10 === 0 ? 0.0 : 0.5 + (i % 4) / 2));
  for (const c of INLINE_CASES) {
    test(`${c.mode} ${JSON.stringify(c.params)}${c.weighted ? ' weighted' : ''}`, () => {
      const m = new SGDRegressor(optionsFrom(c.params));
      for (let k = 0; k < c.calls; k++) {
        if (c.mode === 'fit') m.fit(X, y, c.weighted ? sw : undefined);
        else m.partialFit(X.slice(k * 30, (k + 1) * 30), y.slice(k * 30, (k + 1) * 30));
      }
      assert.equal(m.nIter, c.n_iter, 'n_iter_');
      assert.equal(m.t, c.t, 't_');
      assertCloseVec(m.coef, c.coef, 'coef', 'inline');
      assertClose(m.intercept, c.intercept, 'intercept', 'inline');
    });
  }
});

// ---------------------------------------------------------------------------------------
// An independent, deliberately naive reference (like asgd() in scikit-learn's test_sgd.py)
// ---------------------------------------------------------------------------------------

interface RefOptions {
  eta: number;
  alpha: number;
  l2: boolean;
  fitIntercept: boolean;
  /** 0: no averaging; N: average the iterates from the N-th sample on. */
  average: number;
}

/** Plain SGD on the squared error with explicit vectors, no scaling tricks. */
function referenceSgd(X: number[][], y: number[], o: RefOptions): { coef: number[]; intercept: number } {
  const d = X[0].length;
  let w = new Array<number>(d).fill(0);
  let b = 0;
  let aw = new Array<number>(d).fill(0);
  let ab = 0;
  for (let i = 0; i < X.length; i++) {
    const t = i + 1;
    const p = X[i].reduce((s, xj, j) => s + xj * w[j], 0) + b;
    const grad = p - y[i];
    const decay = o.l2 ? 1 - o.eta * o.alpha : 1;
    w = w.map((wj, j) => wj * decay - o.eta * grad * X[i][j]);
    if (o.fitIntercept) b -= o.eta * grad;
    if (o.average > 0 && t >= o.average) {
      const k = t - o.average + 1; // number of iterates averaged so far
      aw = aw.map((a, j) => a + (w[j] - a) / k);
      ab += (b - ab) / k;
    }
  }
  if (o.average > 0 && X.length >= o.average) return { coef: aw, intercept: ab };
  return { coef: w, intercept: b };
}

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
}

function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

function makeData(seed: number, n: number, coef: number[], intercept: number, noise = 0.1) {
  const r = rng(seed);
  const X = Array.from({ length: n }, () => coef.map(() => gaussian(r)));
  const y = X.map((row) => row.reduce((s, v, j) => s + v * coef[j], intercept) + noise * gaussian(r));
  return { X, y };
}

describe('SGDRegressor agrees with a naive reference SGD', () => {
  const { X, y } = makeData(7, 300, [1.5, -2, 0.5], 3);
  const variants: Array<{ name: string; opts: SGDRegressorOptions; ref: RefOptions }> = [];
  for (const penalty of ['l2', null] as const) {
    for (const average of [false, true, 40] as const) {
      for (const fitIntercept of [true, false]) {
        const avg = average === false ? 0 : average === true ? 1 : average;
        variants.push({
          name: `penalty=${penalty} average=${average} fitIntercept=${fitIntercept}`,
          opts: { learningRate: 'constant', eta0: 0.01, alpha: 0.01, penalty, average, fitIntercept, shuffle: false },
          ref: { eta: 0.01, alpha: 0.01, l2: penalty === 'l2', fitIntercept, average: avg },
        });
      }
    }
  }
  for (const v of variants) {
    test(v.name, () => {
      const m = new SGDRegressor(v.opts);
      for (let a = 0; a < X.length; a += 75) {
        m.partialFit(X.slice(a, a + 75), y.slice(a, a + 75));
        const ref = referenceSgd(X.slice(0, a + 75), y.slice(0, a + 75), v.ref);
        const coef = m.coef;
        for (let j = 0; j < 3; j++) {
          assert.ok(Math.abs(coef[j] - ref.coef[j]) <= 1e-12 * Math.max(1, Math.abs(ref.coef[j])), `coef[${j}] after ${a + 75}: ${coef[j]} vs ${ref.coef[j]}`);
        }
        assert.ok(Math.abs(m.intercept - ref.intercept) <= 1e-12 * Math.max(1, Math.abs(ref.intercept)), `intercept after ${a + 75}`);
      }
    });
  }
  test('average = N: coef switches to the average only once N samples were seen (sample by sample)', () => {
    const m = new SGDRegressor({ learningRate: 'constant', eta0: 0.01, alpha: 0.01, average: 10, shuffle: false });
    for (let i = 0; i < 15; i++) {
      m.partialFit([X[i]], [y[i]]);
      const ref = referenceSgd(X.slice(0, i + 1), y.slice(0, i + 1), { eta: 0.01, alpha: 0.01, l2: true, fitIntercept: true, average: 10 });
      const coef = m.coef;
      for (let j = 0; j < 3; j++) assert.ok(Math.abs(coef[j] - ref.coef[j]) <= 1e-14, `after ${i + 1} samples coef[${j}]: ${coef[j]} vs ${ref.coef[j]}`);
      assert.ok(Math.abs(m.intercept - ref.intercept) <= 1e-14, `after ${i + 1} samples intercept`);
    }
  });

  test('the reference itself is not trivially matched: averaging changes the answer', () => {
    const plain = referenceSgd(X, y, { eta: 0.01, alpha: 0.01, l2: true, fitIntercept: true, average: 0 });
    const averaged = referenceSgd(X, y, { eta: 0.01, alpha: 0.01, l2: true, fitIntercept: true, average: 1 });
    assert.ok(Math.abs(plain.coef[0] - averaged.coef[0]) > 1e-3);
  });
});

// ---------------------------------------------------------------------------------------
// Semantics beyond the fixture
// ---------------------------------------------------------------------------------------

describe('SGDRegressor semantics', () => {
  const { X, y } = makeData(11, 200, [2, -1], 0.5);

  test('defaults are scikit-learn 1.2.1 SGDRegressor defaults', () => {
    assert.deepEqual(new SGDRegressor().getParams(), {
      loss: 'squared_error',
      penalty: 'l2',
      alpha: 1e-4,
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
    assert.deepEqual(new SGDRegressor().getParams(), { ...SGD_REGRESSOR_DEFAULTS });
  });

  test("penalty 'none' (deprecated spelling) is the same as null", () => {
    const a = new SGDRegressor({ penalty: 'none', shuffle: false }).partialFit(X, y);
    const b = new SGDRegressor({ penalty: null, shuffle: false }).partialFit(X, y);
    const c = new SGDRegressor({ penalty: 'l2', alpha: 0.1, shuffle: false }).partialFit(X, y);
    assert.deepEqual(a.coef, b.coef);
    assert.notDeepEqual(a.coef, c.coef);
  });

  test("partialFit: 'adaptive' never adapts (max_iter=1), so it equals 'constant'", () => {
    const a = new SGDRegressor({ learningRate: 'adaptive', eta0: 0.02, shuffle: false });
    const c = new SGDRegressor({ learningRate: 'constant', eta0: 0.02, shuffle: false });
    const i = new SGDRegressor({ learningRate: 'invscaling', eta0: 0.02, shuffle: false });
    for (let k = 0; k < 5; k++) {
      a.partialFit(X, y);
      c.partialFit(X, y);
      i.partialFit(X, y);
    }
    assert.deepEqual(a.coef, c.coef);
    assert.equal(a.intercept, c.intercept);
    assert.notDeepEqual(a.coef, i.coef);
  });

  test('t accumulates over partialFit calls and restarts at 1 in fit', () => {
    const m = new SGDRegressor({ shuffle: false });
    m.partialFit(X.slice(0, 30), y.slice(0, 30));
    assert.equal(m.t, 31);
    m.partialFit(X.slice(30, 100), y.slice(30, 100));
    assert.equal(m.t, 101);
    m.fit(X, y);
    assert.equal(m.t, 1 + m.nIter * X.length);
  });

  test("fit: 'adaptive' divides eta by 5 after nIterNoChange bad epochs and stops once eta <= 1e-6", () => {
    // tol so large that every epoch after the first counts as "no improvement".
    const eta0 = 0.01;
    const opts: SGDRegressorOptions = { learningRate: 'adaptive', eta0, penalty: null, shuffle: false, tol: 1e9, nIterNoChange: 1, maxIter: 100 };
    const m = new SGDRegressor(opts).fit(X, y);
    // sklearn: epochs 1, 2 at eta0, then eta/5 each epoch; at eta = 6.4e-7 (<= 1e-6) it stops.
    const etas = [eta0, eta0];
    for (let e = eta0; e > 1e-6; ) etas.push((e = e / 5));
    assert.equal(m.nIter, etas.length);
    assert.equal(m.nIter, 8);
    // Replay the same epochs with one constant-rate partialFit per epoch (no penalty, so the
    // weight scale stays 1 and the replay is exact).
    let r = new SGDRegressor({ learningRate: 'constant', eta0, penalty: null, shuffle: false });
    for (const eta of etas) {
      const json = r.toJSON();
      json.params.eta0 = eta;
      r = SGDRegressor.fromJSON(json).partialFit(X, y);
    }
    assert.deepEqual(m.coef, r.coef);
    assert.equal(m.intercept, r.intercept);
    assert.equal(m.t, r.t);
  });

  test('fit stops on tol like sklearn: result equals fit(maxIter = nIter, tol = null)', () => {
    const opts: SGDRegressorOptions = { shuffle: false, learningRate: 'invscaling', eta0: 0.01, maxIter: 1000 };
    const m = new SGDRegressor(opts).fit(X, y);
    assert.ok(m.nIter > 1 && m.nIter < 1000, `nIter ${m.nIter}`);
    const ref = new SGDRegressor({ ...opts, maxIter: m.nIter, tol: null }).fit(X, y);
    assert.deepEqual(m.coef, ref.coef);
    assert.equal(m.intercept, ref.intercept);
    const longer = new SGDRegressor({ ...opts, maxIter: m.nIter + 1, tol: null }).fit(X, y);
    assert.notDeepEqual(m.coef, longer.coef);
  });

  test("fit's stopping rule: nIterNoChange epochs with loss > best - tol * nSamples", () => {
    // Constant rate, no penalty: one partialFit per sample replays fit exactly, so the test
    // can measure each epoch's summed training loss (before each update) on its own.
    const n = X.length;
    const base: SGDRegressorOptions = { learningRate: 'constant', eta0: 0.001, penalty: null, shuffle: false };
    const tol = 1e-4;
    const nIterNoChange = 3;
    const replay = new SGDRegressor(base);
    let best = Infinity;
    let bad = 0;
    let expected = 0;
    for (let epoch = 1; epoch <= 200 && expected === 0; epoch++) {
      let sumloss = 0;
      for (let i = 0; i < n; i++) {
        const p = replay.isFitted ? replay.predict([X[i]])[0] : 0;
        sumloss += 0.5 * (p - y[i]) * (p - y[i]);
        replay.partialFit([X[i]], [y[i]]);
      }
      bad = sumloss > best - tol * n ? bad + 1 : 0;
      best = Math.min(best, sumloss);
      if (bad >= nIterNoChange) expected = epoch;
    }
    assert.ok(expected > nIterNoChange + 1 && expected < 200, `expected stop ${expected}`);
    const m = new SGDRegressor({ ...base, tol, nIterNoChange, maxIter: 200 }).fit(X, y);
    assert.equal(m.nIter, expected);
    assert.deepEqual(m.coef, replay.coef);
    assert.equal(m.intercept, replay.intercept);
  });

  test('fit emits a ConvergenceWarning when maxIter is reached with tol set', async () => {
    const seen: string[] = [];
    const onWarning = (w: Error) => seen.push(w.name);
    process.on('warning', onWarning);
    try {
      new SGDRegressor({ shuffle: false, maxIter: 2 }).fit(X, y);
      new SGDRegressor({ shuffle: false, maxIter: 2, tol: null }).fit(X, y);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    assert.deepEqual(seen, ['ConvergenceWarning']);
  });

  test('fit restarts unless warmStart', () => {
    const cold = new SGDRegressor({ shuffle: false, maxIter: 3, tol: null });
    cold.fit(X, y);
    const first = cold.coef;
    cold.fit(X, y);
    assert.deepEqual(cold.coef, first);
    const warm = new SGDRegressor({ shuffle: false, maxIter: 3, tol: null, warmStart: true });
    warm.fit(X, y).fit(X, y);
    assert.notDeepEqual(warm.coef, first);
    assert.equal(warm.t, 1 + 3 * X.length);
  });

  test('shuffle: same randomState gives the same model, another one a different model', () => {
    const fit = (randomState: number | null) =>
      new SGDRegressor({ randomState, maxIter: 3, tol: null }).fit(X, y);
    assert.deepEqual(fit(42).coef, fit(42).coef);
    assert.notDeepEqual(fit(42).coef, fit(43).coef);
    assert.notDeepEqual(fit(42).coef, new SGDRegressor({ shuffle: false, maxIter: 3, tol: null }).fit(X, y).coef);
  });

  test('shuffled fit converges to the least-squares solution', () => {
    const m = new SGDRegressor({ randomState: 0 }).fit(X, y);
    const ls = leastSquares(X, y);
    for (let j = 0; j < 2; j++) assert.ok(Math.abs(m.coef[j] - ls.coef[j]) < 0.02, `coef[${j}] ${m.coef[j]} vs ${ls.coef[j]}`);
    assert.ok(Math.abs(m.intercept - ls.intercept) < 0.02);
    assert.ok(m.score(X, y) > 0.99);
  });

  test('score equals r2Score of the predictions (with and without weights)', () => {
    const m = new SGDRegressor({ shuffle: false, maxIter: 20, tol: null }).fit(X, y);
    const w = X.map((_, i) => 0.5 + (i % 3));
    const pred = m.predict(X);
    assert.equal(m.score(X, y), r2Score(y, pred));
    assert.equal(m.score(X, y, w), r2Score(y, pred, w));
    assert.notEqual(m.score(X, y, w), m.score(X, y));
    assert.ok(m.score(X, y) > 0.9 && m.score(X, y) < 1);
  });

  test('a single number as sampleWeight applies to every sample', () => {
    const opts: SGDRegressorOptions = { shuffle: false };
    const a = new SGDRegressor(opts).partialFit(X, y, 0.5);
    const b = new SGDRegressor(opts).partialFit(X, y, X.map(() => 0.5));
    const c = new SGDRegressor(opts).partialFit(X, y);
    assert.deepEqual(a.coef, b.coef);
    assert.notDeepEqual(a.coef, c.coef);
    assert.throws(() => new SGDRegressor(opts).partialFit(X, y, -1), /sampleWeight is -1/);
  });

  test('a zero sample weight skips the update (only t advances)', () => {
    const w = X.map((_, i) => (i % 2 === 0 ? 1 : 0));
    const weighted = new SGDRegressor({ learningRate: 'constant', penalty: null, shuffle: false }).partialFit(X, y, w);
    const even = new SGDRegressor({ learningRate: 'constant', penalty: null, shuffle: false });
    // constant eta and no penalty: a zero-weight sample changes nothing but t
    even.partialFit(X.filter((_, i) => i % 2 === 0), y.filter((_, i) => i % 2 === 0));
    assert.deepEqual(weighted.coef, even.coef);
    assert.equal(weighted.intercept, even.intercept);
    assert.equal(weighted.t, X.length + 1);
  });
});

describe('SGDRegressor columns input', () => {
  const { X, y } = makeData(5, 120, [0.7, -0.3, 1.1], -1);

  test('gives exactly the rows result', () => {
    const cols = toColumns(X);
    const opts: SGDRegressorOptions = { shuffle: false, average: 10, penalty: 'elasticnet' };
    const a = new SGDRegressor(opts).partialFit(X, y).partialFit(X, y);
    const b = new SGDRegressor(opts).partialFit({ columns: cols }, y).partialFit({ columns: cols }, y);
    assert.deepEqual(a.coef, b.coef);
    assert.equal(a.intercept, b.intercept);
    assert.deepEqual(a.predict(X), b.predict({ columns: cols }));
  });

  test('columns are read in place, element by element, never copied', () => {
    const cols = toColumns(X);
    const otherAccess: string[] = [];
    let indexReads = 0;
    const spied = cols.map(
      (c) =>
        new Proxy(c, {
          get(target, prop) {
            if (typeof prop === 'string' && /^\d+$/.test(prop)) indexReads++;
            else if (prop !== 'length') otherAccess.push(String(prop));
            const v = Reflect.get(target, prop, target);
            return typeof v === 'function' ? v.bind(target) : v;
          },
        }),
    );
    const m = new SGDRegressor({ shuffle: false }).partialFit({ columns: spied }, y);
    // No slice/subarray/set/iterator: only indexed reads (validation pass + one epoch).
    assert.deepEqual(otherAccess, []);
    assert.equal(indexReads, 2 * X.length * cols.length);
    // And the model really used the live data: changing a value changes the next fit.
    cols[0][0] += 100;
    const changed = new SGDRegressor({ shuffle: false }).partialFit({ columns: cols }, y);
    assert.notDeepEqual(changed.coef, m.coef);
  });
});

describe('SGDRegressor toJSON / fromJSON', () => {
  const { X, y } = makeData(3, 256, [1, -2, 0.25], 2);
  const w = X.map((_, i) => 0.2 + ((i * 7) % 10) / 5);
  const configs: SGDRegressorOptions[] = [
    { shuffle: false },
    { shuffle: false, average: true, penalty: 'l1' },
    { shuffle: false, average: 50, penalty: 'elasticnet', loss: 'huber' },
    { shuffle: false, learningRate: 'optimal', loss: 'epsilon_insensitive', average: 300 },
    { randomState: 9, loss: 'squared_epsilon_insensitive', fitIntercept: false },
  ];
  for (const opts of configs) {
    test(`round trip then continue == uninterrupted (${JSON.stringify(opts)})`, () => {
      const batches = [0, 64, 128, 192];
      const full = new SGDRegressor(opts);
      const first = new SGDRegressor(opts);
      for (const a of batches.slice(0, 2)) {
        full.partialFit(X.slice(a, a + 64), y.slice(a, a + 64), w.slice(a, a + 64));
        first.partialFit(X.slice(a, a + 64), y.slice(a, a + 64), w.slice(a, a + 64));
      }
      const restored = SGDRegressor.fromJSON(JSON.parse(JSON.stringify(first)));
      assert.deepEqual(restored.getParams(), first.getParams());
      assert.deepEqual(Array.from(restored.coef), Array.from(first.coef));
      assert.equal(restored.t, first.t);
      for (const a of batches.slice(2)) {
        full.partialFit(X.slice(a, a + 64), y.slice(a, a + 64), w.slice(a, a + 64));
        restored.partialFit(X.slice(a, a + 64), y.slice(a, a + 64), w.slice(a, a + 64));
      }
      const fc = full.coef;
      const rc = restored.coef;
      for (let j = 0; j < fc.length; j++) assert.ok(fc[j] === rc[j], `coef[${j}] ${fc[j]} vs ${rc[j]}`);
      assert.ok(full.intercept === restored.intercept);
      assert.equal(full.t, restored.t);
      assert.equal(JSON.stringify(full), JSON.stringify(restored));
    });
  }

  test('the averaged state is part of the JSON (dropping it changes the continuation)', () => {
    const m = new SGDRegressor({ shuffle: false, average: true }).partialFit(X.slice(0, 64), y.slice(0, 64));
    const json = m.toJSON();
    assert.ok(json.state && json.state.averageCoef && json.state.averageCoef.length === 3);
    const tampered = structuredClone(json);
    tampered.state!.averageCoef = [0, 0, 0];
    const a = SGDRegressor.fromJSON(json).partialFit(X.slice(64, 128), y.slice(64, 128));
    const b = SGDRegressor.fromJSON(tampered).partialFit(X.slice(64, 128), y.slice(64, 128));
    assert.notDeepEqual(a.coef, b.coef);
  });

  test('unfitted model round-trips; malformed documents are rejected', () => {
    const m = SGDRegressor.fromJSON(JSON.stringify(new SGDRegressor({ alpha: 0.5 })));
    assert.equal(m.isFitted, false);
    assert.equal(m.getParams().alpha, 0.5);
    const good = new SGDRegressor({ shuffle: false }).partialFit(X, y).toJSON();
    assert.throws(() => SGDRegressor.fromJSON({ ...good, type: 'Other' } as never), TypeError);
    assert.throws(() => SGDRegressor.fromJSON({ ...good, state: { ...good.state!, coef: [1] } }), TypeError);
    assert.throws(() => SGDRegressor.fromJSON({ ...good, state: { ...good.state!, t: Number.NaN } }), TypeError);
    assert.throws(() => SGDRegressor.fromJSON({ ...good, params: { ...good.params, loss: 'bogus' as never } }), RangeError);
  });
});

describe('SGDRegressor rejects bad options and bad input', () => {
  const { X, y } = makeData(1, 20, [1, 2], 0);

  test('bad options', () => {
    const bad: Array<[unknown, new (...args: never[]) => Error, RegExp]> = [
      [{ lossFunction: 'huber' }, TypeError, /unknown SGDRegressor option 'lossFunction'/],
      [{ loss: 'hinge' }, RangeError, /loss/],
      [{ loss: 3 }, TypeError, /loss/],
      [{ penalty: 'l3' }, RangeError, /penalty/],
      [{ alpha: -1 }, RangeError, /alpha/],
      [{ alpha: Number.NaN }, RangeError, /alpha/],
      [{ l1Ratio: 1.5 }, RangeError, /l1Ratio/],
      [{ maxIter: 0 }, RangeError, /maxIter/],
      [{ maxIter: 2.5 }, RangeError, /maxIter/],
      [{ tol: '1e-3' }, TypeError, /tol/],
      [{ shuffle: 1 }, TypeError, /shuffle/],
      [{ epsilon: -0.1 }, RangeError, /epsilon/],
      [{ learningRate: 'pa1' }, RangeError, /learningRate/],
      [{ learningRate: 'constant', eta0: 0 }, RangeError, /eta0/],
      [{ learningRate: 'optimal', alpha: 0 }, RangeError, /alpha/],
      [{ average: -1 }, RangeError, /average/],
      [{ average: 2.5 }, RangeError, /average/],
      [{ randomState: -3 }, RangeError, /randomState/],
      [{ nIterNoChange: 0 }, RangeError, /nIterNoChange/],
      [{ earlyStopping: true }, RangeError, /earlyStopping/],
      [[1, 2], TypeError, /options must be an object/],
    ];
    for (const [opts, type, msg] of bad) {
      assert.throws(() => new SGDRegressor(opts as SGDRegressorOptions), (e: unknown) => e instanceof type && msg.test((e as Error).message), JSON.stringify(opts));
    }
    // and valid edge values are accepted
    new SGDRegressor({ learningRate: 'optimal', eta0: 0, average: 0, penalty: null, tol: null, randomState: 0 });
  });

  test('bad input', () => {
    const m = new SGDRegressor({ shuffle: false });
    const cases: Array<[() => unknown, new (...args: never[]) => Error, RegExp]> = [
      [() => m.partialFit([[1, 2], [3]], [1, 2]), RangeError, /ragged: row 1 has 1 features, row 0 has 2/],
      [() => m.partialFit([[1, Number.NaN]], [1]), RangeError, /X\[0\]\[1\] is NaN/],
      [() => m.partialFit([[1, Infinity]], [1]), RangeError, /X\[0\]\[1\] is Infinity/],
      [() => m.partialFit({ columns: [new Float64Array([1, 2]), new Float64Array([1, -Infinity])] }, [1, 2]), RangeError, /columns\[1\]\[1\] is -Infinity/],
      [() => m.partialFit({ columns: [new Float64Array([1, 2]), new Float64Array([1])] }, [1, 2]), RangeError, /columns\[1\] has length 1/],
      [() => m.partialFit([[1, 2]], [Number.NaN]), RangeError, /y\[0\] is NaN/],
      [() => m.partialFit(X, y.slice(1)), RangeError, /y has length 19, expected 20/],
      [() => m.partialFit(X, y, [1, 2]), RangeError, /sampleWeight has length 2, expected 20/],
      [() => m.partialFit(X, y, X.map((_, i) => (i === 3 ? -1 : 1))), RangeError, /sampleWeight\[3\] is -1/],
      [() => m.partialFit([], []), RangeError, /0 samples/],
      [() => m.partialFit([[]], [1]), RangeError, /0 features/],
      [() => m.partialFit([['a', 1]] as never, [1]), TypeError, /X\[0\]\[0\] must be a number/],
      [() => m.partialFit(42 as never, [1]), TypeError, /X must be/],
      [() => m.predict(X), NotFittedError, /not fitted/],
      [() => m.coef, NotFittedError, /not fitted/],
      [() => m.fit(X, y, X.map(() => Number.NaN)), RangeError, /sampleWeight\[0\] is NaN/],
    ];
    for (const [fn, type, msg] of cases) {
      assert.throws(fn, (e: unknown) => e instanceof type && msg.test((e as Error).message), String(fn));
    }
    assert.ok(new NotFittedError('x') instanceof TypeError);
    assert.equal(m.isFitted, false, 'failed calls leave the model unfitted');

    m.partialFit(X, y);
    const before = JSON.stringify(m);
    assert.throws(() => m.partialFit([[1, 2, 3]], [1]), /X has 3 features, but this SGDRegressor was trained on 2/);
    assert.throws(() => m.predict([[1]]), /X has 1 features, but this SGDRegressor was trained on 2/);
    assert.throws(() => m.score(X, y.slice(2)), /y has length 18, expected 20/);
    assert.equal(JSON.stringify(m), before, 'rejected input leaves the state untouched');
  });

  test('overflow throws and leaves the model as it was', () => {
    const m = new SGDRegressor({ learningRate: 'constant', eta0: 1e3, penalty: null, shuffle: false });
    const big = X.map((r) => r.map((v) => v * 1e300));
    assert.throws(() => m.partialFit(big, y), (e: unknown) => e instanceof RangeError && /overflow/.test(e.message));
    assert.equal(m.isFitted, false);
    m.partialFit([[1e-6, 1e-6]], [1e-6]);
    const before = JSON.stringify(m);
    assert.throws(() => m.partialFit(big, y), RangeError);
    assert.throws(() => m.fit(big, y), RangeError);
    assert.equal(JSON.stringify(m), before);
  });
});

test('report: worst error against scikit-learn is within 1e-9 relative', (t) => {
  t.diagnostic(`max relative error of coef/intercept vs the golden fixture: ${maxRelErr.fixture.toExponential(3)}`);
  t.diagnostic(`max relative error of coef/intercept vs the inline sklearn cases: ${maxRelErr.inline.toExponential(3)}`);
  t.diagnostic(`max error of predict_first3 vs the fixture (relative to term magnitude): ${maxPredRelErr.toExponential(3)}`);
  assert.ok(maxRelErr.fixture <= 1e-9 && maxRelErr.inline <= 1e-9);
});
