// `shmstore demo`: one store, one producer and N consumers, each a separate OS process running
// `shmstore produce` / `shmstore consume`. Children report JSON lines on stdout; the demo shows
// progress (on a TTY), then each consumer's fit against the truth and the exact least squares.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ObjectStore } from '../store.js';
import type { ConsumeResult } from './consume.js';
import type { ProduceResult } from './produce.js';

export interface DemoConfig {
  stream: string;
  rows: number;
  batch: number;
  consumers: number;
  a0: number;
  a1: number;
  noise: number;
  seed: number;
  retention: 'evict' | 'lossless';
  storeBytes: number;
  slowMs: number;
  timeoutMs: number;
  /** Extra flags for every consumer (regressor options), already in CLI form. */
  modelArgs: string[];
}

export interface DemoReport {
  store: string;
  config: Omit<DemoConfig, 'modelArgs'> & { model: string[] };
  truth: { a0: number; a1: number };
  leastSquares: { a0: number; a1: number } | null;
  producer: ProduceResult | null;
  consumers: (ConsumeResult & { index: number; errA0: number; errA1: number; mbPerSec: number })[];
  wallSeconds: number;
  failures: string[];
}

const CLI = fileURLToPath(new URL('./main.js', import.meta.url));

interface Child {
  label: string;
  proc: ChildProcess;
  progress: number;
  result: ProduceResult | ConsumeResult | null;
  exit: Promise<number | null>;
}

function start(label: string, args: string[], onLine: (c: Child, msg: Record<string, unknown>) => void): Child {
  // The ipc channel is only a lifeline: a child exits when the demo dies (see main.ts).
  const proc = spawn(process.execPath, [CLI, ...args, '--json'], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const child: Child = {
    label,
    proc,
    progress: 0,
    result: null,
    exit: new Promise((resolve) => proc.once('exit', (code, sig) => resolve(sig === null ? code : 128))),
  };
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    try {
      onLine(child, JSON.parse(line) as Record<string, unknown>);
    } catch {
      process.stderr.write(`${label}: ${line}\n`);
    }
  });
  return child;
}

