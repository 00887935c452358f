// child_process.fork IPC with `serialization: 'advanced'` (V8's structured clone: a Uint8Array
// goes over the pipe as bytes, no JSON/base64). The producer process forks the K consumers
// itself (the channel is parent <-> child) and sends each one the tableToIPC bytes. Flow
// control: child.send's callback fires once the message is written to the channel; at most
// WINDOW_BYTES per consumer are in flight.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tableToIPC } from 'apache-arrow';
import { Tally, batchFor, expectedChecksum, makeDecode, startClock, totalMessages, warmUpConsumer } from '../common.js';
import { runWithChildren, type ConsumerContext, type ProducerContext, type RunRequest, type RunResult, type Transport } from './types.js';

const WINDOW_BYTES = 8 * 1024 * 1024;
const WINDOW_MESSAGES = 1024;

export const transport: Transport = {
  name: 'fork-ipc',
  label: 'fork IPC',
  describe: "producer forks K consumers, child.send(tableToIPC bytes) with serialization 'advanced', tableFromIPC",
  available: async () => null,
  run: (req: RunRequest): Promise<RunResult> =>
    runWithChildren('fork-ipc', req, { params: {}, producerOwnsConsumers: true, cleanup: () => {} }),
};

interface Peer {
  proc: ChildProcess;
  inflightBytes: number;
  inflightMessages: number;
  wake: (() => void) | null;
  exited: Promise<void>;
}

export async function producer(ctx: ProducerContext) {
  const { cfg, batches } = ctx;
  const script = fileURLToPath(new URL('../children/consumer.js', import.meta.url));
  const peers: Peer[] = [];
  let readyCount = 0;
  let onReady: (() => void) | null = null;
  for (let i = 0; i < cfg.consumers; i++) {
    const proc = fork(script, ['--config', JSON.stringify({ ...cfg, index: i })], {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'], // results go straight to the harness
      execPath: process.execPath,
    });
    const peer: Peer = {
      proc,
      inflightBytes: 0,
      inflightMessages: 0,
      wake: null,
      exited: new Promise((resolve) => proc.once('exit', () => resolve())),
    };
    proc.on('message', (m: unknown) => {
      if ((m as { ready?: boolean }).ready === true) {
        readyCount += 1;
        onReady?.();
      }
    });
    proc.on('error', () => {});
    peers.push(peer);
  }
  // If we die, so do they (they also exit on 'disconnect').
  process.on('exit', () => {
    for (const p of peers) if (p.proc.exitCode === null) p.proc.kill('SIGKILL');
  });
  for (let i = 0; i < 50; i++) tableToIPC(batchFor(batches, i), 'stream'); // warm the encoder
  const expected = expectedChecksum(batches, totalMessages(cfg));
  if (readyCount < cfg.consumers) {
    await new Promise<void>((resolve) => {
      onReady = () => {
        if (readyCount >= cfg.consumers) resolve();
      };
    });
  }
  ctx.ready({ consumerPids: peers.map((p) => p.proc.pid) });
  await ctx.go();

  let t0 = 0n;
  let messageBytes = 0;
  let stalls = 0;
  for (let seq = 0; seq < totalMessages(cfg); seq++) {
    if (seq === cfg.warmup) {
      t0 = startClock();
      stalls = 0; // counted over the timed messages, as CPU time is
    }
    const bytes = tableToIPC(batchFor(batches, seq), 'stream');
    if (seq === 0) messageBytes = bytes.byteLength;
    for (const p of peers) {
      while (p.inflightBytes >= WINDOW_BYTES || p.inflightMessages >= WINDOW_MESSAGES) {
        stalls += 1;
        await new Promise<void>((resolve) => (p.wake = resolve));
      }
      p.inflightBytes += bytes.byteLength;
      p.inflightMessages += 1;
      p.proc.send(bytes, (err) => {
        if (err) throw err;
        p.inflightBytes -= bytes.byteLength;
        p.inflightMessages -= 1;
        const w = p.wake;
        p.wake = null;
        w?.();
      });
    }
  }
  const tDone = process.hrtime.bigint();
  await Promise.all(peers.map((p) => p.exited)); // each exits after its last message
  return { t0: t0.toString(), tDone: tDone.toString(), messages: cfg.messages, messageBytes, expectedChecksum: expected, stalls };
}

export async function consumer(ctx: ConsumerContext) {
  const { cfg } = ctx;
  const decode = makeDecode(cfg.decoder);
  warmUpConsumer(cfg.rows, decode, (t) => tableToIPC(t, 'stream'));
  const tally = new Tally(totalMessages(cfg), cfg.warmup);
  const done = new Promise<void>((resolve, reject) => {
    process.on('message', (m: unknown) => {
      try {
        if (!(m instanceof Uint8Array)) throw new Error(`unexpected message ${typeof m}`);
        if (tally.add(decode(m), m.byteLength)) resolve();
      } catch (err) {
        reject(err);
      }
    });
  });
  ctx.ready();
  await done;
  process.removeAllListeners('message');
  return tally.result(ctx.index);
}
