// `shmstore consume`: trains an SGDRegressor on every batch of a stream, reading the Arrow
// columns in place (no copy) from shared memory.
import { SGDRegressor, type SGDRegressorOptions } from '../ml/index.js';
import { Subscriber } from '../stream/index.js';
import { ObjectStore } from '../store.js';

export interface ConsumeConfig {
  store: string;
  stream: string;
  timeoutMs: number;
  /** Milliseconds of artificial work per message (to show a slow consumer). */
  delayMs: number;
  model: SGDRegressorOptions;
}

export interface ConsumeResult {
  role: 'consumer';
  pid: number;
  messages: number;
  rows: number;
  lost: number;
  bytes: number;
  seconds: number;
  a0: number;
  a1: number;
  /** Sum of every x and y received: equal across consumers that got every message. */
  checksum: number;
}

export async function consume(cfg: ConsumeConfig, onProgress?: (received: number) => void, signal?: AbortSignal): Promise<ConsumeResult> {
  using store = ObjectStore.open(cfg.store);
  using sub = new Subscriber(store, cfg.stream, { timeoutMs: cfg.timeoutMs, signal });
  const model = new SGDRegressor(cfg.model);
  let rows = 0;
  let bytes = 0;
  let checksum = 0;
  let start = 0;
  for await (const msg of sub) {
    if (start === 0) start = performance.now();
    for (const batch of msg.table().batches) {
      // A one-chunk Float64 vector's toArray() is a view of its buffer: shared memory here.
      const xs: unknown = batch.getChild('x')?.toArray();
      const ys: unknown = batch.getChild('y')?.toArray();
      if (!(xs instanceof Float64Array) || !(ys instanceof Float64Array)) {
        throw new Error(`message ${msg.seq} lacks Float64 columns x and y`);
      }
      model.partialFit({ columns: [xs] }, ys);
      for (let i = 0; i < ys.length; i++) checksum += xs[i] + ys[i];
      rows += batch.numRows;
    }
    bytes += msg.data.length;
    if (cfg.delayMs > 0) await new Promise((r) => setTimeout(r, cfg.delayMs));
    onProgress?.(sub.received);
  }
  const seconds = start === 0 ? 0 : (performance.now() - start) / 1000;
  return {
    role: 'consumer',
    pid: process.pid,
    messages: sub.received,
    rows,
    lost: sub.lostCount,
    bytes,
    seconds,
    a0: rows > 0 ? model.intercept : Number.NaN,
    a1: rows > 0 ? model.coef[0] : Number.NaN,
    checksum,
  };
}
