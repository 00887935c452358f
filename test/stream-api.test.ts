// Streams in one process: Arrow messages read in place, the end marker, fromSeq, timeouts,
// aborts and bad arguments.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Table, makeTable, makeVector } from 'apache-arrow';
import { ObjectId } from '../src/object-id.js';
import { Publisher, Subscriber } from '../src/stream/index.js';
import { rejectsCode, tempStore, throwsCode } from './helpers/store.js';

test('Arrow batches arrive as tables whose columns live in the message object', async (t) => {
  const { store } = tempStore(t, { capacity: 4 << 20 });
  const sub = new Subscriber(store, 'arrow');
  const pub = new Publisher(store, 'arrow', { retention: 'lossless' });
  for (let b = 0; b < 5; b++) {
    const x = Float64Array.from({ length: 64 }, (_, i) => b * 64 + i);
    await pub.publish(makeTable({ x, y: x.map((v) => 2 * v) }));
  }
  assert.equal(await pub.end(), 5);
  let seen = 0;
  for await (const msg of sub) {
    assert.equal(msg.seq, seen);
    assert.equal(msg.isArrow, true);
    const table = msg.table();
    const y = table.getChild('y')!.data[0].values as Float64Array;
    assert.equal(y.buffer, msg.data.buffer, 'y is a view of the shared object');
    assert.ok(y.byteOffset >= msg.data.byteOffset && y.byteOffset + y.byteLength <= msg.data.byteOffset + msg.data.length);
    assert.equal(y[63], 2 * (seen * 64 + 63));
    seen++;
  }
  assert.equal(seen, 5);
  assert.equal(sub.received, 5);
});

test('a message is released when the iteration moves on; small ones are copies, large ones views', async (t) => {
  const { store } = tempStore(t, { capacity: 1 << 20 });
  const sub = new Subscriber(store, 's');
  const pub = new Publisher(store, 's');
  pub.publishSync(Buffer.alloc(100, 1)); // small: copied out, holds nothing
  pub.publishSync(Buffer.alloc(64 << 10, 2)); // large: a view of shared memory
  pub.publishSync(Buffer.alloc(100, 3));
  await pub.end();
  const views: Buffer[] = [];
  for await (const msg of sub) {
    views.push(msg.data);
    assert.equal(msg.data[0], msg.seq + 1);
    assert.equal(store.list().filter((o) => o.holders > 0).length, msg.seq === 1 ? 2 : 1, 'held: the end marker, and a large message while read');
  }
  assert.deepEqual(views.map((v) => v.length), [100, 0, 100], 'the large view was detached, the copies stay');
  const held = store.list().filter((o) => o.holders > 0);
  assert.deepEqual(held.map((o) => o.id.toHex()), [ObjectId.forStream('s', Number.MAX_SAFE_INTEGER).toHex()],
    'only the end marker, pinned by the publisher, is held');
});

test('fromSeq skips earlier messages; a subscriber past the end finishes at once', async (t) => {
  const { store } = tempStore(t);
  const pub = new Publisher(store, 'f');
  for (let i = 0; i < 10; i++) pub.publishSync(Buffer.from([i]));
  await pub.end();
  const got: number[] = [];
  for await (const msg of new Subscriber(store, 'f', { fromSeq: 7 })) got.push(msg.data[0]);
  assert.deepEqual(got, [7, 8, 9]);
  let none = 0;
  for await (const _ of new Subscriber(store, 'f', { fromSeq: 50 })) none++;
  assert.equal(none, 0);
});

test('a subscriber times out with ERR_TIMEOUT and aborts with ERR_ABORTED', async (t) => {
  const { store } = tempStore(t);
  const idle = new Subscriber(store, 'quiet', { timeoutMs: 50 });
  await rejectsCode(idle.next(), 'ERR_TIMEOUT');
  const ac = new AbortController();
  const sub = new Subscriber(store, 'quiet', { signal: ac.signal });
  const pending = sub.next();
  ac.abort();
  await rejectsCode(pending, 'ERR_ABORTED');
});

test('lossless: publishSync gives ERR_STORE_FULL when full, publish waits until the reader moves on', async (t) => {
  // 60 data + 4 metadata bytes: each message takes exactly one 64-byte unit.
  const { store } = tempStore(t, { capacity: 64 * 8, maxObjects: 64 });
  const sub = new Subscriber(store, 'full');
  const pub = new Publisher(store, 'full', { retention: 'lossless', timeoutMs: 5000 });
  for (let i = 0; i < 8; i++) pub.publishSync(Buffer.alloc(60, i));
  throwsCode(() => pub.publishSync(Buffer.alloc(60, 8)), 'ERR_STORE_FULL');
  assert.equal(store.stats().evictions, 0, 'lossless messages are pinned, never evicted');
  const waiting = pub.publish(Buffer.alloc(60, 8));
  const got: number[] = [];
  for (let i = 0; i < 9; i++) {
    const r = await sub.next();
    assert.equal(r.done, false);
    got.push(r.value!.data[0]);
  }
  assert.equal(await waiting, 8);
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(sub.lost, []);
});

