#!/usr/bin/env node
// The shmstore benchmark: `npm run bench` (= tsc -p . && node dist/scripts/bench/main.js).
// Also `runBenchCli(argv)` for the `shmstore bench` subcommand.
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { DecoderName } from './common.js';
import { runLatency, type LatencyResult } from './groups/latency.js';
import { runRaw, type RawResult } from './groups/raw.js';
import { runSgd, type SgdResult } from './groups/sgd.js';
import { runTransports, type TransportsResult } from './groups/transports.js';
import { cleanupAll, installCleanupHandlers } from './harness.js';
import {
  evaluateTargets,
  formatLatency,
  formatMachine,
  formatRaw,
  formatSgd,
  formatTargets,
  formatTransports,
  finishMachineFacts,
  machineFacts,
} from './report.js';
import type { TransportName } from './transports/types.js';

const GROUPS = ['transports', 'raw', 'latency', 'sgd'] as const;
type Group = (typeof GROUPS)[number];
const TRANSPORT_NAMES: TransportName[] = ['single-process', 'shmstore', 'unix-socket', 'fork-ipc', 'redis'];

export const HELP = `shmstore benchmark: shmstore streams against the transports Node users already have.

Usage: npm run bench -- [options]        (node dist/scripts/bench/main.js [options])

Groups (all by default):
  transports  1 producer -> K consumer processes, Arrow batches of B rows (x, y Float64),
              every consumer decodes and sums every y; shmstore streams, Unix socket, fork
              IPC (advanced serialization), Redis Streams (when redis-server is installed),
              and the single-process bound (copy + decode + sum)
  raw         create+seal+get+release of 64 B objects per second, one process
  latency     one message in flight between two processes: one-way p50/p99 (store, Unix socket)
  sgd         SGDRegressor.partialFit vs scikit-learn's partial_fit (when python3 has sklearn)

Options:
  --quick               few messages, no warm-up and 1 repeat: a smoke test (< 1 min)
  --only LIST           groups to run, comma-separated (transports,raw,latency,sgd)
  --repeats N           repeats per measurement (default 5; 1 with --quick): median, min, max
  --json                print the JSON instead of the tables (progress goes to stderr)
  --transports LIST     ${TRANSPORT_NAMES.join(',')} (default: all)
  --rows LIST           rows per batch B (default 64,8192,65536: ~1 KiB, 128 KiB, 1 MiB)
  --consumers LIST      consumer processes K (default 1,2)
  --seconds S           target duration of one transport run's timed messages (default 1)
  --warmup S            each run first sends this many seconds' worth of untimed messages, so
                        the clock starts once every process is in its steady state (default 0.5)
  --decoder NAME        how the peer transports decode: tableFromIPC (default) or TableDecoder
                        (shmstore's decoder; shmstore's consumers always use msg.table())
  --store-mib N         shmstore's store capacity in MiB (default: 16 for ~1 KiB batches, 64 for
                        128 KiB, 256 for 1 MiB)
  --out DIR             where the JSON goes (default bench/results)
  --cpu-prof DIR        run every child with --cpu-prof into DIR (for profiling)
  -h, --help            this text

Output: machine facts, a table per group, the targets with "met"/"MISSED", and the full JSON
(every repeat) in bench/results/<ISO date>.json. Exit code 1 if a run failed its correctness
check (counts, order, checksums) or crashed; missed targets do not change the exit code.
Python: the sgd group uses $SHMSTORE_BENCH_PYTHON, else python3, else /usr/bin/python3 (the first
that imports sklearn).
`;

class UsageError extends Error {}

function list<T extends string>(v: string | undefined, allowed: readonly T[] | null, what: string, fallback: T[]): T[] {
  if (v === undefined) return fallback;
  const items = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (items.length === 0) throw new UsageError(`${what}: empty list`);
  if (allowed !== null) for (const i of items) if (!allowed.includes(i as T)) throw new UsageError(`${what}: unknown '${i}' (one of ${allowed.join(', ')})`);
  return items as T[];
}

