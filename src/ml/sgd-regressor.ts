/**
 * `SGDRegressor`: scikit-learn 1.2.1's `sklearn.linear_model.SGDRegressor` for dense row or
 * column input: same defaults, and for the same sample order the same doubles (bit for bit
 * on the shared golden fixture; `pow` in 'invscaling' and a BLAS using FMA on sklearn's side
 * can move the last bit).
 *
 * The Python-level bookkeeping mirrors `BaseSGDRegressor` (`_stochastic_gradient.py`):
 * `_partial_fit` / `_fit` / `_fit_regressor` — how `t_` accumulates, how the standard and
 * averaged coefficients are passed to `_plain_sgd` and which of them becomes `coef_`.
 */
import { checkVector, checkWeights, toDesign, type Design, type Matrix, type Vector } from './input.js';
import { makeLoss } from './losses.js';
import { r2Score } from './metrics.js';
import { averageStart, resolveParams, type SGDRegressorOptions, type SGDRegressorParams } from './params.js';
import { PenaltyType, plainSgd, Schedule } from './plain-sgd.js';
import { seedFrom } from './shuffle.js';

/** Thrown by methods that need a fitted model (scikit-learn's NotFittedError). */
export class NotFittedError extends TypeError {
  constructor(what: string) {
    super(`This SGDRegressor instance is not fitted yet: call fit or partialFit before ${what}`);
    this.name = 'NotFittedError';
  }
}

/** Learned state. When averaging, `coef`/`intercept` are sklearn's `_standard_*`. */
interface FitState {
  nFeatures: number;
  coef: Float64Array;
  intercept: number;
  averageCoef: Float64Array | null;
  averageIntercept: number;
  t: number;
  nIter: number;
}

/** JSON form of a model: parameters plus the full learned state (null if not fitted). */
export interface SGDRegressorJSON {
  type: 'SGDRegressor';
  version: 1;
  params: SGDRegressorParams;
  state: {
    nFeatures: number;
    coef: number[];
    intercept: number;
    averageCoef: number[] | null;
    averageIntercept: number;
    t: number;
    nIter: number;
  } | null;
}

const PENALTY_CODE = { l2: PenaltyType.L2, l1: PenaltyType.L1, elasticnet: PenaltyType.ElasticNet } as const;
const SCHEDULE_CODE = {
  constant: Schedule.Constant,
  optimal: Schedule.Optimal,
  invscaling: Schedule.InvScaling,
  adaptive: Schedule.Adaptive,
} as const;

/**
 * Linear model fitted by stochastic gradient descent with scikit-learn's semantics.
 *
 * ```ts
 * const m = new SGDRegressor({ learningRate: 'constant', eta0: 0.01, shuffle: false });
 * m.partialFit(batch.rows, batch.y);       // one epoch over the batch
 * m.predict([[1.5]]); m.coef; m.intercept;
 * ```
 * With `shuffle: true` (the default) the sample order comes from our own seeded
 * generator (see `shuffle.ts`), so only `shuffle: false` reproduces scikit-learn's numbers.
 */
export class SGDRegressor {
  readonly #params: SGDRegressorParams;
  #state: FitState | null = null;

  /** @throws TypeError on unknown options or wrong types, RangeError on bad values. */
  constructor(options?: SGDRegressorOptions) {
    this.#params = resolveParams(options);
  }

