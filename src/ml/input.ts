/**
 * Input shapes accepted by the ml module and their validation.
 *
 * Mirrors what scikit-learn's `check_array` / `check_X_y` / `_check_sample_weight`
 * refuse (ragged rows, NaN/Infinity, length mismatches, empty input), but never copies
 * the caller's data: samples are read one at a time into a small scratch vector.
 */

/** Column-major input, e.g. the `Float64Array` columns of an Arrow record batch. */
export interface ColumnBatch {
  /** One array per feature; all of the same length (the number of samples). */
  readonly columns: ReadonlyArray<ArrayLike<number>>;
}

/** Row-major rows (`number[][]`, arrays of typed arrays, …) or a {@link ColumnBatch}. */
export type Matrix = ArrayLike<ArrayLike<number>> | ColumnBatch;

/** Targets or sample weights: `number[]`, `Float64Array` or any array-like of numbers. */
export type Vector = ArrayLike<number>;

/**
 * A validated, read-only view over a {@link Matrix}.
 * `load(i, out)` writes sample `i` into `out[0..nFeatures)`.
 */
export interface Design {
  readonly nSamples: number;
  readonly nFeatures: number;
  load(i: number, out: Float64Array): void;
}

function isArrayLike(v: unknown): v is ArrayLike<unknown> {
  if (v === null || typeof v !== 'object') return false;
  const len = (v as { length?: unknown }).length;
  return typeof len === 'number' && Number.isInteger(len) && len >= 0;
}

function isColumnBatch(v: unknown): v is ColumnBatch {
  return v !== null && typeof v === 'object' && !isArrayLike(v) && 'columns' in v;
}

function checkFinite(value: unknown, what: string): void {
  if (typeof value !== 'number') {
    throw new TypeError(`${what} must be a number, got ${value === null ? 'null' : typeof value}`);
  }
  if (!Number.isFinite(value)) {
    throw new RangeError(`${what} is ${value}; NaN and Infinity are not allowed`);
  }
}

class RowDesign implements Design {
  constructor(
    private readonly rows: ArrayLike<ArrayLike<number>>,
    readonly nSamples: number,
    readonly nFeatures: number,
  ) {}

  load(i: number, out: Float64Array): void {
    const row = this.rows[i];
    for (let j = 0; j < this.nFeatures; j++) out[j] = row[j];
  }
}

class ColumnDesign implements Design {
  constructor(
    private readonly cols: ReadonlyArray<ArrayLike<number>>,
    readonly nSamples: number,
    readonly nFeatures: number,
  ) {}

  load(i: number, out: Float64Array): void {
    // Reads column[j][i] in place: the columns (possibly shared memory) are never copied.
    const cols = this.cols;
    for (let j = 0; j < this.nFeatures; j++) out[j] = cols[j][i];
  }
}

/**
 * Validates `X` (shape, finiteness) in one pass and returns a {@link Design} over it.
 * @param name used in error messages (e.g. `'X'`).
 */
export function toDesign(X: Matrix, name = 'X'): Design {
  if (isColumnBatch(X)) {
    const cols = X.columns;
    if (!isArrayLike(cols)) throw new TypeError(`${name}.columns must be an array of columns`);
    const d = cols.length;
    if (d === 0) throw new RangeError(`${name} has 0 features (columns is empty)`);
    if (!isArrayLike(cols[0])) throw new TypeError(`${name}.columns[0] is not an array-like column`);
    const n = cols[0].length;
    if (n === 0) throw new RangeError(`${name} has 0 samples`);
    for (let j = 0; j < d; j++) {
      const col = cols[j];
      if (!isArrayLike(col)) throw new TypeError(`${name}.columns[${j}] is not an array-like column`);
      if (col.length !== n) {
        throw new RangeError(`${name}.columns[${j}] has length ${col.length}, columns[0] has ${n}`);
      }
      for (let i = 0; i < n; i++) {
        const v = col[i];
        if (!Number.isFinite(v)) checkFinite(v, `${name}.columns[${j}][${i}]`);
      }
    }
    return new ColumnDesign(cols, n, d);
  }
  if (!isArrayLike(X)) {
    throw new TypeError(`${name} must be an array of rows or { columns: Float64Array[] }`);
  }
  const n = X.length;
  if (n === 0) throw new RangeError(`${name} has 0 samples`);
  if (!isArrayLike(X[0])) throw new TypeError(`${name}[0] is not an array-like row`);
  const d = X[0].length;
  if (d === 0) throw new RangeError(`${name} has 0 features (rows are empty)`);
  for (let i = 0; i < n; i++) {
    const row = X[i];
    if (!isArrayLike(row)) throw new TypeError(`${name}[${i}] is not an array-like row`);
    if (row.length !== d) {
      throw new RangeError(`${name} is ragged: row ${i} has ${row.length} features, row 0 has ${d}`);
    }
    for (let j = 0; j < d; j++) {
      const v = row[j];
      if (!Number.isFinite(v)) checkFinite(v, `${name}[${i}][${j}]`);
    }
  }
  return new RowDesign(X, n, d);
}

/** Validates a vector of `n` finite numbers (targets, predictions). */
export function checkVector(v: Vector, n: number, name: string): Vector {
  if (!isArrayLike(v)) throw new TypeError(`${name} must be an array of numbers`);
  if (v.length !== n) {
    throw new RangeError(`${name} has length ${v.length}, expected ${n} (one per sample)`);
  }
  for (let i = 0; i < n; i++) {
    const x = v[i];
    if (!Number.isFinite(x)) checkFinite(x, `${name}[${i}]`);
  }
  return v;
}

/**
 * Validates sample weights (finite, >= 0) and returns them; `undefined`/`null` gives
 * `null` (unit weights). A single number is broadcast, like scikit-learn's
 * `_check_sample_weight`.
 */
export function checkWeights(w: Vector | number | null | undefined, n: number, name = 'sampleWeight'): Float64Array | null {
  if (w === undefined || w === null) return null;
  const out = new Float64Array(n);
  if (typeof w === 'number') {
    checkFinite(w, name);
    if (w < 0) throw new RangeError(`${name} is ${w}; sample weights must be >= 0`);
    return out.fill(w);
  }
  checkVector(w, n, name);
  for (let i = 0; i < n; i++) {
    const x = w[i];
    if (x < 0) throw new RangeError(`${name}[${i}] is ${x}; sample weights must be >= 0`);
    out[i] = x;
  }
  return out;
}
