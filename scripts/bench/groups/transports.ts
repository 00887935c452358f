// The transports group: for every B (rows per batch), K (consumers) and transport, `repeats`
// runs of one producer -> K consumers. M (timed messages per run) is chosen per transport, B and
// K from a short calibration run so that a run takes about `targetSeconds`, and W (untimed
// warm-up messages sent first) so that they take about `warmupSeconds` (fixed small M and no W
// with --quick). Repeats are interleaved (repeat 1 of every configuration, then repeat 2, ...),
// so a slow moment of a shared machine does not land on one transport only.
import { median, summarize, type DecoderName, type Summary } from '../common.js';
import { TRANSPORTS } from '../transports/index.js';
import type { RunResult, Transport, TransportName } from '../transports/types.js';

export interface TransportsOptions {
  rows: number[];
  consumers: number[];
  transports: TransportName[];
  repeats: number;
  quick: boolean;
  targetSeconds: number;
  warmupSeconds: number;
  decoder: DecoderName;
  /** shmstore store capacity (bytes), else automatic. */
  storeBytes: number | null;
  execArgv: string[];
  log: (line: string) => void;
}

export interface FailedRun {
  transport: TransportName;
  rows: number;
  consumers: number;
  messages: number;
  ok: false;
  errors: string[];
}

export type RunRecord = (RunResult | FailedRun) & { repeat: number };

export interface TransportRow {
  rows: number;
  consumers: number;
  transport: TransportName;
  label: string;
  messages: number;
  warmup: number;
  messageBytes: number;
  msgsPerSecPerConsumer: Summary;
  aggregateMBps: Summary;
  /** Median CPU time per timed message: the producer process, and a consumer process (mean of the K). */
  cpuMicrosPerMessage: { producer: number; consumer: number };
  /** This transport's median ÷ the single-process bound's, same B and K. */
  vsBound: number | null;
  /** shmstore's median ÷ this transport's (how many times faster shmstore is). */
  shmstoreOverThis: number | null;
  ok: boolean;
  errors: string[];
}

export interface TransportsResult {
  options: Omit<TransportsOptions, 'log' | 'execArgv'>;
  transports: { name: TransportName; label: string; describe: string; skipped: string | null }[];
  notices: string[];
  calibration: RunRecord[];
  /** Calibration runs that failed their checks or crashed (M then falls back to a small default). */
  calibrationFailures: string[];
  runs: RunRecord[];
  table: TransportRow[];
}

/** Calibration M and fixed --quick M per B. */
function smallM(rows: number): number {
  if (rows <= 256) return 3000;
  if (rows <= 16384) return 300;
  return 60;
}

/** Redis holds a whole run in memory: bound (W + M) * message size there (2 GiB). */
function maxMessages(name: TransportName, messageBytes: number): number {
  return name === 'redis' ? Math.floor((2 * 1024 ** 3) / messageBytes) : 2_000_000;
}

async function attempt(t: Transport, rows: number, consumers: number, messages: number, warmup: number, opts: TransportsOptions): Promise<RunResult | FailedRun> {
  try {
    return await t.run({
      rows,
      consumers,
      messages,
      warmup,
      decoder: opts.decoder,
      execArgv: opts.execArgv,
      timeoutMs: 180_000,
      storeBytes: opts.storeBytes ?? undefined,
    });
  } catch (err) {
    return { transport: t.name, rows, consumers, messages, ok: false, errors: [(err as Error).message] };
  }
}

function fmtRate(r: RunResult | FailedRun): string {
  if (!r.ok && !('seconds' in r)) return `FAILED: ${r.errors.join('; ')}`;
  const rr = r as RunResult;
  const status = rr.ok ? '' : `  FAILED: ${rr.errors.join('; ')}`;
  return `${Math.round(rr.msgsPerSecPerConsumer).toLocaleString('en-US')} msgs/s/consumer in ${rr.seconds.toFixed(2)} s${status}`;
}

