// The latency group: one message in flight between two processes (children/latency.ts), through
// the store with a blocking get, with getAsync, and over a Unix socket as the baseline.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectStore } from '../../../src/index.js';
import { summarize, type Summary } from '../common.js';
import { removeFile, spawnChild, trackFile, trackStore, uniqueName, unlinkStore, type Child } from '../harness.js';

export type LatencyMode = 'store-blocking' | 'store-async' | 'store-spin' | 'unix';
export const LATENCY_MODES: readonly LatencyMode[] = ['store-blocking', 'store-async', 'store-spin', 'unix'];

export interface OneWay {
  min: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface LatencyResult {
  trips: number;
  warmup: number;
  repeats: number;
  /** Every repeat's one-way latency percentiles (µs), per mode. */
  runs: Record<LatencyMode, OneWay[]>;
  /** Median over repeats of each repeat's p50 and p99 (µs). */
  summary: Record<LatencyMode, { p50: Summary; p99: Summary }>;
  errors: string[];
}

async function once(mode: LatencyMode, trips: number, warmup: number, execArgv: string[]): Promise<OneWay> {
  const tag = uniqueName('lat');
  const base = { mode, warmup, trips, tag };
  let store: ObjectStore | null = null;
  let path: string | null = null;
  const extra: Record<string, string> = {};
  if (mode === 'unix') {
    path = join(tmpdir(), `${tag}.sock`);
    trackFile(path);
    extra.path = path;
  } else {
    trackStore(tag);
    const objects = 2 * (trips + warmup);
    store = ObjectStore.create(tag, { capacity: objects * 64 + 1024 * 1024, maxObjects: objects + 64, maxClients: 4, eviction: 'none' });
    extra.store = tag;
  }
  const kids: Child[] = [];
  try {
    const pong = spawnChild(`${mode} pong`, 'latency', { ...base, ...extra, role: 'pong' }, execArgv);
    kids.push(pong);
    await pong.waitFor((l) => l.bench === 'ready', 30_000, 'ready');
    const ping = spawnChild(`${mode} ping`, 'latency', { ...base, ...extra, role: 'ping' }, execArgv);
    kids.push(ping);
    const line = await ping.waitFor((l) => l.bench === 'result', 120_000, 'a latency result');
    await Promise.all(kids.map((k) => k.finish()));
    return line.oneWayUs as OneWay;
  } finally {
    for (const k of kids) k.kill();
    await Promise.all(kids.map((k) => k.exited));
    if (store !== null) {
      store.close();
      unlinkStore(tag);
    }
    if (path !== null) removeFile(path);
  }
}

export async function runLatency(opts: { trips: number; warmup: number; repeats: number; execArgv: string[]; log: (s: string) => void }): Promise<LatencyResult> {
  const runs = { 'store-blocking': [], 'store-async': [], 'store-spin': [], unix: [] } as Record<LatencyMode, OneWay[]>;
  const errors: string[] = [];
  for (let r = 0; r < opts.repeats; r++) {
    for (const mode of LATENCY_MODES) {
      try {
        const ow = await once(mode, opts.trips, opts.warmup, opts.execArgv);
        runs[mode].push(ow);
        opts.log(`  latency ${mode.padEnd(15)} one-way p50 ${ow.p50.toFixed(1)} µs, p99 ${ow.p99.toFixed(1)} µs`);
      } catch (err) {
        errors.push(`${mode}: ${(err as Error).message}`);
        opts.log(`  latency ${mode}: FAILED ${(err as Error).message}`);
      }
    }
  }
  const summary = Object.fromEntries(
    LATENCY_MODES.map((m) => [m, { p50: summarize(runs[m].map((x) => x.p50)), p99: summarize(runs[m].map((x) => x.p99)) }]),
  ) as LatencyResult['summary'];
  return { trips: opts.trips, warmup: opts.warmup, repeats: opts.repeats, runs, summary, errors };
}
