// The sgd group: our SGDRegressor.partialFit against scikit-learn's SGDRegressor.partial_fit on
// the same data (x ~ U(-2, 2), y = 2 - 3x + 0.5 N(0, 1)), in batches of 1000, shuffle=False and
// random_state=0 on both sides (partial_fit then visits samples in order, so the coefficients
// must agree). The data goes to both through one temp file (x[n] then y[n], Float64 LE),
// removed afterwards. Skipped with a notice when no python3 imports sklearn.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fillLine, summarize, type Summary } from '../common.js';
import { removeFile, spawnChild, trackFile, uniqueName } from '../harness.js';

const PY = String.raw`
import json, sys, time
import numpy as np
import sklearn
from sklearn.linear_model import SGDRegressor
path, n, batch, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = np.fromfile(path, dtype='<f8')
X = np.ascontiguousarray(data[:n].reshape(-1, 1))
y = np.ascontiguousarray(data[n:2 * n])
Xb = [X[i:i + batch] for i in range(0, n, batch)]
yb = [y[i:i + batch] for i in range(0, n, batch)]
def fit(k):
    m = SGDRegressor(shuffle=False, random_state=0)
    for i in range(k):
        m.partial_fit(Xb[i], yb[i])
    return m
fit(len(Xb))  # warm-up: one untimed pass, as on the Node side
secs = []
m = None
for _ in range(repeats):
    t0 = time.perf_counter()
    m = fit(len(Xb))
    secs.append(time.perf_counter() - t0)
print(json.dumps({"seconds": secs, "coef": [float(c) for c in m.coef_], "intercept": float(m.intercept_[0]),
                  "t": float(m.t_), "sklearn": sklearn.__version__, "numpy": np.__version__,
                  "python": sys.version.split()[0]}))
`;

export interface SgdSide {
  samplesPerSec: Summary;
  seconds: number[];
  coef: number[];
  intercept: number;
  t: number;
}

export interface SgdResult {
  samples: number;
  batch: number;
  repeats: number;
  options: string;
  python: string | null;
  versions: Record<string, string>;
  skipped: string | null;
  ours: SgdSide | null;
  sklearn: SgdSide | null;
  /** ours ÷ sklearn, medians of samples/s. */
  ratio: number | null;
  maxAbsDiff: number | null;
}

/** The first interpreter that imports sklearn: $SHMSTORE_BENCH_PYTHON, python3, /usr/bin/python3. */
export function findPython(): { python: string | null; tried: string[] } {
  const candidates = [process.env.SHMSTORE_BENCH_PYTHON, 'python3', '/usr/bin/python3'].filter(
    (c, i, a): c is string => typeof c === 'string' && c !== '' && a.indexOf(c) === i,
  );
  for (const c of candidates) {
    const r = spawnSync(c, ['-c', 'import sklearn'], { stdio: 'ignore', timeout: 60_000 });
    if (r.status === 0) return { python: c, tried: candidates };
  }
  return { python: null, tried: candidates };
}

function runPython(python: string, args: string[]): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const p = spawn(python, ['-c', PY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 600_000);
    p.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${python} exited with ${code}: ${err.trim().split('\n').slice(-3).join(' | ')}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()!) as Record<string, unknown>);
      } catch {
        reject(new Error(`unreadable output from ${python}: ${out.slice(0, 200)}`));
      }
    });
  });
}

function side(samples: number, r: Record<string, unknown>): SgdSide {
  const seconds = r.seconds as number[];
  return {
    samplesPerSec: summarize(seconds.map((s) => samples / s)),
    seconds,
    coef: r.coef as number[],
    intercept: r.intercept as number,
    t: r.t as number,
  };
}

export async function runSgd(opts: { samples: number; batch: number; repeats: number; execArgv: string[]; log: (s: string) => void }): Promise<SgdResult> {
  const base: SgdResult = {
    samples: opts.samples,
    batch: opts.batch,
    repeats: opts.repeats,
    options: "scikit-learn defaults (squared_error, l2, alpha=1e-4, invscaling eta0=0.01 power_t=0.25), shuffle=False, random_state=0",
    python: null,
    versions: {},
    skipped: null,
    ours: null,
    sklearn: null,
    ratio: null,
    maxAbsDiff: null,
  };
  const { python, tried } = findPython();
  if (python === null) {
    base.skipped = `sgd: scikit-learn comparison skipped (no python3 imports sklearn; tried ${tried.join(', ')}; apt-get install python3-sklearn)`;
    opts.log(base.skipped);
  }
  base.python = python;
  const file = join(tmpdir(), `${uniqueName('sgd')}.f64`);
  trackFile(file);
  try {
    const data = new Float64Array(2 * opts.samples);
    fillLine(data.subarray(0, opts.samples), data.subarray(opts.samples), 42);
    writeFileSync(file, new Uint8Array(data.buffer));
    const child = spawnChild('sgd', 'sgd', { file, samples: opts.samples, batch: opts.batch, repeats: opts.repeats }, opts.execArgv);
    try {
      const line = await child.waitFor((l) => l.bench === 'result', 600_000, 'an sgd result');
      await child.finish();
      base.ours = side(opts.samples, line);
    } finally {
      child.kill();
    }
    opts.log(`  sgd ours: ${Math.round(base.ours.samplesPerSec.median).toLocaleString('en-US')} samples/s`);
    if (python !== null) {
      const r = await runPython(python, [file, String(opts.samples), String(opts.batch), String(opts.repeats)]);
      base.sklearn = side(opts.samples, r);
      base.versions = { python: String(r.python), sklearn: String(r.sklearn), numpy: String(r.numpy) };
      base.ratio = base.ours.samplesPerSec.median / base.sklearn.samplesPerSec.median;
      const diffs = [Math.abs(base.ours.intercept - base.sklearn.intercept)];
      base.ours.coef.forEach((c, i) => diffs.push(Math.abs(c - base.sklearn!.coef[i])));
      base.maxAbsDiff = Math.max(...diffs);
      opts.log(`  sgd scikit-learn: ${Math.round(base.sklearn.samplesPerSec.median).toLocaleString('en-US')} samples/s`);
    }
  } finally {
    removeFile(file);
  }
  return base;
}
