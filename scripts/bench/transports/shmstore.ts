// shmstore streams: the producer publishes each table with Publisher.publishSync (Arrow IPC
// encoded straight into a store object: one copy), each consumer iterates a Subscriber with
// `for await` and reads msg.table() (zero-copy columns over shared memory).
//
// Retention is 'lossless' (on a store with eviction 'none', so nothing is ever evicted): the
// subscribers keep cursors in the store, the publisher pins each message until every
// subscriber has passed it, then deletes it, and when the store is full it waits for them
// (publish() instead of publishSync()). So every consumer gets every message from a bounded
// store, and a fast producer is paced by the slowest consumer, like the sockets'
// back-pressure. 'evict' would lose messages whenever a consumer falls a store behind (the
// benchmark then checks counts and fails), unless the store held all W + M messages at once.
//
// Every process opens the store with prefault, so the clock measures the steady state a
// long-running pipeline is in after its first lap round the store, not that lap's page faults
// (one per 4 KiB per process: a run's first 256 MiB of 1 MiB puts were ~9x slower here).
//
// A store is created per run under a unique name and always unlinked (also on failure and
// Ctrl-C: the harness tracks it).
import { ObjectId, ObjectStore, Publisher, StoreError, Subscriber, TableDecoder, encodeTable } from '../../../src/index.js';
import { Tally, batchFor, expectedChecksum, makeBatches, startClock, totalMessages, warmUpConsumer } from '../common.js';
import { trackStore, uniqueName, unlinkStore } from '../harness.js';
import { runWithChildren, type ConsumerContext, type ProducerContext, type RunRequest, type RunResult, type Transport } from './types.js';

const STREAM = 'bench';
const MiB = 1024 * 1024;

/** Store capacity for messages of `bytes`: room for many in flight, at most 256 MiB. */
export function storeCapacity(bytes: number): number {
  if (bytes >= 512 * 1024) return 256 * MiB; // 1 MiB batches: 255 messages in flight
  if (bytes >= 64 * 1024) return 64 * MiB; // 128 KiB batches: ~500
  return 16 * MiB; // ~1 KiB batches: ~11k
}

export const transport: Transport = {
  name: 'shmstore',
  label: 'shmstore',
  describe: "Publisher.publishSync(table) -> Subscriber (for await), msg.table(); lossless retention, store with eviction 'none', opened with prefault",
  available: async () => null,
  async run(req: RunRequest): Promise<RunResult> {
    const bytes = encodeTable(makeBatches(req.rows, 1)[0].table).byteLength;
    const capacity = req.storeBytes ?? storeCapacity(bytes);
    const slot = Math.ceil((bytes + 4) / 64) * 64;
    const maxObjects = Math.min(1 << 24, Math.ceil(capacity / slot) + 64);
    const name = uniqueName('stream');
    trackStore(name);
    const store = ObjectStore.create(name, { capacity, maxObjects, maxClients: 16, eviction: 'none' });
    return runWithChildren('shmstore', req, {
      params: { store: name },
      producerOwnsConsumers: false,
      extra: { storeCapacity: capacity, maxObjects, retention: 'lossless', eviction: 'none' },
      cleanup: () => {
        store.close();
        unlinkStore(name);
      },
    });
  },
};

export async function producer(ctx: ProducerContext) {
  const { cfg, batches } = ctx;
  using store = ObjectStore.open(String(cfg.params.store), { prefault: true });
  const pub = new Publisher(store, STREAM, { retention: 'lossless', timeoutMs: 60_000 });
  const expected = expectedChecksum(batches, totalMessages(cfg));
  // Warm the publish path on a side stream of the same store (deleted right away).
  {
    const warm = new Publisher(store, `${STREAM}-warmup`, { retention: 'evict' });
    const n = cfg.rows <= 1024 ? 2000 : 50;
    for (let i = 0; i < n; i++) {
      const seq = warm.publishSync(batchFor(batches, i));
      store.delete(ObjectId.forStream(warm.stream, seq));
    }
  }
  ctx.ready();
  await ctx.go();
  await pub.waitForSubscribers(cfg.consumers, { timeoutMs: 30_000 });
  let t0 = 0n;
  let waits = 0;
  for (let seq = 0; seq < totalMessages(cfg); seq++) {
    if (seq === cfg.warmup) {
      t0 = startClock();
      waits = 0; // counted over the timed messages, as CPU time is
    }
    const table = batchFor(batches, seq);
    try {
      pub.publishSync(table);
    } catch (err) {
      if (!(err instanceof StoreError) || err.code !== 'ERR_STORE_FULL') throw err;
      waits += 1; // full: wait for the subscribers to pass (lossless)
      await pub.publish(table);
    }
  }
  await pub.end();
  const tDone = process.hrtime.bigint();
  const messageBytes = encodeTable(batchFor(batches, 0)).byteLength;
  // Stay attached until every subscriber has left, so the stream's cursors outlive the run.
  await store.waitFor(() => (pub.subscriberCount() === 0 ? true : undefined), { timeoutMs: 120_000 }, () => true);
  return { t0: t0.toString(), tDone: tDone.toString(), messages: cfg.messages, messageBytes, expectedChecksum: expected, fullWaits: waits };
}

export async function consumer(ctx: ConsumerContext) {
  const { cfg } = ctx;
  using store = ObjectStore.open(String(cfg.params.store), { prefault: true });
  {
    const warm = new TableDecoder();
    warmUpConsumer(cfg.rows, (b) => warm.decode(b), (t) => encodeTable(t).toUint8Array());
  }
  const tally = new Tally(totalMessages(cfg), cfg.warmup);
  using sub = new Subscriber(store, STREAM, { timeoutMs: 60_000 });
  ctx.ready();
  for await (const msg of sub) {
    tally.add(msg.table(), msg.data.byteLength);
  }
  return tally.result(ctx.index, { lost: sub.lostCount });
}
