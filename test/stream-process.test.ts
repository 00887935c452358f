// Streams across real processes: lossless delivery to subscribers of different speeds, exact
// loss reports under eviction, and a killed subscriber that stops holding the producer back.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ObjectId } from '../src/object-id.js';
import { spawnChild, type ChildHandle } from './helpers/child.js';
import type { ObjectStore } from '../src/store.js';
import { eventually, tempStore } from './helpers/store.js';
import { checksumOf } from './helpers/stream.js';

interface SubResult {
  received: number;
  inOrder: boolean;
  checksum: number;
  lost: { from: number; to: number }[];
  seqs?: number[];
}

async function result<T>(h: ChildHandle, key: string, timeoutMs = 60_000): Promise<T> {
  const line = await h.waitForLine((l) => l.startsWith(`{"${key}"`), timeoutMs);
  return JSON.parse(line) as T;
}

/** Ids of every object deleted (or evicted) from now on, complete once stop() resolves. */
function watchDeletions(store: ObjectStore): { stop: () => Promise<Set<string>> } {
  const deleted = new Set<string>();
  const start = store.stats().notifications;
  let read = 0;
  const ac = new AbortController();
  const watching = (async () => {
    try {
      for await (const ev of store.notifications({ signal: ac.signal })) {
        read += ev.type === 'missed' ? ev.count : 1;
        if (ev.type === 'deleted') deleted.add(ev.id.toHex());
      }
    } catch {
      // aborted
    }
  })();
  return {
    async stop() {
      assert.ok(await eventually(() => read >= store.stats().notifications - start), 'the reader caught up');
      ac.abort();
      await watching;
      return deleted;
    },
  };
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

test('lossless: 100k messages reach 3 subscribers of different speeds, each exactly once and in order', { timeout: 120_000 }, async (t) => {
  const N = 100_000;
  // 2048 objects at most: the producer must wait for the slowest subscriber many times over.
  const { name } = tempStore(t, { capacity: 4 << 20, maxObjects: 2048 });
  const subs = [
    spawnChild(t, 'stream-peer', ['subscribe', name, 'ticks', '0', '0']),
    spawnChild(t, 'stream-peer', ['subscribe', name, 'ticks', '5000', '5']),
    spawnChild(t, 'stream-peer', ['subscribe', name, 'ticks', '500', '2']),
  ];
  for (const s of subs) await s.waitForLine('{"ready":true}');
  const pub = spawnChild(t, 'stream-peer', ['publish', name, 'ticks', String(N), 'lossless', '3']);
  assert.deepEqual(await result(pub, 'published'), { published: N });
  const expected = checksumOf(range(0, N));
  const pids = new Set<number>();
  for (const s of subs) {
    const r = await result<SubResult>(s, 'received');
    assert.deepEqual(r.lost, []);
    assert.equal(r.received, N);
    assert.equal(r.inOrder, true);
    assert.equal(r.checksum, expected);
    assert.equal((await s.exited).code, 0);
    pids.add(s.pid);
  }
  assert.equal(pids.size, 3);
});

test('evict: a subscriber that starts late is told exactly the seqs that were evicted', { timeout: 60_000 }, async (t) => {
  const N = 3000;
  const { store, name } = tempStore(t, { capacity: 64 * 500, maxObjects: 4096, notificationCapacity: 8192 });
  const deletions = watchDeletions(store);
  const pub = spawnChild(t, 'stream-peer', ['publish', name, 'ev', String(N), 'evict']);
  await result(pub, 'published');
  const deleted = await deletions.stop();
  const present = range(0, N).filter((s) => store.contains(ObjectId.forStream('ev', s)));
  assert.ok(present.length > 0 && present.length < N, `some but not all survived (${present.length})`);

  const sub = spawnChild(t, 'stream-peer', ['subscribe', name, 'ev', '0', '0', 'seqs']);
  const r = await result<SubResult>(sub, 'received');
  assert.deepEqual(r.seqs, present);
  const lost = r.lost.flatMap((l) => range(l.from, l.to));
  const evicted = range(0, N).filter((s) => deleted.has(ObjectId.forStream('ev', s).toHex()));
  assert.deepEqual(lost, evicted, 'the lost seqs are exactly the evicted ones');
  assert.equal(lost.length + r.received, N);
  assert.equal(r.checksum, checksumOf(present));
});

test('evict: a slow subscriber running alongside loses only evicted seqs and never stalls the producer', { timeout: 60_000 }, async (t) => {
  const N = 20_000;
  const { store, name } = tempStore(t, { capacity: 64 * 256, maxObjects: 4096, notificationCapacity: 1 << 16 });
  const deletions = watchDeletions(store);
  const sub = spawnChild(t, 'stream-peer', ['subscribe', name, 'ev2', '100', '3', 'seqs']);
  await sub.waitForLine('{"ready":true}');
  const pub = spawnChild(t, 'stream-peer', ['publish', name, 'ev2', String(N), 'evict']);
  await result(pub, 'published');
  const r = await result<SubResult>(sub, 'received');
  const deleted = await deletions.stop();
  assert.equal(r.inOrder, true);
  const lost = r.lost.flatMap((l) => range(l.from, l.to));
  assert.ok(lost.length > 0, 'the slow subscriber fell behind');
  assert.equal(lost.length + r.received, N);
  for (const s of lost) assert.ok(deleted.has(ObjectId.forStream('ev2', s).toHex()), `seq ${s} reported lost but never evicted`);
  assert.equal(r.checksum, checksumOf(r.seqs!));
});

test('lossless: a killed subscriber stops holding messages back', { timeout: 60_000 }, async (t) => {
  const N = 5000;
  const { name } = tempStore(t, { capacity: 1 << 20, maxObjects: 256 });
  const alive = spawnChild(t, 'stream-peer', ['subscribe', name, 'k', '0', '0']);
  // This one reads a message, then sleeps forever in a busy-wait until it is killed.
  const doomed = spawnChild(t, 'stream-peer', ['subscribe', name, 'k', '1', '3600000']);
  await alive.waitForLine('{"ready":true}');
  await doomed.waitForLine('{"ready":true}');
  const pub = spawnChild(t, 'stream-peer', ['publish', name, 'k', String(N), 'lossless', '2']);
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(!pub.lines.some((l) => l.startsWith('{"published"')), 'the stuck subscriber holds the producer back');
  await doomed.kill('SIGKILL');
  assert.deepEqual(await result(pub, 'published', 30_000), { published: N });
  const r = await result<SubResult>(alive, 'received');
  assert.equal(r.received, N);
  assert.equal(r.checksum, checksumOf(range(0, N)));
});
