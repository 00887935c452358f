// Machine facts, the targets of the benchmark issue, and the terminal tables.
import { spawnSync } from 'node:child_process';
import { readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';
import type { Summary } from './common.js';
import type { LatencyResult } from './groups/latency.js';
import type { RawResult } from './groups/raw.js';
import type { SgdResult } from './groups/sgd.js';
import type { TransportRow, TransportsResult } from './groups/transports.js';

export interface MachineFacts {
  date: string;
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  kernel: string;
  node: string;
  v8: string;
  platform: string;
  hypervisor: boolean;
  devShmBytes: number | null;
  loadAverageAtStart: number[];
  git: string | null;
  /** Filled in at the end: load average then, and how busy the whole machine was meanwhile. */
  loadAverageAtEnd?: number[];
  machineBusyPercent?: number | null;
  cpuStatAtStart: number[] | null;
}

/** The aggregate `cpu` line of /proc/stat (user nice system idle iowait irq softirq steal ...). */
export function cpuStat(): number[] | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    return line.trim().split(/\s+/).slice(1).map(Number);
  } catch {
    return null;
  }
}

/** Fills in the end-of-run facts. */
export function finishMachineFacts(m: MachineFacts): void {
  m.loadAverageAtEnd = os.loadavg().map((x) => Number(x.toFixed(2)));
  const end = cpuStat();
  if (m.cpuStatAtStart === null || end === null) {
    m.machineBusyPercent = null;
    return;
  }
  const d = end.map((v, i) => v - (m.cpuStatAtStart![i] ?? 0));
  const total = d.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = (d[3] ?? 0) + (d[4] ?? 0);
  m.machineBusyPercent = total > 0 ? Number((((total - idle) / total) * 100).toFixed(1)) : null;
}

export function machineFacts(): MachineFacts {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  let hypervisor = false;
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    cpuModel = /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? cpuModel;
    hypervisor = /^flags\s*:.*\bhypervisor\b/m.test(info);
  } catch {
    // not Linux
  }
  let devShmBytes: number | null = null;
  try {
    const s = statfsSync('/dev/shm');
    devShmBytes = s.blocks * s.bsize;
  } catch {
    devShmBytes = null;
  }
  let git: string | null = null;
  const rev = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5000 });
  if (rev.status === 0) {
    const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', timeout: 5000 });
    git = rev.stdout.trim() + (dirty.status === 0 && dirty.stdout.trim() !== '' ? ' (uncommitted changes)' : '');
  }
  return {
    date: new Date().toISOString(),
    cpuModel,
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    v8: process.versions.v8,
    platform: `${process.platform}-${process.arch}`,
    hypervisor,
    devShmBytes,
    loadAverageAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
    git,
    cpuStatAtStart: cpuStat(),
  };
}

// ---------------------------------------------------------------------------------------------
// Targets (from the benchmark issue)

export interface Target {
  name: string;
  goal: string;
  measured: string;
  value: number | null;
  met: boolean | null; // null: not measured in this run
}

const BIG = 65536;
const SMALL = 64;

function row(t: TransportsResult | null, b: number, k: number, name: string): TransportRow | undefined {
  return t?.table.find((r) => r.rows === b && r.consumers === k && r.transport === name);
}

function x(v: number): string {
  return `${v.toFixed(v >= 10 ? 1 : 2)}×`;
}

export function evaluateTargets(
  transports: TransportsResult | null,
  raw: RawResult | null,
  latency: LatencyResult | null,
  sgd: SgdResult | null,
): Target[] {
  const out: Target[] = [];
  const add = (name: string, goal: string, value: number | null | undefined, ok: (v: number) => boolean, fmt: (v: number) => string) => {
    const v = value === undefined || value === null || !Number.isFinite(value) ? null : value;
    out.push({ name, goal, value: v, measured: v === null ? 'not measured' : fmt(v), met: v === null ? null : ok(v) });
  };
  const ks = transports?.options.consumers ?? [1];
  for (const k of ks) {
    const shm = row(transports, BIG, k, 'shmstore');
    add(`1 MiB batches, K=${k}: shmstore vs single-process bound`, '≥ 0.8×', shm?.vsBound, (v) => v >= 0.8, x);
    add(`1 MiB batches, K=${k}: shmstore vs Unix socket`, '≥ 3×', row(transports, BIG, k, 'unix-socket')?.shmstoreOverThis, (v) => v >= 3, x);
    add(`1 MiB batches, K=${k}: shmstore vs fork IPC`, '≥ 6×', row(transports, BIG, k, 'fork-ipc')?.shmstoreOverThis, (v) => v >= 6, x);
    add(`1 MiB batches, K=${k}: shmstore vs Redis Streams`, '≥ 20×', row(transports, BIG, k, 'redis')?.shmstoreOverThis, (v) => v >= 20, x);
  }
  const k1 = row(transports, BIG, 1, 'shmstore')?.msgsPerSecPerConsumer.median;
  const k2 = row(transports, BIG, 2, 'shmstore')?.msgsPerSecPerConsumer.median;
  add('1 MiB batches: shmstore aggregate K=2 vs K=1', '≥ 1.5×', k1 !== undefined && k2 !== undefined ? (2 * k2) / k1 : null, (v) => v >= 1.5, x);
  for (const k of ks) {
    add(`64-row batches, K=${k}: shmstore msgs/s per consumer`, '≥ 100,000', row(transports, SMALL, k, 'shmstore')?.msgsPerSecPerConsumer.median,
      (v) => v >= 100_000, (v) => num(v));
  }
  add('raw 64 B objects: create+seal+get+release per second, one process (put + read)', '≥ 1,000,000', raw?.summary.copy?.median,
    (v) => v >= 1e6, (v) => num(v));
  add('  the same through zero-copy views (create + seal + get + release)', '(no target)', raw?.summary.cycle?.median, () => true,
    (v) => num(v));
  add('wake latency between processes (blocking get), one-way p50', '≤ 10 µs', latency?.summary['store-blocking'].p50.median,
    (v) => v <= 10, (v) => `${v.toFixed(1)} µs`);
  add('SGDRegressor vs scikit-learn partial_fit, samples/s (batch 1000)', '≥ 3×', sgd?.ratio, (v) => v >= 3, x);
  add('SGDRegressor vs scikit-learn: max |Δ| of coef and intercept', '≤ 1e-9 (same coefficients)', sgd?.maxAbsDiff,
    (v) => v <= 1e-9, (v) => v.toExponential(1));
  return out;
}

