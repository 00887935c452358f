// The one interface every transport implements, and the generic run that measures it:
//
//   runTransport(transport, { rows: B, warmup: W, messages: M, consumers: K }) → msgs/s per
//   consumer, aggregate MB/s, every consumer's count and checksum against the producer's.
//
// Timing: after the harness's 'go' (every consumer is ready: connected, subscribed, warmed up)
// the producer sends W + M messages and takes t0 as it starts message W; each consumer takes
// tEnd at its last message. Both are hrtime (CLOCK_MONOTONIC, one clock for every process of the
// machine), so elapsed = max(tEnd) - t0. The W messages bring every process to its steady state
// (the JIT has optimised the whole message path) before the clock starts. Warm-up messages still
// queued at t0 are read inside the timed window without being counted in M: a transport's rate
// can only be understated, by at most what it buffers over M. CPU times cover the producer's M
// sends and each consumer's last M messages.
import type { Table } from 'apache-arrow';
import { type ConsumerResult, type DecoderName, type ProducerResult, type RunConfig, type Batch } from '../common.js';
import { Child, spawnChild, type ChildLine } from '../harness.js';

export type TransportName = 'shmstore' | 'single-process' | 'unix-socket' | 'fork-ipc' | 'redis';

export interface RunRequest {
  rows: number;
  /** M: timed messages. */
  messages: number;
  /** W: untimed messages sent before them. */
  warmup: number;
  consumers: number;
  decoder: DecoderName;
  /** Node flags for the children (e.g. --cpu-prof). */
  execArgv?: string[];
  /** Give up after this long (ms). */
  timeoutMs?: number;
  /** shmstore: store capacity in bytes instead of the automatic choice. */
  storeBytes?: number;
}

export interface RunResult {
  transport: TransportName;
  rows: number;
  messages: number;
  warmup: number;
  consumers: number;
  messageBytes: number;
  seconds: number;
  /** Every consumer got the M timed messages in this time: M / seconds. */
  msgsPerSecPerConsumer: number;
  aggregateMsgsPerSec: number;
  /** Bytes delivered to all consumers per second, in MB (10^6 B). */
  aggregateMBps: number;
  /** Seconds until the producer had sent (published) everything. */
  producerSeconds: number;
  expectedChecksum: number;
  consumerResults: {
    index: number;
    messages: number;
    checksum: number;
    orderErrors: number;
    seconds: number;
    cpuMs: number;
    minorFaults: number;
    sleeps: number;
  }[];
  producerCpuMs: number;
  producerMinorFaults: number;
  producerSleeps: number;
  ok: boolean;
  errors: string[];
  extra: Record<string, unknown>;
}

/** Child side: what the producer entry script hands a transport. */
export interface ProducerContext {
  cfg: RunConfig;
  batches: Batch[];
  /** Tell the harness we can take consumers / are ready for go. */
  ready(extra?: Record<string, unknown>): void;
  /** Resolves on the harness's go. */
  go(): Promise<void>;
}

/** Child side: what the consumer entry script hands a transport. */
export interface ConsumerContext {
  cfg: RunConfig;
  index: number;
  ready(): void;
}

export interface Transport {
  readonly name: TransportName;
  readonly label: string;
  /** One line on how it moves a message. */
  readonly describe: string;
  /** null when it can run here, else why not (printed as a notice). */
  available(): Promise<string | null>;
  /** Group-wide resources (redis-server); stop() is always called after start(). */
  start?(): Promise<void>;
  stop?(): Promise<void>;
  /** The common interface: one measured run. */
  run(req: RunRequest): Promise<RunResult>;
}

/** Child-side half of a transport module (`producer` / `consumer` exports). */
export interface TransportModule {
  producer(ctx: ProducerContext): Promise<Omit<ProducerResult, 'bench' | 'role' | 'pid' | 'cpuMs'>>;
  consumer?(ctx: ConsumerContext): Promise<ConsumerResult>;
}

export interface SpawnPlan {
  /** Transport-specific parameters for the children. */
  params: Record<string, string | number>;
  /** The producer spawns the consumers itself (fork IPC), or there are none (single process). */
  producerOwnsConsumers: boolean;
  /** Released after the run, whatever happened. */
  cleanup(): Promise<void> | void;
  /** Extra facts for the JSON (e.g. store capacity). */
  extra?: Record<string, unknown>;
}

const isResult = (role: string) => (l: ChildLine) => l.bench === 'result' && l.role === role;

/**
 * The generic run: producer child, then K consumer children (unless the producer owns them),
 * the barrier, go, and the results.
 */