export async function runDemo(cfg: DemoConfig, opts: { tty: boolean }): Promise<DemoReport> {
  const storeName = `shmstore-demo-${process.pid}`;
  const batches = Math.ceil(cfg.rows / cfg.batch);
  const failures: string[] = [];
  const children: Child[] = [];
  const store = ObjectStore.create(storeName, { capacity: cfg.storeBytes, maxObjects: 4096, eviction: 'lru' });
  let stopping = false;
  const stopAll = (why: string) => {
    if (!stopping) failures.push(why);
    stopping = true;
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGTERM');
  };
  const onSignal = (sig: NodeJS.Signals) => stopAll(`interrupted by ${sig}`);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const began = performance.now();
  try {
    // --flag=value: values such as -3 must not read as flags.
    const flag = (k: string, v: string | number) => `--${k}=${v}`;
    const common = [flag('store', storeName), flag('stream', cfg.stream), flag('timeout', cfg.timeoutMs)];
    const onLine = (c: Child, msg: Record<string, unknown>) => {
      if (msg.event === 'progress') c.progress = Number(msg.count);
      else if (msg.event === 'result') {
        c.result = msg.result as ProduceResult | ConsumeResult;
        c.progress = c.result.messages; // progress lines are throttled: the last may be missing
      }
    };
    for (let i = 0; i < cfg.consumers; i++) {
      const slow = i === cfg.consumers - 1 && cfg.slowMs > 0 ? [flag('delay', cfg.slowMs)] : [];
      children.push(start(`consumer ${i + 1}`, ['consume', ...common, ...slow, ...cfg.modelArgs], onLine));
    }
    const data = { rows: cfg.rows, batch: cfg.batch, a0: cfg.a0, a1: cfg.a1, noise: cfg.noise, seed: cfg.seed };
    children.push(
      start('producer', ['produce', ...common, ...Object.entries(data).map(([k, v]) => flag(k, v)),
        flag('retention', cfg.retention), flag('subscribers', cfg.consumers)], onLine),
    );
    const timer = opts.tty ? setInterval(() => drawProgress(children, batches), 100) : undefined;
    // A child that fails stops the others: nobody waits for a producer that is gone.
    await Promise.all(
      children.map(async (c) => {
        const code = await c.exit;
        if (code !== 0 && !stopping) stopAll(`${c.label} (pid ${c.proc.pid}) exited with ${code}`);
      }),
    );
    if (timer) {
      clearInterval(timer);
      drawProgress(children, batches);
      process.stdout.write('\n');
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    for (const c of children) if (c.proc.exitCode === null) c.proc.kill('SIGKILL');
    store.close();
    ObjectStore.unlink(storeName);
  }

  const producer = (children.at(-1)?.result as ProduceResult | null) ?? null;
  const ls = producer?.leastSquares ?? null;
  const consumers = children.slice(0, -1).flatMap((c, index) => {
    const r = c.result as ConsumeResult | null;
    if (r === null) {
      if (failures.length === 0) failures.push(`${c.label} reported no result`);
      return [];
    }
    if (cfg.retention === 'lossless' && (r.messages !== batches || r.lost !== 0)) {
      failures.push(`${c.label} got ${r.messages} of ${batches} messages (${r.lost} lost) in a lossless stream`);
    }
    return [{ ...r, index: index + 1, errA0: r.a0 - cfg.a0, errA1: r.a1 - cfg.a1, mbPerSec: r.seconds > 0 ? r.bytes / r.seconds / 1e6 : 0 }];
  });
  const { modelArgs, ...rest } = cfg;
  return {
    store: storeName,
    config: { ...rest, model: modelArgs },
    truth: { a0: cfg.a0, a1: cfg.a1 },
    leastSquares: ls,
    producer,
    consumers,
    wallSeconds: (performance.now() - began) / 1000,
    failures,
  };
}

let drawn = 0;
function drawProgress(children: Child[], batches: number): void {
  const lines = children.map((c) => {
    const frac = Math.min(1, c.progress / batches);
    const bar = '█'.repeat(Math.round(frac * 30)).padEnd(30, '░');
    return `${c.label.padEnd(11)} ${bar} ${String(c.progress).padStart(7)}/${batches}`;
  });
  if (drawn > 0) process.stdout.write(`\x1b[${drawn}A`);
  process.stdout.write(lines.map((l) => `\x1b[2K${l}\n`).join(''));
  drawn = lines.length;
}

const f6 = (v: number) => (Number.isFinite(v) ? v.toFixed(6) : 'n/a').padStart(11);

export function formatReport(r: DemoReport): string {
  const c = r.config;
  const out: string[] = [];
  out.push(`shmstore demo: ${c.rows.toLocaleString('en')} rows in batches of ${c.batch.toLocaleString('en')}, ` +
    `${c.consumers} consumers, retention ${c.retention}, store ${(c.storeBytes / 2 ** 20).toFixed(0)} MiB`);
  out.push('');
  out.push(`${'fit'.padEnd(22)}${'a0'.padStart(11)} ${'a1'.padStart(11)}`);
  out.push(`${'truth'.padEnd(22)}${f6(r.truth.a0)} ${f6(r.truth.a1)}`);
  if (r.leastSquares) out.push(`${'least squares (all)'.padEnd(22)}${f6(r.leastSquares.a0)} ${f6(r.leastSquares.a1)}`);
  for (const k of r.consumers) {
    out.push(`${`consumer ${k.index} (pid ${k.pid})`.padEnd(22)}${f6(k.a0)} ${f6(k.a1)}   ` +
      `${k.messages} msgs, ${k.lost} lost, ${k.mbPerSec.toFixed(1)} MB/s, ${k.seconds.toFixed(2)} s`);
  }
  if (r.producer) {
    const p = r.producer;
    out.push(`${`producer (pid ${p.pid})`.padEnd(22)}${p.messages} msgs in ${p.seconds.toFixed(2)} s ` +
      `(${(p.messages / Math.max(p.seconds, 1e-9)).toFixed(0)} msgs/s, ${(p.bytes / Math.max(p.seconds, 1e-9) / 1e6).toFixed(1)} MB/s), ` +
      `waited ${p.waitedSeconds.toFixed(2)} s for room`);
  }
  out.push(`wall time ${r.wallSeconds.toFixed(2)} s`);
  for (const f of r.failures) out.push(`FAILED: ${f}`);
  return out.join('\n');
}
