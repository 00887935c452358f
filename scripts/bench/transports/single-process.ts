// The single-process bound: what one process does per message if producer and consumers were
// the same thread and the "transport" were one memcpy. Per message: encode the table and copy
// it once into a preallocated buffer (shmstore's own encodeTable + writeInto, the publisher's
// write path), then for each of the K "consumers" decode it (shmstore's TableDecoder, zero
// copy, what msg.table() runs) and sum every y. The buffer is reused, so it stays in cache:
// this is an upper bound, not a transport.
import { TableDecoder, TableEncoder } from '../../../src/arrow/index.js';
import { Tally, batchFor, expectedChecksum, send, startClock, totalMessages, warmUpConsumer } from '../common.js';
import { runWithChildren, type ProducerContext, type RunRequest, type RunResult, type Transport } from './types.js';

export const transport: Transport = {
  name: 'single-process',
  label: 'single process',
  describe: 'one process: encode + copy once into a reused buffer, then decode + sum y once per consumer',
  available: async () => null,
  run: (req: RunRequest): Promise<RunResult> =>
    runWithChildren('single-process', req, { params: {}, producerOwnsConsumers: true, cleanup: () => {} }),
};

export async function producer(ctx: ProducerContext) {
  const { cfg, batches } = ctx;
  const encoder = new TableEncoder();
  const decoders = Array.from({ length: cfg.consumers }, () => new TableDecoder());
  const tallies = Array.from({ length: cfg.consumers }, () => new Tally(totalMessages(cfg)));
  const messageBytes = encoder.encode(batchFor(batches, 0)).byteLength;
  const buf = new Uint8Array(messageBytes);
  {
    const warm = new TableDecoder();
    warmUpConsumer(cfg.rows, (b) => warm.decode(b), (t) => encoder.encode(t).toUint8Array());
  }
  const expected = expectedChecksum(batches, totalMessages(cfg));
  ctx.ready();
  await ctx.go();
  let t0 = 0n;
  for (let seq = 0; seq < totalMessages(cfg); seq++) {
    if (seq === cfg.warmup) t0 = startClock();
    const enc = encoder.encode(batchFor(batches, seq));
    enc.writeInto(buf);
    for (let k = 0; k < tallies.length; k++) tallies[k].add(decoders[k].decode(buf), enc.byteLength);
  }
  const tDone = process.hrtime.bigint();
  for (let k = 0; k < tallies.length; k++) send(tallies[k].result(k));
  return { t0: t0.toString(), tDone: tDone.toString(), messages: cfg.messages, messageBytes, expectedChecksum: expected };
}
