/**
 * Sample-order shuffling, as scikit-learn's `SequentialDataset.shuffle` does it:
 * Fisher–Yates driven by `our_rand_r` (xorshift32, `sklearn/utils/_random.pxd`), restarted
 * from the SAME seed every epoch (the seed is passed by value), so each epoch applies the
 * same permutation again to the previous order.
 *
 * The only difference from scikit-learn is where the 32-bit seed comes from: scikit-learn
 * draws it with numpy's `RandomState(random_state).randint(0, 2**31 - 1)`; we derive it
 * from `randomState` with {@link seedFrom} (or `Math.random` when no randomState is
 * given). So with `shuffle: true` orders are reproducible, but not numpy's.
 */

const RAND_R_MAX = 0x7fffffff;
const DEFAULT_SEED = 1;

/** `ArrayDataset.shuffle(seed)`: permutes `index` in place. */
export function shuffleIndex(index: Uint32Array, seed: number): void {
  const n = index.length;
  let s = seed >>> 0;
  for (let i = 0; i < n - 1; i++) {
    // our_rand_r: xorshift32 (a zero state is replaced by DEFAULT_SEED), then mod 2^31.
    if (s === 0) s = DEFAULT_SEED;
    s = (s ^ (s << 13)) >>> 0;
    s = (s ^ (s >>> 17)) >>> 0;
    s = (s ^ (s << 5)) >>> 0;
    const r = s % (RAND_R_MAX + 1);
    const j = i + (r % (n - i));
    const tmp = index[i];
    index[i] = index[j];
    index[j] = tmp;
  }
}

/**
 * The per-call shuffle seed in [0, 2^31 - 1), like `random_state.randint(0, MAX_INT)`
 * in `_fit_regressor`: an integer randomState gives the same seed on every call (as a
 * fresh `RandomState(int)` does in scikit-learn); none gives a fresh random seed.
 */
export function seedFrom(randomState: number | null): number {
  if (randomState === null) return Math.floor(Math.random() * RAND_R_MAX);
  // splitmix32-style avalanche of the integer so nearby states give unrelated orders.
  let z = (Math.trunc(randomState) + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  z = (z ^ (z >>> 16)) >>> 0;
  return z % RAND_R_MAX;
}
