// JavaScript memory safety: no view may ever touch memory that was unmapped or reused.
// seal detaches the creator's writable view; release and close detach every view of the
// object in this process (subarrays and typed arrays over the same ArrayBuffer included); a
// view collected without release releases itself; churn under --expose-gc never crashes.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ObjectId } from '../src/object-id.js';
import { ObjectStore } from '../src/store.js';
import { Agent, spawnChild } from './helpers/child.js';
import { allocSize, closeQuietly, openStore, pattern, tempStore, throwsCode } from './helpers/store.js';

/** Every view of one object that a careless program might keep. */
function viewsOf(data: Buffer) {
  return {
    data,
    sub: data.subarray(2, 10),
    f64: new Float64Array(data.buffer, data.byteOffset, Math.floor(data.length / 8)),
    u8: new Uint8Array(data.buffer),
    arrayBuffer: data.buffer,
  };
}

function assertDetached(v: ReturnType<typeof viewsOf>, what: string): void {
  assert.equal(v.data.length, 0, `${what}: the Buffer reads as length 0`);
  assert.equal(v.sub.length, 0, `${what}: a subarray too`);
  assert.equal(v.f64.length, 0, `${what}: a Float64Array over data.buffer too`);
  assert.equal(v.u8.length, 0, `${what}: a Uint8Array over data.buffer too`);
  assert.equal(v.arrayBuffer.byteLength, 0, `${what}: the ArrayBuffer is detached`);
  assert.equal(v.data[0], undefined, `${what}: reads give nothing`);
  v.data[0] = 1; // a write to a detached view is a no-op, never a write to shared memory
  v.f64[0] = 1;
  assert.equal(v.data.length, 0);
}