function ints(v: string | undefined, what: string, fallback: number[]): number[] {
  return list(v, null, what, fallback.map(String)).map((s) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${what}: '${s}' is not a positive integer`);
    return n;
  });
}

export interface BenchOptions {
  quick: boolean;
  groups: Group[];
  repeats: number;
  json: boolean;
  transports: TransportName[];
  rows: number[];
  consumers: number[];
  seconds: number;
  warmupSeconds: number;
  decoder: DecoderName;
  storeBytes: number | null;
  out: string;
  cpuProf: string | null;
}

export function parseBenchArgs(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      repeats: { type: 'string' },
      json: { type: 'boolean' },
      transports: { type: 'string' },
      rows: { type: 'string' },
      consumers: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      decoder: { type: 'string' },
      'store-mib': { type: 'string' },
      out: { type: 'string' },
      'cpu-prof': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const quick = values.quick === true;
  const repeats = ints(values.repeats, '--repeats', [quick ? 1 : 5])[0];
  const seconds = values.seconds === undefined ? 1 : Number(values.seconds);
  if (!(seconds > 0 && seconds <= 60)) throw new UsageError(`--seconds: '${values.seconds}' is not in (0, 60]`);
  const warmupSeconds = values.warmup === undefined ? 0.5 : Number(values.warmup);
  if (!(warmupSeconds >= 0 && warmupSeconds <= 60)) throw new UsageError(`--warmup: '${values.warmup}' is not in [0, 60]`);
  const decoder = (values.decoder ?? 'tableFromIPC') as DecoderName;
  if (decoder !== 'tableFromIPC' && decoder !== 'TableDecoder') throw new UsageError(`--decoder: tableFromIPC or TableDecoder, got '${decoder}'`);
  return {
    quick,
    groups: list(values.only, GROUPS, '--only', [...GROUPS]),
    repeats,
    json: values.json === true,
    transports: list(values.transports, TRANSPORT_NAMES, '--transports', TRANSPORT_NAMES),
    rows: ints(values.rows, '--rows', [64, 8192, 65536]),
    consumers: ints(values.consumers, '--consumers', [1, 2]),
    seconds,
    warmupSeconds,
    decoder,
    storeBytes: values['store-mib'] === undefined ? null : ints(values['store-mib'], '--store-mib', [])[0] * 1024 * 1024,
    out: resolve(values.out ?? 'bench/results'),
    cpuProf: values['cpu-prof'] === undefined ? null : resolve(values['cpu-prof']),
  };
}

export interface BenchReport {
  version: 1;
  command: string;
  options: BenchOptions;
  machine: ReturnType<typeof machineFacts>;
  wallSeconds: number;
  transports: TransportsResult | null;
  raw: RawResult | null;
  latency: LatencyResult | null;
  sgd: SgdResult | null;
  targets: ReturnType<typeof evaluateTargets>;
  notices: string[];
  failures: string[];
}

export async function runBench(opts: BenchOptions, command: string, log: (s: string) => void): Promise<BenchReport> {
  const machine = machineFacts();
  const start = performance.now();
  const execArgv = opts.cpuProf === null ? [] : ['--cpu-prof', '--cpu-prof-dir', opts.cpuProf];
  const notices: string[] = [];
  const failures: string[] = [];
  let transports: TransportsResult | null = null;
  let raw: RawResult | null = null;
  let latency: LatencyResult | null = null;
  let sgd: SgdResult | null = null;
  const group = async <T>(name: Group, fn: () => Promise<T>): Promise<T | null> => {
    if (!opts.groups.includes(name)) return null;
    log(`${name}...`);
    try {
      return await fn();
    } catch (err) {
      failures.push(`${name}: ${(err as Error).stack ?? String(err)}`);
      log(`${name}: FAILED ${(err as Error).message}`);
      return null;
    }
  };
  transports = await group('transports', () =>
    runTransports({
      rows: opts.rows,
      consumers: opts.consumers,
      transports: opts.transports,
      repeats: opts.repeats,
      quick: opts.quick,
      targetSeconds: opts.seconds,
      warmupSeconds: opts.warmupSeconds,
      decoder: opts.decoder,
      storeBytes: opts.storeBytes,
      execArgv,
      log,
    }),
  );
  if (transports !== null) {
    notices.push(...transports.notices);
    failures.push(...transports.calibrationFailures.map((f) => `transports ${f}`));
    for (const r of transports.table) if (!r.ok) failures.push(`transports ${r.transport} B=${r.rows} K=${r.consumers}: ${r.errors.join('; ')}`);
  }
  raw = await group('raw', () => runRaw({ objects: opts.quick ? 20_000 : 200_000, repeats: opts.repeats, execArgv }));
  latency = await group('latency', () =>
    runLatency({ trips: opts.quick ? 2_000 : 10_000, warmup: opts.quick ? 200 : 1_000, repeats: opts.repeats, execArgv, log }),
  );
  if (latency !== null) failures.push(...latency.errors.map((e) => `latency ${e}`));
  sgd = await group('sgd', () => runSgd({ samples: opts.quick ? 100_000 : 1_000_000, batch: 1000, repeats: opts.repeats, execArgv, log }));
  if (sgd?.skipped) notices.push(sgd.skipped);
  finishMachineFacts(machine);
  return {
    version: 1,
    command,
    options: opts,
    machine,
    wallSeconds: (performance.now() - start) / 1000,
    transports,
    raw,
    latency,
    sgd,
    targets: evaluateTargets(transports, raw, latency, sgd),
    notices,
    failures,
  };
}

export function formatReport(r: BenchReport): string {
  const parts = [formatMachine(r.machine, r.command)];
  if (r.transports !== null) parts.push(formatTransports(r.transports));
  if (r.raw !== null) parts.push(formatRaw(r.raw));
  if (r.latency !== null) parts.push(formatLatency(r.latency));
  if (r.sgd !== null) parts.push(formatSgd(r.sgd));
  parts.push(formatTargets(r.targets, r.options.quick));
  if (r.notices.length > 0) parts.push(['Notices', ...r.notices.map((n) => `  ${n}`)].join('\n'));
  if (r.failures.length > 0) parts.push(['FAILURES', ...r.failures.map((f) => `  ${f}`)].join('\n'));
  parts.push(`(${r.wallSeconds.toFixed(0)} s)`);
  return parts.join('\n\n');
}

/** The CLI: returns the exit code (0 ok, 1 a run failed its checks, 2 usage). */
export async function runBenchCli(argv: string[]): Promise<number> {
  let opts: BenchOptions | 'help';
  try {
    opts = parseBenchArgs(argv);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${HELP}`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(HELP);
    return 0;
  }
  const uninstall = installCleanupHandlers();
  try {
    const command = `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`;
    const log = (s: string) => process.stderr.write(`${s}\n`);
    const report = await runBench(opts, command, log);
    mkdirSync(opts.out, { recursive: true });
    const file = resolve(opts.out, `${report.machine.date.replace(/:/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
    if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
    else process.stdout.write(`\n${formatReport(report)}\nJSON: ${file}\n`);
    if (opts.json) log(`JSON: ${file}`);
    return report.failures.length > 0 ? 1 : 0;
  } finally {
    cleanupAll();
    uninstall();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runBenchCli(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`bench: ${(err as Error)?.stack ?? String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
