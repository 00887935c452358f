// Child entry: our SGDRegressor.partialFit over the benchmark's data, in batches, column input
// (what an Arrow batch gives without a copy). The data file is x[n] then y[n], Float64 LE.
// Each repeat fits a fresh model over all batches (timed), after one untimed pass, as on
// scikit-learn's side.
//   node sgd.js --config '{"file": PATH, "samples": n, "batch": b, "repeats": r}'
import { readFileSync } from 'node:fs';
import { SGDRegressor } from '../../../src/index.js';
import { childMain, lifeline, readConfig, send } from '../common.js';

interface SgdConfig {
  file: string;
  samples: number;
  batch: number;
  repeats: number;
}

/** The options given to both sides: scikit-learn's defaults, no shuffling, a fixed seed. */
const SGD_OPTIONS = { shuffle: false, randomState: 0 } as const;

childMain(async () => {
  const cfg = readConfig<SgdConfig>();
  lifeline();
  const raw = readFileSync(cfg.file);
  const all = new Float64Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  const n = cfg.samples;
  const x = all.subarray(0, n);
  const y = all.subarray(n, 2 * n);
  const fit = (batches: number) => {
    const m = new SGDRegressor(SGD_OPTIONS);
    for (let b = 0; b < batches; b++) {
      const lo = b * cfg.batch;
      const hi = Math.min(n, lo + cfg.batch);
      m.partialFit({ columns: [x.subarray(lo, hi)] }, y.subarray(lo, hi));
    }
    return m;
  };
  const batches = Math.ceil(n / cfg.batch);
  fit(batches); // warm-up: one untimed pass (the JIT reaches its steady state), as on sklearn's side
  const seconds: number[] = [];
  let model: SGDRegressor | null = null;
  for (let r = 0; r < cfg.repeats; r++) {
    const t0 = process.hrtime.bigint();
    model = fit(batches);
    seconds.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  send({
    bench: 'result',
    role: 'sgd',
    seconds,
    coef: Array.from(model!.coef),
    intercept: model!.intercept,
    t: model!.t,
  });
});