// ---------------------------------------------------------------------------------------------
// Formatting

export function num(v: number): string {
  if (!Number.isFinite(v)) return '—';
  return Math.round(v).toLocaleString('en-US');
}

function bytes(n: number): string {
  if (n >= 1024 * 1024) return `${(n / 1024 / 1024).toFixed(2)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

function range(s: Summary, f: (v: number) => string = num): string {
  if (s.n === 0) return '';
  return `${f(s.min)}–${f(s.max)}`;
}

function table(headers: string[], rows: string[][], right: boolean[]): string {
  const w = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (cells: string[]) =>
    cells.map((c, i) => (right[i] ? c.padStart(w[i]) : c.padEnd(w[i]))).join('  ').trimEnd();
  return [fmt(headers), fmt(w.map((n) => '-'.repeat(n))), ...rows.map(fmt)].map((l) => `  ${l}`).join('\n');
}

export function formatMachine(m: MachineFacts, command: string): string {
  return [
    `shmstore benchmark — ${m.date}`,
    `  machine: ${m.cpuModel}, ${m.cores} cores${m.hypervisor ? ' (virtual machine)' : ''}, ${(m.memoryBytes / 1024 ** 3).toFixed(1)} GiB RAM, ` +
      `/dev/shm ${m.devShmBytes === null ? '?' : `${(m.devShmBytes / 1024 ** 3).toFixed(1)} GiB`}`,
    `  system:  ${m.kernel}, Node ${m.node} (V8 ${m.v8})`,
    `  load:    load average ${m.loadAverageAtStart.join(' ')} at start, ${m.loadAverageAtEnd?.join(' ') ?? '?'} at end; ` +
      `all CPUs ${m.machineBusyPercent ?? '?'}% busy during the run (this benchmark included: on a shared machine, other work shows here)`,
    `  source:  ${m.git ?? 'not a git checkout'}`,
    `  command: ${command}`,
  ].join('\n');
}

export function formatTransports(t: TransportsResult): string {
  const lines: string[] = [];
  lines.push(
    `Transports: 1 producer -> K consumer processes, every message to every consumer in order; Arrow IPC batches of B rows (x, y Float64);`,
    `each consumer decodes and sums every y. A run sends W untimed warm-up messages, then M timed ones.`,
    `Median msgs/s per consumer over the M, ${t.options.repeats} repeat(s) (min–max);`,
    `agg MB/s = bytes delivered to all consumers per second (10^6 B); ×bound = median ÷ single-process bound's;`,
    `CPU µs/msg = CPU time (all threads) per timed message of the producer process / of a consumer process (one process for the bound; redis-server not counted);`,
    `shm÷this = shmstore's median ÷ this one's (same B, K, same run). Peers decode with ${t.options.decoder}.`,
  );
  const headers = ['B rows', 'msg size', 'K', 'transport', 'W', 'M', 'msgs/s/consumer', '(min–max)', 'agg MB/s', 'CPU µs/msg', '×bound', 'shm÷this', 'check'];
  const rows = t.table.map((r) => [
    String(r.rows),
    r.messageBytes > 0 ? bytes(r.messageBytes) : '',
    String(r.consumers),
    r.label,
    String(r.warmup),
    String(r.messages),
    num(r.msgsPerSecPerConsumer.median),
    range(r.msgsPerSecPerConsumer),
    Number.isFinite(r.aggregateMBps.median) ? r.aggregateMBps.median.toFixed(0) : '—',
    Number.isFinite(r.cpuMicrosPerMessage.producer) ? `${r.cpuMicrosPerMessage.producer.toFixed(1)} / ${r.cpuMicrosPerMessage.consumer.toFixed(1)}` : '—',
    r.vsBound === null ? '—' : r.vsBound.toFixed(2),
    r.shmstoreOverThis === null ? '—' : r.shmstoreOverThis.toFixed(1),
    r.ok ? 'ok' : 'FAIL',
  ]);
  lines.push(table(headers, rows, [true, true, true, false, true, true, true, true, true, true, true, true, false]));
  for (const r of t.table) if (!r.ok) lines.push(`  FAIL ${r.label} B=${r.rows} K=${r.consumers}: ${r.errors.slice(0, 3).join('; ')}`);
  lines.push('  check: every consumer got W + M messages, in order (x[0] = seq), and its checksum of y equals the producer\'s.');
  for (const i of t.transports) lines.push(`  ${i.label}: ${i.skipped ?? i.describe}`);
  return lines.join('\n');
}

