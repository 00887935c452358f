// Shared pieces of the benchmark: the workload (Arrow batches of x, y Float64), the per-consumer
// tally (count, order, checksum), statistics, and the line protocol between the harness and its
// child processes.
//
// Child protocol: a child writes one JSON object per line on stdout, each with a `bench` key
// ('ready' | 'result' | 'error'); anything else it prints is passed through as a log. The
// harness writes 'go\n' on the producer's stdin to start the clock. Every child exits when its
// stdin closes (the harness is gone), so nothing outlives a killed harness.
import { makeTable, tableFromIPC, type Table } from 'apache-arrow';
import { TableDecoder } from '../../src/arrow/index.js';

// ---------------------------------------------------------------------------------------------
// The workload

import { seededRandom } from '../../src/cli/dataset.js';

export { seededRandom };

/** Distinct batches a producer cycles through (generation is not measured). */
export const DISTINCT_BATCHES = 8;

/** Standard normal samples (Box-Muller) from a uniform generator. */
export function gaussian(rand: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    let u = 0;
    while (u === 0) u = rand();
    const v = rand();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** x ~ U(-2, 2), y = a0 + a1 x + noise N(0, 1). */
export function fillLine(x: Float64Array, y: Float64Array, seed: number, a0 = 2, a1 = -3, noise = 0.5): void {
  const rand = seededRandom(seed);
  const gauss = gaussian(rand);
  for (let i = 0; i < x.length; i++) {
    x[i] = rand() * 4 - 2;
    y[i] = a0 + a1 * x[i] + noise * gauss();
  }
}

/**
 * Sum of every element, four independent accumulators (a single chain of dependent adds would
 * make the consumers' common work latency-bound at ~1 ns per value, hiding the transports).
 * The producer's expected sums use this same function, so checksums agree bit for bit.
 */
export function sumOf(v: Float64Array): number {
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  const n = v.length;
  const n4 = n - (n % 4);
  let i = 0;
  for (; i < n4; i += 4) {
    a += v[i];
    b += v[i + 1];
    c += v[i + 2];
    d += v[i + 3];
  }
  for (; i < n; i++) a += v[i];
  return a + b + (c + d);
}

export interface Batch {
  table: Table;
  /** The x column's memory (the table's column is a view of it): x[0] carries the seq. */
  x: Float64Array;
  /** sumOf(y): what a consumer computes per message. */
  ySum: number;
}

/** The producer's distinct batches of `rows` rows. */
export function makeBatches(rows: number, count = DISTINCT_BATCHES): Batch[] {
  const out: Batch[] = [];
  for (let b = 0; b < count; b++) {
    const x = new Float64Array(rows);
    const y = new Float64Array(rows);
    fillLine(x, y, 1000 + b);
    out.push({ table: makeTable({ x, y }), x, ySum: sumOf(y) });
  }
  return out;
}

/** The batch for message `seq`, stamped with its seq in x[0] (the consumers' order check). */
export function batchFor(batches: Batch[], seq: number): Table {
  const b = batches[seq % batches.length];
  b.x[0] = seq;
  return b.table;
}

/** What every consumer's checksum must equal, bit for bit (same additions in the same order). */
export function expectedChecksum(batches: Batch[], messages: number): number {
  let sum = 0;
  for (let seq = 0; seq < messages; seq++) sum += batches[seq % batches.length].ySum;
  return sum;
}

export type DecoderName = 'tableFromIPC' | 'TableDecoder';

/** How a non-shmstore consumer turns bytes into a table. */
export function makeDecode(name: DecoderName): (bytes: Uint8Array) => Table {
  if (name === 'TableDecoder') {
    const decoder = new TableDecoder();
    return (bytes) => decoder.decode(bytes);
  }
  return (bytes) => tableFromIPC(bytes);
}

/** One consumer's bookkeeping: reads every y of every message and checks the order. */
export class Tally {
  messages = 0;
  rows = 0;
  bytes = 0;
  checksum = 0;
  orderErrors = 0;
  firstOrderError: string | null = null;
  /** hrtime (ns) when the expected last message was done. */
  tEnd = 0n;

  /** `warmup`: CPU and OS counters restart after this many messages (the timed window). */
  constructor(
    readonly expected: number,
    readonly warmup = 0,
  ) {}

  /** Reads the table: sums every y, checks x[0] == seq. Returns true when all expected are in. */
  add(table: Table, byteLength: number): boolean {
    const seq = this.messages;
    let s = 0;
    let first = true;
    for (const batch of table.batches) {
      const y = batch.getChild('y')?.toArray() as Float64Array | undefined;
      if (!(y instanceof Float64Array)) throw new Error(`message ${seq} has no Float64 column y`);
      s += sumOf(y);
      if (first) {
        first = false;
        const x = batch.getChild('x')?.toArray() as Float64Array | undefined;
        if (!(x instanceof Float64Array) || x[0] !== seq) {
          this.orderErrors += 1;
          this.firstOrderError ??= `message #${seq} carries x[0] = ${x?.[0]}`;
        }
      }
      this.rows += batch.numRows;
    }
    this.checksum += s;
    this.bytes += byteLength;
    this.messages = seq + 1;
    if (this.messages === this.warmup) resetCpu();
    if (this.messages === this.expected) {
      this.tEnd = process.hrtime.bigint();
      return true;
    }
    return false;
  }

  result(index: number, extra: Record<string, unknown> = {}): ConsumerResult {
    return {
      bench: 'result',
      role: 'consumer',
      index,
      pid: process.pid,
      messages: this.messages,
      rows: this.rows,
      bytes: this.bytes,
      checksum: this.checksum,
      orderErrors: this.orderErrors,
      firstOrderError: this.firstOrderError,
      tEnd: this.tEnd.toString(),
      cpuMs: cpuMs(),
      ...osCounters(),
      ...extra,
    };
  }
}

/** Every message of a run: the W warm-up messages, then the M timed ones. */
export function totalMessages(cfg: RunConfig): number {
  return cfg.warmup + cfg.messages;
}

/** Decodes and reads locally made messages so the first timed message does not pay for the JIT. */
export function warmUpConsumer(rows: number, decode: (bytes: Uint8Array) => Table, encode: (t: Table) => Uint8Array): void {
  const batches = makeBatches(Math.min(rows, 1024), 2);
  const tally = new Tally(-1);
  const n = rows <= 1024 ? 2000 : 200;
  for (let i = 0; i < n; i++) tally.add(decode(encode(batchFor(batches, i))), 0);
}

// ---------------------------------------------------------------------------------------------
// Child-side protocol

export interface RunConfig {
  transport: string;
  /** B: rows per batch. */
  rows: number;
  /** M: timed messages per run. */
  messages: number;
  /** W: messages sent first, untimed (the clock starts at message W), so M runs warm. */
  warmup: number;
  /** K: consumer processes. */
  consumers: number;
  /** How non-shmstore consumers decode. */
  decoder: DecoderName;
  /** Transport-specific parameters made by the harness (store name, socket path, port...). */
  params: Record<string, string | number>;
}

export interface ConsumerResult {
  bench: 'result';
  role: 'consumer';
  index: number;
  pid: number;
  messages: number;
  rows: number;
  bytes: number;
  checksum: number;
  orderErrors: number;
  firstOrderError: string | null;
  /** hrtime.bigint() as a string: CLOCK_MONOTONIC, comparable across processes. */
  tEnd: string;
  cpuMs: number;
  minorFaults: number;
  sleeps: number;
  [extra: string]: unknown;
}

export interface ProducerResult {
  bench: 'result';
  role: 'producer';
  pid: number;
  /** hrtime when message W, the first timed one, was started. */
  t0: string;
  /** hrtime when the producer had sent everything. */
  tDone: string;
  messages: number;
  /** Bytes of one message (the Arrow IPC stream), the first one. */
  messageBytes: number;
  expectedChecksum: number;
  cpuMs: number;
  [extra: string]: unknown;
}

let cpuBase = process.cpuUsage();
let faultBase = process.resourceUsage().minorPageFault;
let switchBase = process.resourceUsage().voluntaryContextSwitches;

/** CPU time (user + system) of this process since resetCpu(), in ms. */
export function cpuMs(): number {
  const u = process.cpuUsage(cpuBase);
  return (u.user + u.system) / 1000;
}

/** Minor page faults and voluntary context switches (sleeps) since resetCpu(). */
export function osCounters(): { minorFaults: number; sleeps: number } {
  const r = process.resourceUsage();
  return { minorFaults: r.minorPageFault - faultBase, sleeps: r.voluntaryContextSwitches - switchBase };
}

/** The start of the timed window: counters restart, and the time (hrtime ns) is returned. */
export function startClock(): bigint {
  resetCpu();
  return process.hrtime.bigint();
}

export function resetCpu(): void {
  cpuBase = process.cpuUsage();
  const r = process.resourceUsage();
  faultBase = r.minorPageFault;
  switchBase = r.voluntaryContextSwitches;
}

export function send(msg: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(msg)}\n`);
}

/** The child's config from `--config <json>`. */
export function readConfig<T>(argv = process.argv): T {
  const i = argv.indexOf('--config');
  if (i < 0 || argv[i + 1] === undefined) throw new Error('missing --config <json>');
  return JSON.parse(argv[i + 1]) as T;
}

/**
 * Stdin is the lifeline: the child exits when it closes. `go()` resolves on the harness's
 * 'go' line.
 */
export function lifeline(): { go: () => Promise<void> } {
  let buffered = '';
  let goResolve: (() => void) | null = null;
  let gotGo = false;
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (chunk: string) => {
    buffered += chunk;
    if (!gotGo && buffered.includes('go\n')) {
      gotGo = true;
      goResolve?.();
    }
  });
  process.stdin.on('end', () => process.exit(70));
  process.stdin.on('error', () => process.exit(70));
  return {
    go: () => (gotGo ? Promise.resolve() : new Promise<void>((resolve) => (goResolve = resolve))),
  };
}

/** Runs a child's main, reporting a failure as an 'error' line and exit code 1. */
export function childMain(main: () => Promise<void>): void {
  main().then(
    () => {
      // Let stdout drain, then leave even if a handle (stdin) is still open.
      process.stdout.write('', () => process.exit(0));
    },
    (err: unknown) => {
      const e = err as Error;
      send({ bench: 'error', pid: process.pid, message: e?.stack ?? String(err) });
      process.stdout.write('', () => process.exit(1));
    },
  );
}

// ---------------------------------------------------------------------------------------------
// Statistics

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Nearest-rank percentile (p in [0, 100]). */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function summarize(xs: readonly number[]): Summary {
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
