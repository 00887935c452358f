// The demo's data: x ~ U(-2, 2), y = a0 + a1*x + noise*N(0, 1), from a seeded generator so a
// producer run is reproducible.

/** mulberry32: small, fast, good enough for test data (not for cryptography). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface LineSpec {
  a0: number;
  a1: number;
  noise: number;
  seed: number;
}

/** Fills x and y with consecutive samples; keeps its generator state between calls. */
export class LineSampler {
  readonly #rand: () => number;
  #spare: number | null = null;

  constructor(private readonly spec: LineSpec) {
    this.#rand = seededRandom(spec.seed);
  }

  fill(x: Float64Array, y: Float64Array): void {
    const { a0, a1, noise } = this.spec;
    for (let i = 0; i < x.length; i++) {
      const xi = this.#rand() * 4 - 2;
      x[i] = xi;
      y[i] = a0 + a1 * xi + noise * this.#gaussian();
    }
  }

  // Box-Muller, using both values it makes.
  #gaussian(): number {
    if (this.#spare !== null) {
      const s = this.#spare;
      this.#spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = this.#rand();
    const v = this.#rand();
    const r = Math.sqrt(-2 * Math.log(u));
    this.#spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }
}
