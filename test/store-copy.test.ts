// The copying calls: put (create + copy + seal in one call, optionally keeping a reference)
// and read (get + copy + release).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ObjectId } from '../src/object-id.js';
import { Agent } from './helpers/child.js';
import { tempStore } from './helpers/store.js';

test('read copies the data, holds nothing afterwards, and copies nothing into a target that is too small', (t) => {
  const { store } = tempStore(t);
  const id = ObjectId.random();
  store.put(id, Buffer.from('hello world'), Buffer.from('m'));
  const target = Buffer.alloc(16);
  assert.equal(store.read(id, target), 11);
  assert.equal(target.subarray(0, 11).toString(), 'hello world');
  assert.equal(store.list()[0].holders, 0);
  const small = Buffer.alloc(4, 9);
  assert.equal(store.read(id, small), 11, 'the size, larger than the target');
  assert.deepEqual([...small], [9, 9, 9, 9], 'nothing copied');
  assert.equal(store.list()[0].holders, 0, 'a read that does not fit still releases');
  assert.equal(store.read(ObjectId.random(), target), null);
  // A view held in this process keeps its reference through a read.
  const obj = store.get(id)!;
  assert.equal(store.read(id, target), 11);
  assert.equal(store.list()[0].holders, 1);
  assert.equal(obj.data.toString(), 'hello world');
  obj.release();
  assert.equal(store.list()[0].holders, 0);
});

test('put gathers a list of pieces, small or large, and refuses anything but bytes', (t) => {
  const { store } = tempStore(t, { capacity: 1 << 20 });
  const piece = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);
  // Small objects are copied under the lock; pieces of 64 KiB and more with streaming stores,
  // here starting at an odd offset of the object.
  for (const sizes of [[3, 0, 70], [7, 100_000, 5], [0]]) {
    const pieces = sizes.map((n, i) => piece(n, i));
    const whole = Buffer.concat(pieces);
    const id = ObjectId.random();
    store.put(id, pieces, Buffer.from('m'));
    const obj = store.get(id)!;
    assert.deepEqual(obj.data, whole);
    assert.equal(obj.metadata.toString(), 'm');
    obj.release();
    // read: one copy under the lock into a target of up to 16 KiB, through a reference beyond.
    for (const target of [Buffer.alloc(16 << 10), Buffer.alloc((16 << 10) + 1), Buffer.alloc(200_000)]) {
      assert.equal(store.read(id, target), whole.length);
      if (whole.length <= target.length) assert.deepEqual(target.subarray(0, whole.length), whole);
      else assert.ok(target.every((b) => b === 0), 'nothing copied into a target that is too small');
    }
    assert.equal(store.list().find((o) => o.id.equals(id))?.holders, 0);
  }
  assert.throws(() => store.put(ObjectId.random(), [piece(1, 1), 'no' as unknown as Uint8Array]), { code: 'ERR_INVALID_ARGUMENT', message: /data\[1\]/ });
  const sparse = [piece(1, 1)];
  sparse[2] = piece(1, 2); // a hole at 1
  assert.throws(() => store.put(ObjectId.random(), sparse), { code: 'ERR_INVALID_ARGUMENT', message: /data\[1\]/ });
  assert.equal(store.stats().objects, 3, 'a refused put stores nothing');
});

test('tryPut stores like put, and answers false instead of ERR_STORE_FULL', (t) => {
  // eviction 'none': a full store stays full. Room for two 64 KiB objects (copied outside the
  // lock), then for small ones (copied under it) until the entries run out.
  const { store } = tempStore(t, { capacity: 160 << 10, maxObjects: 16, eviction: 'none' });
  const big = Buffer.alloc(64 << 10, 7);
  const a = ObjectId.random();
  const b = ObjectId.random();
  assert.equal(store.tryPut(a, big), true);
  assert.equal(store.tryPut(b, [big.subarray(0, 100), big.subarray(100)], Buffer.from('m'), { keepReference: true }), true);
  assert.equal(store.list().find((o) => o.id.equals(b))?.holders, 1, 'keepReference holds it');
  // No room for another 64 KiB: false, where put throws.
  const c = ObjectId.random();
  assert.equal(store.tryPut(c, big), false);
  assert.throws(() => store.put(c, big), { code: 'ERR_STORE_FULL' });
  assert.equal(store.contains(c), false);
  // Small ones fit until every entry is taken, then false for want of an entry.
  let small = 0;
  while (store.tryPut(ObjectId.random(), Buffer.alloc(10))) small += 1;
  assert.equal(small, store.stats().maxObjects - 2);
  assert.equal(store.stats().objects, store.stats().maxObjects);
  // Anything but a full store still throws.
  assert.throws(() => store.tryPut(a, Buffer.alloc(1)), { code: 'ERR_OBJECT_EXISTS' });
  assert.throws(() => store.tryPut(ObjectId.random(), Buffer.alloc(1 << 20)), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => store.tryPut(ObjectId.random(), 'no' as unknown as Uint8Array), { code: 'ERR_INVALID_ARGUMENT' });
  store.release(b);
  store.delete(a);
  assert.equal(store.tryPut(ObjectId.random(), big), true, 'room again');
});

test('put with keepReference pins the object against eviction until release(id)', (t) => {
  const { store } = tempStore(t, { capacity: 64 * 4, maxObjects: 16 });
  const pinned = ObjectId.random();
  store.put(pinned, Buffer.alloc(64, 1), null, { keepReference: true });
  assert.equal(store.list()[0].holders, 1);
  assert.equal(store.evict(1 << 20), 0, 'a pinned object is not evicted');
  // A view of it released in this process does not drop the pin.
  store.get(pinned)!.release();
  assert.equal(store.evict(1 << 20), 0);
  store.release(pinned);
  assert.equal(store.evict(1 << 20), 64);
  assert.equal(store.contains(pinned), false);
});

test('a pin dies with its process', { timeout: 30_000 }, async (t) => {
  const { store, name } = tempStore(t, { capacity: 64 * 4, maxObjects: 16 });
  const other = await Agent.start(t, name);
  const id = ObjectId.random();
  await other.call('put', { hex: id.toHex(), size: 64, fill: 2, keep: true });
  assert.equal(store.evict(64), 0, 'pinned by the other process');
  await other.kill();
  store.stats(); // reclaims the dead client and its pin
  assert.equal(store.evict(64), 64);
});

test('an eviction made by create (no seal) wakes notification readers', { timeout: 10_000 }, async (t) => {
  const { store } = tempStore(t, { capacity: 64 * 4, maxObjects: 16 });
  const old = ObjectId.random();
  store.put(old, Buffer.alloc(64 * 4));
  const ac = new AbortController();
  const next = store.notifications({ signal: ac.signal })[Symbol.asyncIterator]().next();
  await new Promise((r) => setImmediate(r));
  store.create(ObjectId.random(), 64); // evicts `old`, seals nothing
  const guard = new Promise<'stuck'>((r) => setTimeout(() => r('stuck'), 5000).unref());
  const ev = await Promise.race([next, guard]);
  ac.abort();
  assert.notEqual(ev, 'stuck', 'the reader was woken');
  assert.deepEqual((ev as IteratorResult<{ type: string }>).value?.type, 'deleted');
});