  /** The validated parameters (defaults filled in). */
  getParams(): SGDRegressorParams {
    return { ...this.#params };
  }

  /** True once fit or partialFit has run. */
  get isFitted(): boolean {
    return this.#state !== null;
  }

  /** Coefficients (`coef_`), a copy. The averaged ones once averaging is in effect. */
  get coef(): Float64Array {
    const s = this.#fitted('reading coef');
    return Float64Array.from(this.#usesAverage(s) ? (s.averageCoef as Float64Array) : s.coef);
  }

  /** Intercept (`intercept_[0]`); the averaged one once averaging is in effect. */
  get intercept(): number {
    const s = this.#fitted('reading intercept');
    return this.#usesAverage(s) ? s.averageIntercept : s.intercept;
  }

  /** scikit-learn's `t_`: 1 + number of sample updates since the last (non-warm) fit. */
  get t(): number {
    return this.#fitted('reading t').t;
  }

  /** Epochs run by the last fit (1 after partialFit), scikit-learn's `n_iter_`. */
  get nIter(): number {
    return this.#fitted('reading nIter').nIter;
  }

  /** Number of features seen in training (`n_features_in_`). */
  get nFeaturesIn(): number {
    return this.#fitted('reading nFeaturesIn').nFeatures;
  }

  /**
   * One epoch of SGD over the given samples, continuing from the current state
   * (`partial_fit`: max_iter = 1, no tolerance check, no learning-rate adaptation).
   * @param X rows or `{ columns }` (read in place, never copied)
   * @param y targets, one per sample
   * @param sampleWeight non-negative weights, one per sample, or one number for all
   *   (default 1)
   */
  partialFit(X: Matrix, y: Vector, sampleWeight?: Vector | number | null): this {
    const data = this.#checkInput(X, y, sampleWeight);
    const prev = this.#state;
    if (prev !== null && prev.nFeatures !== data.X.nFeatures) {
      throw new RangeError(`X has ${data.X.nFeatures} features, but this SGDRegressor was trained on ${prev.nFeatures}`);
    }
    // partial_fit passes max_iter=1 and self.tol: after a single epoch the tolerance test
    // can never fire (best_loss starts at +inf), so eta0 is never divided for 'adaptive'.
    const tol = this.#params.tol === null ? -Infinity : this.#params.tol;
    this.#state = this.#run(prev ?? this.#fresh(data.X.nFeatures), data, 1, tol);
    return this;
  }

  /**
   * Trains from scratch (or from the current state if `warmStart`) for up to `maxIter`
   * epochs, stopping after `nIterNoChange` epochs whose training loss did not improve by
   * `tol * nSamples` ('adaptive' divides eta by 5 instead, while eta > 1e-6). Emits a
   * `ConvergenceWarning` process warning when `maxIter` is reached with `tol` set.
   */
  fit(X: Matrix, y: Vector, sampleWeight?: Vector | number | null): this {
    const p = this.#params;
    const data = this.#checkInput(X, y, sampleWeight);
    const d = data.X.nFeatures;
    let start: FitState;
    if (p.warmStart && this.#state !== null) {
      if (this.#state.nFeatures !== d) {
        throw new RangeError(`X has ${d} features, but this SGDRegressor was trained on ${this.#state.nFeatures}`);
      }
      start = { ...this.#state, t: 1.0 }; // _fit: "Clear iteration count for multiple call to fit."
    } else {
      start = this.#fresh(d);
    }
    const next = this.#run(start, data, p.maxIter, p.tol === null ? -Infinity : p.tol);
    this.#state = next;
    if (p.tol !== null && next.nIter === p.maxIter) {
      process.emitWarning(
        'Maximum number of iteration reached before convergence. Consider increasing maxIter to improve the fit.',
        'ConvergenceWarning',
      );
    }
    return this;
  }

  /** Predictions `X · coef + intercept`. */
  predict(X: Matrix): Float64Array {
    const s = this.#fitted('predict');
    const design = toDesign(X);
    if (design.nFeatures !== s.nFeatures) {
      throw new RangeError(`X has ${design.nFeatures} features, but this SGDRegressor was trained on ${s.nFeatures}`);
    }
    const avg = this.#usesAverage(s);
    const coef = avg ? (s.averageCoef as Float64Array) : s.coef;
    const b = avg ? s.averageIntercept : s.intercept;
    const n = design.nSamples;
    const out = new Float64Array(n);
    const x = new Float64Array(s.nFeatures);
    for (let i = 0; i < n; i++) {
      design.load(i, x);
      let acc = 0;
      for (let j = 0; j < x.length; j++) acc += x[j] * coef[j];
      out[i] = acc + b;
    }
    return out;
  }

  /** R² of the predictions on (X, y), as `RegressorMixin.score`. */
  score(X: Matrix, y: Vector, sampleWeight?: Vector | null): number {
    const pred = this.predict(X);
    return r2Score(checkVector(y, pred.length, 'y'), pred, sampleWeight);
  }

  /** Parameters and full state (including averaging state), for JSON.stringify. */
  toJSON(): SGDRegressorJSON {
    const s = this.#state;
    return {
      type: 'SGDRegressor',
      version: 1,
      params: this.getParams(),
      state:
        s === null
          ? null
          : {
              nFeatures: s.nFeatures,
              coef: Array.from(s.coef),
              intercept: s.intercept,
              averageCoef: s.averageCoef === null ? null : Array.from(s.averageCoef),
              averageIntercept: s.averageIntercept,
              t: s.t,
              nIter: s.nIter,
            },
    };
  }

  /** Rebuilds a model from {@link toJSON}'s output (an object or its JSON string). */
  static fromJSON(json: SGDRegressorJSON | string): SGDRegressor {
    const j: unknown = typeof json === 'string' ? JSON.parse(json) : json;
    if (j === null || typeof j !== 'object') throw new TypeError('SGDRegressor.fromJSON: expected an object');
    const o = j as Partial<SGDRegressorJSON>;
    if (o.type !== 'SGDRegressor' || o.version !== 1) {
      throw new TypeError('SGDRegressor.fromJSON: not an SGDRegressor version 1 document');
    }
    const model = new SGDRegressor(o.params);
    const s = o.state;
    if (s === null || s === undefined) return model;
    const d = s.nFeatures;
    const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
    const vec = (v: unknown): v is number[] => Array.isArray(v) && v.length === d && v.every(finite);
    const wantAverage = averageStart(model.#params) > 0;
    if (
      !Number.isInteger(d) || d < 1 || !vec(s.coef) || !finite(s.intercept) ||
      !finite(s.averageIntercept) || !finite(s.t) || s.t < 1 || !Number.isInteger(s.nIter) ||
      (wantAverage ? !vec(s.averageCoef) : s.averageCoef !== null)
    ) {
      throw new TypeError('SGDRegressor.fromJSON: malformed state');
    }
    model.#state = {
      nFeatures: d,
      coef: Float64Array.from(s.coef),
      intercept: s.intercept,
      averageCoef: s.averageCoef === null ? null : Float64Array.from(s.averageCoef),
      averageIntercept: s.averageIntercept,
      t: s.t,
      nIter: s.nIter,
    };
    return model;
  }

  #fitted(what: string): FitState {
    if (this.#state === null) throw new NotFittedError(what);
    return this.#state;
  }

  /** `_fit_regressor`: coef_ is the average once `average <= t_ - 1`. */
  #usesAverage(s: FitState): boolean {
    const a = averageStart(this.#params);
    return a > 0 && a <= s.t - 1.0;
  }

  /** `_allocate_parameter_mem`: zeros, plus zeroed average buffers when averaging. */
  #fresh(nFeatures: number): FitState {
    const averaging = averageStart(this.#params) > 0;
    return {
      nFeatures,
      coef: new Float64Array(nFeatures),
      intercept: 0,
      averageCoef: averaging ? new Float64Array(nFeatures) : null,
      averageIntercept: 0,
      t: 1.0,
      nIter: 0,
    };
  }

  #checkInput(X: Matrix, y: Vector, sampleWeight: Vector | number | null | undefined) {
    const design = toDesign(X);
    const n = design.nSamples;
    return { X: design, y: checkVector(y, n, 'y'), w: checkWeights(sampleWeight, n) };
  }

  /**
   * `_fit_regressor`: runs `_plain_sgd` on copies of the state (so an overflow error leaves
   * the model untouched), then `t_ += n_iter_ * n_samples`.
   */
  #run(
    from: FitState,
    data: { X: Design; y: Vector; w: Float64Array | null },
    maxIter: number,
    tol: number,
  ): FitState {
    const p = this.#params;
    const coef = Float64Array.from(from.coef);
    const averageCoef = from.averageCoef === null ? null : Float64Array.from(from.averageCoef);
    const out = plainSgd(coef, from.intercept, averageCoef, from.averageIntercept, data.X, data.y, data.w, {
      loss: makeLoss(p.loss, p.epsilon),
      penaltyType: p.penalty === null ? PenaltyType.None : PENALTY_CODE[p.penalty],
      alpha: p.alpha,
      l1Ratio: p.l1Ratio,
      nIterNoChange: p.nIterNoChange,
      maxIter,
      tol,
      fitIntercept: p.fitIntercept,
      shuffle: p.shuffle,
      seed: p.shuffle ? seedFrom(p.randomState) : 0,
      schedule: SCHEDULE_CODE[p.learningRate],
      eta0: p.eta0,
      powerT: p.powerT,
      t: from.t,
      average: averageStart(p),
    });
    return {
      nFeatures: from.nFeatures,
      coef,
      intercept: out.intercept,
      averageCoef,
      averageIntercept: out.averageIntercept,
      t: from.t + out.nIter * data.X.nSamples,
      nIter: out.nIter,
    };
  }
}
