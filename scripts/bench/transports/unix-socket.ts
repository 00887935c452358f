// A Unix domain socket per consumer, length-prefixed frames: [u32 LE length][Arrow IPC stream].
// The producer encodes once (tableToIPC) and writes the frame to every consumer's socket
// (corked: one writev per frame), honouring back-pressure ('drain'). A consumer reassembles
// frames (a frame split across reads is copied into one buffer), decodes and sums every y.
import { createConnection, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tableToIPC } from 'apache-arrow';
import { Tally, batchFor, expectedChecksum, makeDecode, startClock, totalMessages, warmUpConsumer } from '../common.js';
import { removeFile, trackFile, uniqueName } from '../harness.js';
import { runWithChildren, type ConsumerContext, type ProducerContext, type RunRequest, type RunResult, type Transport } from './types.js';

export const transport: Transport = {
  name: 'unix-socket',
  label: 'unix socket',
  describe: 'one Unix domain socket per consumer, u32 length-prefixed frames of tableToIPC bytes, tableFromIPC',
  available: async () => null,
  run(req: RunRequest): Promise<RunResult> {
    const path = join(tmpdir(), `${uniqueName('sock')}.sock`);
    trackFile(path);
    return runWithChildren('unix-socket', req, {
      params: { path },
      producerOwnsConsumers: false,
      cleanup: () => removeFile(path),
    });
  },
};

export async function producer(ctx: ProducerContext) {
  const { cfg, batches } = ctx;
  const path = String(cfg.params.path);
  const sockets: Socket[] = [];
  let onConnect: (() => void) | null = null;
  const server = createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
    onConnect?.();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  for (let i = 0; i < 50; i++) tableToIPC(batchFor(batches, i), 'stream'); // warm the encoder
  const expected = expectedChecksum(batches, totalMessages(cfg));
  ctx.ready();
  await ctx.go();
  if (sockets.length < cfg.consumers) {
    await new Promise<void>((resolve) => {
      onConnect = () => {
        if (sockets.length >= cfg.consumers) resolve();
      };
    });
  }
  let t0 = 0n;
  let messageBytes = 0;
  let drains = 0;
  for (let seq = 0; seq < totalMessages(cfg); seq++) {
    if (seq === cfg.warmup) {
      t0 = startClock();
      drains = 0; // counted over the timed messages, as CPU time is
    }
    const bytes = tableToIPC(batchFor(batches, seq), 'stream');
    if (seq === 0) messageBytes = bytes.byteLength;
    const header = Buffer.allocUnsafe(4);
    header.writeUInt32LE(bytes.byteLength, 0);
    const payload = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let blocked: Socket[] | null = null;
    for (const s of sockets) {
      s.cork();
      s.write(header);
      const ok = s.write(payload);
      s.uncork();
      if (!ok) (blocked ??= []).push(s);
    }
    if (blocked !== null) {
      drains += 1;
      await Promise.all(blocked.map((s) => new Promise((resolve) => s.once('drain', resolve))));
    }
  }
  const tDone = process.hrtime.bigint();
  await Promise.all(sockets.map((s) => new Promise<void>((resolve) => s.end(resolve))));
  server.close();
  return { t0: t0.toString(), tDone: tDone.toString(), messages: cfg.messages, messageBytes, expectedChecksum: expected, drains };
}

export async function consumer(ctx: ConsumerContext) {
  const { cfg } = ctx;
  const decode = makeDecode(cfg.decoder);
  warmUpConsumer(cfg.rows, decode, (t) => tableToIPC(t, 'stream'));
  const tally = new Tally(totalMessages(cfg), cfg.warmup);
  const socket = createConnection(String(cfg.params.path));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  ctx.ready();
  // Frame reassembly: `pending` holds a partial header or a partial frame.
  let header: Buffer | null = null; // < 4 bytes of a length prefix
  let frame: Buffer | null = null; // a frame being filled
  let filled = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('end', resolve);
    socket.on('data', (chunk: Buffer) => {
      let pos = 0;
      while (pos < chunk.length) {
        if (frame !== null) {
          const n = Math.min(frame.length - filled, chunk.length - pos);
          chunk.copy(frame, filled, pos, pos + n);
          filled += n;
          pos += n;
          if (filled === frame.length) {
            tally.add(decode(frame), frame.length);
            frame = null;
          }
          continue;
        }
        let len: number;
        if (header !== null || chunk.length - pos < 4) {
          const need = 4 - (header?.length ?? 0);
          const take = chunk.subarray(pos, pos + need);
          header = header === null ? Buffer.from(take) : Buffer.concat([header, take]);
          pos += take.length;
          if (header.length < 4) continue;
          len = header.readUInt32LE(0);
          header = null;
        } else {
          len = chunk.readUInt32LE(pos);
          pos += 4;
        }
        if (chunk.length - pos >= len) {
          // The whole frame is in this read: decode the view in place.
          tally.add(decode(chunk.subarray(pos, pos + len)), len);
          pos += len;
        } else {
          frame = Buffer.allocUnsafeSlow(len);
          filled = 0;
        }
      }
    });
  });
  return tally.result(ctx.index);
}
