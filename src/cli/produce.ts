// `shmstore produce`: generates y = a0 + a1*x + noise in batches and publishes each batch as an
// Arrow record batch on a stream. Prints progress and a result (JSON lines with --json).
import { makeTable } from 'apache-arrow';
import { leastSquares } from '../ml/index.js';
import { Publisher } from '../stream/index.js';
import type { Retention } from '../stream/protocol.js';
import { ObjectStore } from '../store.js';
import { LineSampler } from './dataset.js';

export interface ProduceConfig {
  store: string;
  stream: string;
  rows: number;
  batch: number;
  a0: number;
  a1: number;
  noise: number;
  seed: number;
  retention: Retention;
  /** Wait until this many subscribers are attached before the first message. */
  subscribers: number;
  timeoutMs: number;
}

export interface ProduceResult {
  role: 'producer';
  pid: number;
  messages: number;
  rows: number;
  bytes: number;
  seconds: number;
  /** Time spent waiting for room in a full store (lossless only). */
  waitedSeconds: number;
  leastSquares: { a0: number; a1: number };
}

export async function produce(cfg: ProduceConfig, onProgress?: (sent: number) => void): Promise<ProduceResult> {
  using store = ObjectStore.open(cfg.store);
  const pub = new Publisher(store, cfg.stream, { retention: cfg.retention, timeoutMs: cfg.timeoutMs });
  if (cfg.subscribers > 0) await pub.waitForSubscribers(cfg.subscribers, { timeoutMs: cfg.timeoutMs });

  const sampler = new LineSampler(cfg);
  const allX = new Float64Array(cfg.rows);
  const allY = new Float64Array(cfg.rows);
  let bytes = 0;
  const start = performance.now();
  for (let off = 0; off < cfg.rows; off += cfg.batch) {
    const n = Math.min(cfg.batch, cfg.rows - off);
    const x = allX.subarray(off, off + n);
    const y = allY.subarray(off, off + n);
    sampler.fill(x, y);
    const seq = await pub.publish(makeTable({ x, y }));
    bytes += n * 16;
    onProgress?.(seq + 1);
  }
  await pub.end();
  // Lossless: stay until every consumer has read everything, or our exit would unpin it.
  if (cfg.retention === 'lossless') await pub.drain();
  const seconds = (performance.now() - start) / 1000;
  const fit = leastSquares({ columns: [allX] }, allY);
  return {
    role: 'producer',
    pid: process.pid,
    messages: pub.nextSeq,
    rows: cfg.rows,
    bytes,
    seconds,
    waitedSeconds: pub.waitedMs / 1000,
    leastSquares: { a0: fit.intercept, a1: fit.coef[0] },
  };
}