export async function runWithChildren(name: TransportName, req: RunRequest, plan: SpawnPlan): Promise<RunResult> {
  const cfg: RunConfig = {
    transport: name,
    rows: req.rows,
    messages: req.messages,
    warmup: req.warmup,
    consumers: req.consumers,
    decoder: req.decoder,
    params: plan.params,
  };
  const timeoutMs = req.timeoutMs ?? 120_000;
  const spawned: Child[] = [];
  const errors: string[] = [];
  try {
    const producer = spawnChild(`${name} producer`, 'producer', cfg, req.execArgv);
    spawned.push(producer);
    await producer.waitFor((l) => l.bench === 'ready', 30_000, 'ready');
    const consumers: Child[] = [];
    if (!plan.producerOwnsConsumers) {
      for (let i = 0; i < req.consumers; i++) {
        const c = spawnChild(`${name} consumer ${i}`, 'consumer', { ...cfg, index: i }, req.execArgv);
        spawned.push(c);
        consumers.push(c);
      }
      await Promise.all(consumers.map((c) => c.waitFor((l) => l.bench === 'ready', 30_000, 'ready')));
    }
    producer.write('go');
    const prod = (await producer.waitFor(isResult('producer'), timeoutMs, 'a producer result')) as unknown as ProducerResult;
    let cons: ConsumerResult[];
    if (plan.producerOwnsConsumers) {
      cons = (await producer.waitForCount(isResult('consumer'), req.consumers, timeoutMs, 'consumer results')) as unknown as ConsumerResult[];
    } else {
      cons = (await Promise.all(
        consumers.map((c) => c.waitFor(isResult('consumer'), timeoutMs, 'a consumer result')),
      )) as unknown as ConsumerResult[];
    }
    cons.sort((a, b) => a.index - b.index);
    await Promise.all(spawned.map((c) => c.finish()));

    const t0 = BigInt(prod.t0);
    const ends = cons.map((c) => BigInt(c.tEnd));
    const last = ends.reduce((a, b) => (b > a ? b : a), t0);
    const seconds = Number(last - t0) / 1e9;
    const sent = req.warmup + req.messages;
    for (const c of cons) {
      if (c.messages !== sent) errors.push(`consumer ${c.index} got ${c.messages} of ${sent} messages`);
      if (c.checksum !== prod.expectedChecksum) {
        errors.push(`consumer ${c.index} checksum ${c.checksum} != expected ${prod.expectedChecksum}`);
      }
      if (c.orderErrors > 0) errors.push(`consumer ${c.index}: ${c.orderErrors} messages out of order (${c.firstOrderError})`);
    }
    if (cons.length !== req.consumers) errors.push(`${cons.length} consumer results of ${req.consumers}`);
    const perConsumer = req.messages / seconds;
    const extra: Record<string, unknown> = { ...(plan.extra ?? {}) };
    for (const [k, v] of Object.entries(prod)) {
      if (!['bench', 'role', 'pid', 't0', 'tDone', 'messages', 'messageBytes', 'expectedChecksum', 'cpuMs', 'minorFaults', 'sleeps'].includes(k)) extra[k] = v;
    }
    return {
      transport: name,
      rows: req.rows,
      messages: req.messages,
      warmup: req.warmup,
      consumers: req.consumers,
      messageBytes: prod.messageBytes,
      seconds,
      msgsPerSecPerConsumer: perConsumer,
      aggregateMsgsPerSec: perConsumer * req.consumers,
      aggregateMBps: (perConsumer * req.consumers * prod.messageBytes) / 1e6,
      producerSeconds: Number(BigInt(prod.tDone) - t0) / 1e9,
      expectedChecksum: prod.expectedChecksum,
      consumerResults: cons.map((c, i) => ({
        index: c.index,
        messages: c.messages,
        checksum: c.checksum,
        orderErrors: c.orderErrors,
        seconds: Number(ends[i] - t0) / 1e9,
        cpuMs: c.cpuMs,
        minorFaults: c.minorFaults,
        sleeps: c.sleeps,
      })),
      producerCpuMs: prod.cpuMs,
      producerMinorFaults: Number(prod.minorFaults),
      producerSleeps: Number(prod.sleeps),
      ok: errors.length === 0,
      errors,
      extra,
    };
  } finally {
    for (const c of spawned) c.kill();
    await Promise.all(spawned.map((c) => c.exited));
    await plan.cleanup();
  }
}

/** A table's Arrow IPC stream bytes, for transports that send bytes. */
export type Encode = (table: Table) => Uint8Array;