export async function runTransports(opts: TransportsOptions): Promise<TransportsResult> {
  const notices: string[] = [];
  const selected: Transport[] = [];
  const info: TransportsResult['transports'] = [];
  for (const t of TRANSPORTS) {
    if (!opts.transports.includes(t.name)) continue;
    const why = await t.available();
    info.push({ name: t.name, label: t.label, describe: t.describe, skipped: why });
    if (why !== null) {
      notices.push(why);
      opts.log(why);
      continue;
    }
    selected.push(t);
  }
  const started: Transport[] = [];
  const calibration: RunRecord[] = [];
  const calibrationFailures: string[] = [];
  const runs: RunRecord[] = [];
  const mFor = new Map<string, { m: number; w: number }>();
  const key = (t: TransportName, b: number, k: number) => `${t}/${b}/${k}`;
  try {
    for (const t of selected) {
      if (t.start !== undefined) {
        try {
          await t.start();
          started.push(t);
        } catch (err) {
          const why = `${t.name}: skipped (could not start: ${(err as Error).message})`;
          notices.push(why);
          opts.log(why);
          info.find((i) => i.name === t.name)!.skipped = why;
          if (t.stop !== undefined) await t.stop().catch(() => {});
          continue;
        }
      } else {
        started.push(t);
      }
    }
    const active = started;

    // M per configuration
    for (const b of opts.rows) {
      for (const k of opts.consumers) {
        for (const t of active) {
          const m0 = smallM(b);
          if (opts.quick) {
            mFor.set(key(t.name, b, k), { m: m0, w: 0 });
            continue;
          }
          // Short runs until the rate settles: the first is cold (start-up, JIT, no warm-up), each
          // next one is ~half a run at the last one's rate, after at least as many warm-up messages.
          let r = await attempt(t, b, k, m0, 0, opts);
          calibration.push({ ...r, repeat: -1 });
          let good = r.ok && 'msgsPerSecPerConsumer' in r ? r : null;
          for (let i = 0; i < 3 && good !== null; i++) {
            const rate = good.msgsPerSecPerConsumer;
            const max = maxMessages(t.name, good.messageBytes);
            const m1 = Math.min(max, Math.max(m0, Math.round(rate * 0.5 * opts.targetSeconds)));
            const w1 = opts.warmupSeconds > 0 ? Math.min(max - m1, Math.max(m1, Math.round(rate * opts.warmupSeconds))) : 0;
            r = await attempt(t, b, k, m1, w1, opts);
            calibration.push({ ...r, repeat: -1 });
            if (!r.ok || !('msgsPerSecPerConsumer' in r)) break;
            good = r;
            if (r.msgsPerSecPerConsumer < 1.25 * rate) break;
          }
          if (!r.ok) calibrationFailures.push(`calibration ${t.name} B=${b} K=${k}: ${r.errors.join('; ')}`);
          if (good === null) {
            opts.log(`  calibrate ${t.name} B=${b} K=${k}: ${fmtRate(r)}`);
            mFor.set(key(t.name, b, k), { m: m0, w: 0 });
            continue;
          }
          // The last good run's rate (a later one may have failed its checks).
          const maxM = Math.max(m0, maxMessages(t.name, good.messageBytes));
          const m = Math.min(maxM, Math.max(Math.ceil(m0 / 2), Math.round(good.msgsPerSecPerConsumer * opts.targetSeconds)));
          const w = Math.min(maxM - m, Math.round(good.msgsPerSecPerConsumer * opts.warmupSeconds));
          mFor.set(key(t.name, b, k), { m, w });
          opts.log(`  calibrate ${t.name.padEnd(14)} B=${String(b).padEnd(5)} K=${k}: ${fmtRate(good)} -> W=${w} M=${m}`);
        }
      }
    }

    for (let rep = 0; rep < opts.repeats; rep++) {
      opts.log(`transports: repeat ${rep + 1}/${opts.repeats}`);
      for (const b of opts.rows) {
        for (const k of opts.consumers) {
          for (const t of active) {
            const { m, w } = mFor.get(key(t.name, b, k))!;
            const r = await attempt(t, b, k, m, w, opts);
            runs.push({ ...r, repeat: rep });
            opts.log(`  ${t.name.padEnd(14)} B=${String(b).padEnd(5)} K=${k} W=${String(w).padEnd(6)} M=${String(m).padEnd(6)} ${fmtRate(r)}`);
          }
        }
      }
    }
  } finally {
    for (const t of started) if (t.stop !== undefined) await t.stop().catch(() => {});
  }

  const table: TransportRow[] = [];
  for (const b of opts.rows) {
    for (const k of opts.consumers) {
      const rowsHere: TransportRow[] = [];
      for (const t of started) {
        const mine = runs.filter((r) => r.transport === t.name && r.rows === b && r.consumers === k);
        const good = mine.filter((r): r is RunResult & { repeat: number } => r.ok && 'msgsPerSecPerConsumer' in r);
        const errors = mine.flatMap((r) => r.errors);
        rowsHere.push({
          rows: b,
          consumers: k,
          transport: t.name,
          label: t.label,
          messages: mFor.get(key(t.name, b, k))?.m ?? 0,
          warmup: mFor.get(key(t.name, b, k))?.w ?? 0,
          messageBytes: good[0]?.messageBytes ?? 0,
          msgsPerSecPerConsumer: good.length > 0 ? summarize(good.map((r) => r.msgsPerSecPerConsumer)) : { median: NaN, min: NaN, max: NaN, n: 0 },
          aggregateMBps: good.length > 0 ? summarize(good.map((r) => r.aggregateMBps)) : { median: NaN, min: NaN, max: NaN, n: 0 },
          cpuMicrosPerMessage: {
            producer: median(good.map((r) => (r.producerCpuMs * 1000) / r.messages)),
            consumer: median(good.map((r) => (r.consumerResults.reduce((s, c) => s + c.cpuMs, 0) * 1000) / r.consumerResults.length / r.messages)),
          },
          vsBound: null,
          shmstoreOverThis: null,
          ok: errors.length === 0 && good.length === mine.length && mine.length > 0,
          errors,
        });
      }
      const bound = rowsHere.find((r) => r.transport === 'single-process');
      const shm = rowsHere.find((r) => r.transport === 'shmstore');
      for (const r of rowsHere) {
        const v = r.msgsPerSecPerConsumer.median;
        if (bound !== undefined && Number.isFinite(bound.msgsPerSecPerConsumer.median) && Number.isFinite(v)) {
          r.vsBound = v / bound.msgsPerSecPerConsumer.median;
        }
        if (shm !== undefined && Number.isFinite(shm.msgsPerSecPerConsumer.median) && Number.isFinite(v)) {
          r.shmstoreOverThis = shm.msgsPerSecPerConsumer.median / v;
        }
      }
      table.push(...rowsHere);
    }
  }
  const { log: _log, execArgv: _e, ...rest } = opts;
  return { options: rest, transports: info, notices, calibration, calibrationFailures, runs, table };
}