test('lossless: a table whose column is released while its publish waits for room is refused, not stored short', async (t) => {
  const { store } = tempStore(t, { capacity: 650_000 });
  const column = store.get((() => {
    const id = ObjectId.random();
    store.put(id, new Uint8Array(new Float64Array(25_000).map((_, i) => i).buffer));
    return id;
  })())!;
  const table = new Table({ x: makeVector(new Float64Array(column.data.buffer, column.data.byteOffset, 25_000)) });
  const sub = new Subscriber(store, 'short', { timeoutMs: 5000 });
  const pub = new Publisher(store, 'short', { retention: 'lossless', timeoutMs: 5000 });
  await pub.publish(new Uint8Array(250_000)); // seq 0 fills the store with the column
  const waiting = pub.publish(table); // no room until seq 0 is read
  await new Promise((r) => setTimeout(r, 50));
  column.release(); // the table's column now reads as empty
  assert.equal((await sub.next()).value?.seq, 0);
  await rejectsCode(waiting, 'ERR_INVALID_ARGUMENT');
  sub.close();
});

test('lossless: a slow subscriber of a small store lets the producer on long before it catches up', { timeout: 30_000 }, async (t) => {
  // 64 objects: the subscriber stores its cursor every 8 messages, so a producer waiting for
  // room gets some after ~8 reads (~160 ms), well within its 1 s timeout; waiting for all 64
  // (~1.3 s) would not be.
  const { store } = tempStore(t, { capacity: 1 << 20, maxObjects: 64 });
  const sub = new Subscriber(store, 'slow', { timeoutMs: 10_000 });
  const pub = new Publisher(store, 'slow', { retention: 'lossless', timeoutMs: 1000 });
  const reader = (async () => {
    let n = 0;
    for await (const msg of sub) {
      assert.equal(msg.data[0], n++ % 256);
      await new Promise((r) => setTimeout(r, 20));
    }
    return n;
  })();
  for (let i = 0; i < 96; i++) await pub.publish(Buffer.alloc(100, i % 256));
  await pub.end();
  assert.equal(await reader, 96);
});

test('overlapping publishes keep their order; end() and drain() wait for room in lossless', async (t) => {
  const { store } = tempStore(t, { capacity: 64 * 4, maxObjects: 64 });
  const sub = new Subscriber(store, 'q');
  const pub = new Publisher(store, 'q', { retention: 'lossless', timeoutMs: 5000 });
  // Six 60-byte messages into room for four (each takes one 64-byte unit with its metadata),
  // plus the end marker: the later ones wait for the reader, in the order they were called.
  const seqs = Array.from({ length: 6 }, (_, i) => pub.publish(Buffer.alloc(60, i)));
  throwsCode(() => pub.publishSync(Buffer.alloc(60, 9)), 'ERR_INVALID_ARGUMENT');
  const ended = pub.end();
  const drained = pub.drain();
  const got: number[] = [];
  for await (const msg of sub) got.push(msg.data[0]);
  assert.deepEqual(got, [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(await Promise.all(seqs), [0, 1, 2, 3, 4, 5]);
  assert.equal(await ended, 6);
  await drained;
  assert.ok(pub.waitedMs > 0);
  assert.deepEqual(store.list().map((o) => o.id.toHex()), [ObjectId.forStream('q', Number.MAX_SAFE_INTEGER).toHex()],
    'drained: only the end marker is left');
});

test('bad arguments are ERR_INVALID_ARGUMENT', async (t) => {
  const { store } = tempStore(t);
  throwsCode(() => new Publisher(store, '' as string), 'ERR_INVALID_ARGUMENT');
  throwsCode(() => new Publisher(store, 's', { retention: 'sometimes' as 'evict' }), 'ERR_INVALID_ARGUMENT');
  throwsCode(() => new Publisher(store, 's', { bogus: 1 } as object), 'ERR_INVALID_ARGUMENT');
  throwsCode(() => new Subscriber(store, 's', { fromSeq: -1 }), 'ERR_INVALID_ARGUMENT');
  throwsCode(() => new Subscriber(store, 's', { timeoutMs: Number.NaN }), 'ERR_INVALID_ARGUMENT');
  const pub = new Publisher(store, 'p');
  throwsCode(() => pub.publishSync('text' as unknown as Uint8Array), 'ERR_INVALID_ARGUMENT');
  await pub.end();
  throwsCode(() => pub.publishSync(Buffer.from([1])), 'ERR_INVALID_ARGUMENT');
  assert.equal(ObjectId.forStream('p', 3).equals(ObjectId.forStream('p', 3)), true);
});
