// Child entry: one side of a ping-pong with exactly one message in flight.
//   store-blocking  ping: put(P[n]) then get(Q[n]) blocking;  pong: get(P[n]) blocking, put(Q[n])
//   store-async     the same with `await store.getAsync(id)` on both sides
//   store-spin      the same polling store.get(id) (timeout 0) from JS in a busy loop: never
//                   sleeps, so it shows the cost of the store calls themselves (a diagnostic;
//                   burns both cores)
//   unix            8-byte messages over a Unix domain socket (Node net), the baseline
// The blocking get waits with a finite timeout in a loop (the same futex wait as timeoutMs -1:
// the deadline is only the futex's timeout argument), so an orphan notices its harness died.
// Ping reports the round trips' percentiles; one-way latency = round trip / 2.
//   node latency.js --config '{"mode": M, "role": "ping"|"pong", "store"|"path": ..., "warmup": W, "trips": N, "tag": T}'
import { createConnection, createServer, type Socket } from 'node:net';
import { ObjectId, ObjectStore, type StoredObject } from '../../../src/index.js';
import { childMain, lifeline, percentile, readConfig, send } from '../common.js';

interface LatencyConfig {
  mode: 'store-blocking' | 'store-async' | 'store-spin' | 'unix';
  role: 'ping' | 'pong';
  store?: string;
  path?: string;
  warmup: number;
  trips: number;
  tag: string;
}

const WAIT_SLICE_MS = 2000;

childMain(async () => {
  const cfg = readConfig<LatencyConfig>();
  lifeline();
  const total = cfg.warmup + cfg.trips;
  const rtt = new Float64Array(cfg.trips);
  if (cfg.mode === 'unix') await unix(cfg, total, rtt);
  else await viaStore(cfg, total, rtt);
  if (cfg.role === 'pong') return;
  const sorted = Float64Array.from(rtt).sort();
  const us = (ns: number) => ns / 1000;
  let sum = 0;
  for (const v of sorted) sum += v;
  send({
    bench: 'result',
    role: 'ping',
    mode: cfg.mode,
    trips: cfg.trips,
    // one-way = round trip / 2, in µs
    oneWayUs: {
      min: us(sorted[0]) / 2,
      p50: us(percentile(sorted, 50)) / 2,
      p90: us(percentile(sorted, 90)) / 2,
      p99: us(percentile(sorted, 99)) / 2,
      p999: us(percentile(sorted, 99.9)) / 2,
      max: us(sorted[sorted.length - 1]) / 2,
      mean: us(sum / sorted.length) / 2,
    },
  });
});

async function viaStore(cfg: LatencyConfig, total: number, rtt: Float64Array): Promise<void> {
  using store = ObjectStore.open(cfg.store!);
  const ping = Array.from({ length: total }, (_, i) => ObjectId.forStream(`lat-ping-${cfg.tag}`, i));
  const pong = Array.from({ length: total }, (_, i) => ObjectId.forStream(`lat-pong-${cfg.tag}`, i));
  const payload = Buffer.alloc(8, 1);
  const parent = process.ppid;
  const blockingGet = (id: ObjectId): StoredObject => {
    for (;;) {
      const obj = store.get(id, { timeoutMs: WAIT_SLICE_MS });
      if (obj !== null) return obj;
      if (process.ppid !== parent) process.exit(70); // orphaned
    }
  };
  const spinGet = (id: ObjectId): StoredObject => {
    for (let spins = 1; ; spins++) {
      const obj = store.get(id);
      if (obj !== null) return obj;
      if ((spins & 0xfffff) === 0 && process.ppid !== parent) process.exit(70); // orphaned
    }
  };
  const syncGet = cfg.mode === 'store-spin' ? spinGet : blockingGet;
  const asyncGet = async (id: ObjectId): Promise<StoredObject> => {
    for (;;) {
      const obj = await store.getAsync(id, { timeoutMs: WAIT_SLICE_MS });
      if (obj !== null) return obj;
    }
  };
  if (cfg.role === 'pong') {
    send({ bench: 'ready', role: 'pong' });
    if (cfg.mode !== 'store-async') {
      for (let i = 0; i < total; i++) {
        const obj = syncGet(ping[i]);
        store.put(pong[i], payload);
        obj.release();
      }
    } else {
      for (let i = 0; i < total; i++) {
        const obj = await asyncGet(ping[i]);
        store.put(pong[i], payload);
        obj.release();
      }
    }
    return;
  }
  if (cfg.mode !== 'store-async') {
    for (let i = 0; i < total; i++) {
      const t0 = process.hrtime.bigint();
      store.put(ping[i], payload);
      const obj = syncGet(pong[i]);
      const t1 = process.hrtime.bigint();
      obj.release();
      if (i >= cfg.warmup) rtt[i - cfg.warmup] = Number(t1 - t0);
    }
  } else {
    for (let i = 0; i < total; i++) {
      const t0 = process.hrtime.bigint();
      store.put(ping[i], payload);
      const obj = await asyncGet(pong[i]);
      const t1 = process.hrtime.bigint();
      obj.release();
      if (i >= cfg.warmup) rtt[i - cfg.warmup] = Number(t1 - t0);
    }
  }
}

async function unix(cfg: LatencyConfig, total: number, rtt: Float64Array): Promise<void> {
  const payload = Buffer.alloc(8, 1);
  if (cfg.role === 'pong') {
    await new Promise<void>((resolve, reject) => {
      const server = createServer((s: Socket) => {
        let got = 0;
        let answered = 0;
        s.on('data', (chunk: Buffer) => {
          got += chunk.length;
          while (got - answered * 8 >= 8) {
            s.write(payload);
            answered += 1;
          }
          if (answered >= total) {
            s.end();
            server.close();
            resolve();
          }
        });
        s.on('error', reject);
      });
      server.once('error', reject);
      server.listen(cfg.path!, () => send({ bench: 'ready', role: 'pong' }));
    });
    return;
  }
  const sock = createConnection(cfg.path!);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
  });
  let i = 0;
  let got = 0;
  let t0 = 0n;
  await new Promise<void>((resolve, reject) => {
    sock.on('error', reject);
    sock.on('data', (chunk: Buffer) => {
      got += chunk.length;
      if (got < 8) return;
      got -= 8;
      const t1 = process.hrtime.bigint();
      if (i >= cfg.warmup) rtt[i - cfg.warmup] = Number(t1 - t0);
      i += 1;
      if (i === total) {
        sock.end();
        resolve();
        return;
      }
      t0 = process.hrtime.bigint();
      sock.write(payload);
    });
    t0 = process.hrtime.bigint();
    sock.write(payload);
  });
}