export function formatRaw(r: RawResult): string {
  const lines = [
    `Raw store operations: 64-byte objects, one process, ${num(r.objects)} pre-generated ids per pass, median of ${r.repeats} (min–max)`,
  ];
  const label: Record<string, string> = {
    cycle: 'create + write 64 B + seal + get + release  (deleted afterwards, untimed)',
    cycleDelete: 'create + write 64 B + seal + get + release + delete',
    put: 'put 64 B + get + release + delete',
    copy: 'put 64 B + read (get + copy + release) + delete',
    bulkDelete: 'delete alone (the untimed bulk delete above)',
  };
  const rows = Object.entries(label).map(([k, l]) => [l, num(r.summary[k].median), range(r.summary[k]), (1e9 / r.summary[k].median).toFixed(0)]);
  lines.push(table(['cycle', 'per second', '(min–max)', 'ns/cycle'], rows, [false, true, true, true]));
  const ops = Object.entries(r.opsSummary).map(([k, s]) => [k, num(s.median), range(s), (1e9 / s.median).toFixed(0)]);
  lines.push(table(['one operation alone', 'per second', '(min–max)', 'ns/op'], ops, [false, true, true, true]));
  return lines.join('\n');
}

export function formatLatency(l: LatencyResult): string {
  const lines = [
    `Wake latency: two processes ping-pong one message in flight, ${num(l.trips)} round trips after ${num(l.warmup)} warm-up, ` +
      `one-way = round trip / 2; median over ${l.repeats} repeat(s) (min–max)`,
  ];
  const label: Record<string, string> = {
    'store-blocking': 'shmstore, blocking store.get(id, wait)',
    'store-async': 'shmstore, await store.getAsync(id)',
    'store-spin': 'shmstore, JS busy-polling store.get(id) (diagnostic)',
    unix: 'Unix domain socket (Node net), 8 B',
  };
  const rows = Object.entries(label).map(([k, name]) => {
    const s = l.summary[k as keyof typeof l.summary];
    const us = (v: number) => v.toFixed(1);
    return [name, s.p50.n > 0 ? us(s.p50.median) : '—', range(s.p50, us), s.p99.n > 0 ? us(s.p99.median) : '—', range(s.p99, us)];
  });
  lines.push(table(['path', 'p50 µs', '(min–max)', 'p99 µs', '(min–max)'], rows, [false, true, true, true, true]));
  for (const e of l.errors) lines.push(`  FAIL ${e}`);
  return lines.join('\n');
}

export function formatSgd(s: SgdResult): string {
  const lines = [
    `SGDRegressor: ${num(s.samples)} samples of y = 2 - 3x + noise, 1 feature, partial_fit in batches of ${s.batch}; ${s.options}; median of ${s.repeats} (min–max)`,
  ];
  const rows: string[][] = [];
  if (s.ours !== null) {
    rows.push(['shmstore SGDRegressor.partialFit (columns)', num(s.ours.samplesPerSec.median), range(s.ours.samplesPerSec),
      s.ours.coef.map((c) => c.toFixed(9)).join(','), s.ours.intercept.toFixed(9)]);
  }
  if (s.sklearn !== null) {
    rows.push([`scikit-learn ${s.versions.sklearn ?? ''} partial_fit (${s.python})`, num(s.sklearn.samplesPerSec.median),
      range(s.sklearn.samplesPerSec), s.sklearn.coef.map((c) => c.toFixed(9)).join(','), s.sklearn.intercept.toFixed(9)]);
  }
  lines.push(table(['implementation', 'samples/s', '(min–max)', 'coef', 'intercept'], rows, [false, true, true, true, true]));
  if (s.skipped !== null) lines.push(`  ${s.skipped}`);
  if (s.ratio !== null) lines.push(`  ratio ${x(s.ratio)}, max |Δ| of coef and intercept ${s.maxAbsDiff!.toExponential(2)}`);
  return lines.join('\n');
}

export function formatTargets(targets: Target[], quick: boolean): string {
  const rows = targets.map((t) => [t.name, t.goal, t.measured, t.met === null ? 'n/a' : t.met ? 'met' : 'MISSED']);
  const title = quick ? 'Targets (ratios from this --quick run: a smoke test, cold and short, not a measure of them)' : 'Targets (ratios from this run)';
  return [title, table(['target', 'goal', 'measured', ''], rows, [false, false, true, false])].join('\n');
}
