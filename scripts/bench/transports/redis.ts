// Redis Streams through ioredis: the producer XADDs each message's tableToIPC bytes as one
// field (pipelined, a bounded number of XADDs in flight), each consumer reads with
// XREAD BLOCK (binary-safe: xreadBuffer), decodes and sums every y.
//
// The benchmark starts its own redis-server on 127.0.0.1 on a free port with no persistence
// (--save '' --appendonly no), and stops it at the end. Skipped with a notice when there is no
// redis-server on PATH (apt-get install redis-server) or ioredis is not installed.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { tableToIPC } from 'apache-arrow';
import type { Redis as RedisClient, RedisOptions } from 'ioredis';
import { Tally, batchFor, expectedChecksum, makeBatches, makeDecode, sleep, startClock, totalMessages, warmUpConsumer } from '../common.js';
import { onCleanup, removeFile, trackFile, uniqueName } from '../harness.js';
import { runWithChildren, type ConsumerContext, type ProducerContext, type RunRequest, type RunResult, type Transport } from './types.js';

type RedisCtor = new (options: RedisOptions) => RedisClient;

async function loadRedis(): Promise<RedisCtor> {
  const mod = (await import('ioredis')) as unknown as { Redis?: RedisCtor; default?: RedisCtor };
  const ctor = mod.Redis ?? mod.default;
  if (ctor === undefined) throw new Error('ioredis exports no Redis class');
  return ctor;
}

function onPath(bin: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, bin);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** XADDs in flight / entries per XREAD for messages of `bytes`. */
function windowFor(bytes: number): number {
  return Math.max(2, Math.min(256, Math.floor((8 * 1024 * 1024) / bytes)));
}

let server: ChildProcess | null = null;
let serverDir: string | null = null;
let port = 0;
let admin: RedisClient | null = null;
let removeHook: (() => void) | null = null;
export let redisVersion = '';

export const transport: Transport = {
  name: 'redis',
  label: 'Redis Streams',
  describe: 'redis-server on 127.0.0.1 (no persistence), XADD (pipelined) / XREAD BLOCK via ioredis xreadBuffer, tableFromIPC',
  async available() {
    if (onPath('redis-server') === null) return 'redis: skipped (no redis-server; apt-get install redis-server)';
    try {
      await loadRedis();
    } catch {
      return 'redis: skipped (ioredis is not installed: npm install --save-dev ioredis)';
    }
    return null;
  },
  async start() {
    port = await freePort();
    serverDir = mkdtempSync(join(tmpdir(), 'shmstore-bench-redis-'));
    trackFile(serverDir);
    const proc = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', serverDir,
        '--daemonize', 'no', '--loglevel', 'warning', '--protected-mode', 'yes'],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    server = proc;
    removeHook = onCleanup(() => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    });
    const Redis = await loadRedis();
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with code ${proc.exitCode}`);
      const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, protocol: 2 });
      c.on('error', () => {});
      try {
        await c.connect();
        await c.ping();
        const info = await c.info('server');
        redisVersion = /redis_version:(\S+)/.exec(info)?.[1] ?? '';
        admin = c;
        break;
      } catch {
        c.disconnect();
        if (Date.now() > deadline) throw new Error('redis-server did not accept connections within 10 s');
        await sleep(50);
      }
    }
  },
  async stop() {
    admin?.disconnect();
    admin = null;
    const proc = server;
    server = null;
    if (proc !== null && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    }
    removeHook?.();
    removeHook = null;
    if (serverDir !== null) removeFile(serverDir);
    serverDir = null;
  },
  async run(req: RunRequest): Promise<RunResult> {
    if (admin === null) throw new Error('redis transport not started');
    const key = uniqueName('stream');
    const a = admin;
    return runWithChildren('redis', req, {
      params: { port, key },
      producerOwnsConsumers: false,
      extra: { redisVersion },
      cleanup: async () => {
        await a.del(key);
      },
    });
  },
};

async function connect(port: number, autoPipeline: boolean): Promise<RedisClient> {
  const Redis = await loadRedis();
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, enableAutoPipelining: autoPipeline, protocol: 2, maxRetriesPerRequest: 0 });
  await c.connect();
  return c;
}

export async function producer(ctx: ProducerContext) {
  const { cfg, batches } = ctx;
  const key = String(cfg.params.key);
  const redis = await connect(Number(cfg.params.port), true);
  for (let i = 0; i < 50; i++) tableToIPC(batchFor(batches, i), 'stream'); // warm the encoder
  const expected = expectedChecksum(batches, totalMessages(cfg));
  ctx.ready();
  await ctx.go();
  let t0 = 0n;
  let messageBytes = 0;
  const inflight: Promise<unknown>[] = [];
  let window = 0;
  for (let seq = 0; seq < totalMessages(cfg); seq++) {
    if (seq === cfg.warmup) t0 = startClock();
    const bytes = tableToIPC(batchFor(batches, seq), 'stream');
    if (seq === 0) {
      messageBytes = bytes.byteLength;
      window = windowFor(messageBytes);
    }
    inflight.push(redis.xadd(key, '*', 'd', Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
    if (inflight.length >= window) await inflight.shift();
  }
  await Promise.all(inflight);
  const tDone = process.hrtime.bigint();
  redis.disconnect();
  return { t0: t0.toString(), tDone: tDone.toString(), messages: cfg.messages, messageBytes, expectedChecksum: expected };
}

export async function consumer(ctx: ConsumerContext) {
  const { cfg } = ctx;
  const key = String(cfg.params.key);
  const decode = makeDecode(cfg.decoder);
  warmUpConsumer(cfg.rows, decode, (t) => tableToIPC(t, 'stream'));
  const count = windowFor(tableToIPC(makeBatches(cfg.rows, 1)[0].table, 'stream').byteLength);
  const redis = await connect(Number(cfg.params.port), false);
  const tally = new Tally(totalMessages(cfg), cfg.warmup);
  let last: string | Buffer = '0-0';
  ctx.ready();
  while (tally.messages < totalMessages(cfg)) {
    const reply = (await redis.xreadBuffer('COUNT', count, 'BLOCK', 0, 'STREAMS', key, last)) as
      | [Buffer, [Buffer, Buffer[]][]][]
      | null;
    if (reply === null) continue;
    for (const [, entries] of reply) {
      for (const [id, fields] of entries) {
        const data = fields[1];
        tally.add(decode(data), data.byteLength);
        last = id;
      }
    }
  }
  redis.disconnect();
  return tally.result(ctx.index);
}