describe('views are detached before the memory can go', () => {
  test("seal detaches the creator's writable view", { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const id = ObjectId.random();
    const buf = store.create(id, 256);
    const v = viewsOf(buf);
    assert.equal(v.f64.length, 32);
    v.f64.fill(1.5);
    v.sub[0] = 42;
    store.seal(id);
    assertDetached(v, 'after seal');
    // What was written before the seal is the object, as another process sees it.
    const other = await Agent.start(t, name);
    const got = await other.call('get', { hex: id.toHex() });
    const want = Buffer.from(new Float64Array(32).fill(1.5).buffer);
    want[2] = 42;
    assert.equal(got.data.hex, want.toString('hex'));
  });

  test("abort detaches the creator's writable view", (t) => {
    const { store } = tempStore(t);
    const id = ObjectId.random();
    const v = viewsOf(store.create(id, 100));
    store.abort(id);
    assertDetached(v, 'after abort');
    assert.equal(store.stats().usedBytes, 0);
  });

  test('release detaches data, metadata, subarrays and typed arrays over data.buffer', (t) => {
    const { store } = tempStore(t);
    const id = ObjectId.random();
    store.put(id, pattern(800, 1), Buffer.from('meta'));
    const obj = store.get(id)!;
    const v = viewsOf(obj.data);
    const meta = obj.metadata;
    assert.equal(v.f64.length, 100);
    assert.equal(meta.toString(), 'meta');
    obj.release();
    assertDetached(v, 'after release');
    assert.equal(meta.length, 0);
    // A new get works and sees the same bytes.
    const again = store.get(id)!;
    assert.ok(again.data.equals(pattern(800, 1)));
    store.release(id);
    assert.equal(again.data.length, 0, 'store.release(id) detaches too');
  });

  test('two gets in one process share memory; releasing one detaches the other', (t) => {
    const { store, name } = tempStore(t);
    const id = ObjectId.random();
    store.put(id, pattern(4096, 2));
    const g1 = store.get(id)!;
    const g2 = store.get(id)!;
    assert.ok(g1.data.equals(g2.data));
    assert.equal(store.list()[0].holders, 1, 'one client, one reference');
    // Same memory: both are views of the segment file's bytes at the same place, no copy.
    const file = readSegment(name);
    const at = file.indexOf(g1.data.subarray(0, 64));
    assert.ok(at >= 0 && file.subarray(at, at + 4096).equals(g2.data));
    const v2 = viewsOf(g2.data);
    g1.release();
    assertDetached(v2, 'the second get, after releasing the first');
    g2.release(); // idempotent, and harmless
    assert.equal(store.list()[0].holders, 0);
  });

  test('close detaches every view (held and writable), releases references and aborts unsealed objects', (t) => {
    const { store, name } = tempStore(t);
    const watcher = openStore(t, name);
    const [a, b, c] = [ObjectId.random(), ObjectId.random(), ObjectId.random()];
    watcher.put(a, pattern(500, 3));
    const second = ObjectStore.open(name);
    t.after(() => closeQuietly(second));
    const held = viewsOf(second.get(a)!.data);
    const meta = second.get(a)!.metadata;
    const writable = viewsOf(second.create(b, 300));
    second.put(c, Buffer.alloc(10)); // sealed objects outlive their creator's handle
    assert.equal(watcher.list().find((o) => o.id.equals(a))?.holders, 1);
    second.close();
    assertDetached(held, 'held view after close');
    assertDetached(writable, 'writable view after close');
    assert.equal(meta.length, 0);
    assert.equal(watcher.list().find((o) => o.id.equals(a))?.holders, 0, 'reference released');
    assert.equal(watcher.list().find((o) => o.id.equals(b)), undefined, 'unsealed object aborted');
    assert.ok(watcher.contains(c));
    assert.equal(watcher.stats().usedBytes, allocSize(500) + allocSize(10));
    assert.equal(watcher.stats().clients, 2);
    // Everything on a closed handle is ERR_STORE_CLOSED; closing twice is fine.
    throwsCode(() => second.get(a), 'ERR_STORE_CLOSED');
    second.close();
    assert.equal(store.stats().clients, 2);
  });

  test('a view dropped without release is released by its finalizer (child with --expose-gc)', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name, { execArgv: ['--expose-gc'] });
    const keep = ObjectId.random();
    store.put(keep, Buffer.alloc(64));
    const base = store.stats().usedBytes;
    const [a, b] = [ObjectId.random(), ObjectId.random()];
    store.put(a, pattern(5000, 4));
    store.put(b, pattern(100, 5));
    await other.call('get', { hex: a.toHex() });
    await other.call('get', { hex: a.toHex() }); // two views, one reference
    await other.call('get', { hex: b.toHex() });
    assert.equal(store.list().find((o) => o.id.equals(a))?.holders, 1);
    assert.equal(store.delete(a), false, 'deferred: the child holds a');
    assert.equal(store.stats().deleting, 1);

    assert.equal(await other.call('drop', { hex: a.toHex() }), 2);
    const r = await other.call('gcUntilReleased', { hex: a.toHex() });
    assert.ok(r.rounds > 0, `released after ${r.rounds} gc rounds`);
    assert.equal(other.handle.exitStatus, null, 'the child is alive: the finalizer released, not the exit');
    const st = store.stats();
    assert.equal(st.deleting, 0);
    assert.equal(st.usedBytes, base + allocSize(100), 'a is freed');
    assert.equal(store.list().find((o) => o.id.equals(b))?.holders, 1, 'b is still held: only dropped views are released');
    // b, dropped while not deleted: holders go back to 0 and it becomes evictable.
    await other.call('drop', { hex: b.toHex() });
    const rb = await other.call('gcUntilReleased', { hex: b.toHex() });
    assert.ok(rb.rounds > 0);
    assert.equal(store.list().find((o) => o.id.equals(b))?.holders, 0);
    assert.equal(store.evict(1), allocSize(64), 'the LRU first (keep), then b is evictable too');
    assert.equal(store.evict(1), allocSize(100));
  });

  test('churn of freed and reused memory under --expose-gc never crashes and never corrupts a live view', { timeout: 60000 }, async (t) => {
    const { name, store } = tempStore(t, { capacity: 256 * 1024, maxObjects: 512 });
    const child = spawnChild(t, 'churn', [name, '3000'], { execArgv: ['--expose-gc'] });
    const exit = await child.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, `churn child failed: ${child.stderr.slice(-3000)}`);
    const line = child.lines.find((l) => l.startsWith('{'));
    assert.ok(line, 'the child reported');
    const r = JSON.parse(line);
    assert.equal(r.cycles, 3000);
    assert.equal(r.mismatches, 0, 'live views kept their bytes');
    assert.equal(r.notDetached, 0, 'released views read as length 0');
    assert.equal(r.deleting, 0, 'every dropped view was released by the GC');
    assert.equal(r.holders, 0);
    assert.equal(r.usedBytes, 0);
    assert.equal(store.stats().usedBytes, 0);
    assert.ok(store.stats().creates >= 3000);
  });
});

function readSegment(name: string): Buffer {
  return readFileSync(ObjectStore.pathOf(name));
}
