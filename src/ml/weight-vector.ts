/**
 * Dense weight vector `w = wscale * wRaw` with Bottou's averaged-SGD trick, mirroring
 * scikit-learn's `WeightVector64` (`sklearn/utils/_weight_vector.pyx.tp`): scaling is O(1)
 * (only `wscale` changes), and the average is kept as `(aw + averageA * wRaw) / averageB`
 * so averaging is O(nnz) per sample too. Operation order follows the Cython source so
 * results are bit-identical. (`sq_norm` is not kept: scikit-learn only prints it.)
 */
export class WeightVector {
  wscale = 1.0;
  averageA = 0.0;
  averageB = 1.0;

  /**
   * @param w raw weights, updated in place
   * @param aw raw average weights (updated in place) or null when not averaging
   */
  constructor(
    readonly w: Float64Array,
    readonly aw: Float64Array | null,
  ) {}

  /** `dot`: sum of w[j] * x[j] in index order, then times wscale. */
  dot(x: Float64Array): number {
    const w = this.w;
    let innerprod = 0.0;
    for (let j = 0; j < w.length; j++) innerprod += w[j] * x[j];
    innerprod *= this.wscale;
    return innerprod;
  }

  /** `add`: w += c * x, expressed in raw units (c / wscale evaluated per element, as in C). */
  add(x: Float64Array, c: number): void {
    const w = this.w;
    const wscale = this.wscale;
    for (let j = 0; j < w.length; j++) w[j] += x[j] * (c / wscale);
  }

  /** `add_average`: folds the sample into the running average; numIter = samples averaged. */
  addAverage(x: Float64Array, c: number, numIter: number): void {
    const aw = this.aw as Float64Array;
    const mu = 1.0 / numIter;
    const wscale = this.wscale;
    for (let j = 0; j < aw.length; j++) aw[j] += this.averageA * x[j] * (-c / wscale);
    if (numIter > 1) this.averageB /= 1.0 - mu;
    this.averageA += mu * this.averageB * wscale;
  }

  /** `scale`: w *= c in O(1); materialises once wscale drops below 1e-9 (float64 threshold). */
  scale(c: number): void {
    this.wscale *= c;
    if (this.wscale < 1e-9) this.resetWscale();
  }

  /** `reset_wscale`: materialise wscale into w and the (a, b) lazy terms into aw. */
  resetWscale(): void {
    const aw = this.aw;
    const w = this.w;
    if (aw !== null) {
      // BLAS _axpy then _scal(1 / average_b): aw = (aw + a * w) * (1 / b). Unfused, as the
      // fixture's BLAS did it (an OpenBLAS daxpy with FMA differs by an ulp per element).
      const a = this.averageA;
      for (let j = 0; j < aw.length; j++) aw[j] += a * w[j];
      const invB = 1.0 / this.averageB;
      for (let j = 0; j < aw.length; j++) aw[j] *= invB;
      this.averageA = 0.0;
      this.averageB = 1.0;
    }
    const s = this.wscale;
    for (let j = 0; j < w.length; j++) w[j] *= s;
    this.wscale = 1.0;
  }
}
