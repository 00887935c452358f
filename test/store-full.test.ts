// A full store: eviction 'lru' (sealed, unreferenced objects, least recently used first;
// referenced ones never) and 'none' (ERR_STORE_FULL, or wait for room another process frees,
// blocking with create({ timeoutMs }) or not with createAsync).
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectId } from '../src/object-id.js';
import { Agent } from './helpers/child.js';
import { allocSize, expectedUsedBytes, hexes, ids, rejectsCode, sleep, tempStore, throwsCode } from './helpers/store.js';

const KB = 1024;

describe("eviction 'lru'", () => {
  test('evicts sealed unreferenced objects least recently used first; get refreshes; held objects stay', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t, { capacity: 4 * KB, eviction: 'lru' });
    const other = await Agent.start(t, name);
    const [a, b, c, d, e, f, g] = ids(7);
    for (const id of [a, b, c, d]) store.put(id, Buffer.alloc(KB, 1));
    assert.equal(store.stats().usedBytes, 4 * KB, 'full');
    store.get(a)!.release(); // a is now the most recently used
    await other.call('get', { hex: c.toHex() }); // c is referenced by another process
    const live = () => hexes([a, b, c, d, e, f, g].filter((x) => store.contains(x)));

    store.put(e, Buffer.alloc(KB, 2));
    assert.deepEqual(live(), hexes([a, c, d, e]), 'b, the least recently used, went first');
    store.put(f, Buffer.alloc(KB, 3));
    assert.deepEqual(live(), hexes([a, c, e, f]), 'then d (c is older but referenced)');
    store.put(g, Buffer.alloc(KB, 4));
    assert.deepEqual(live(), hexes([c, e, f, g]), 'then a, whose get made it younger than b and d');
    let st = store.stats();
    assert.equal(st.evictions, 3);
    assert.equal(st.evictedBytes, 3 * KB);
    assert.equal(st.usedBytes, 4 * KB);

    // The survivors are intact.
    const obj = store.get(g)!;
    assert.ok(obj.data.equals(Buffer.alloc(KB, 4)));
    obj.release();

    // Room for everything but c: the referenced object is never evicted.
    throwsCode(() => store.create(ObjectId.random(), 4 * KB), 'ERR_STORE_FULL', 'c is held');
    assert.ok(store.contains(c));
    assert.equal((await other.call('get', { hex: c.toHex() })).data.length, KB, 'still readable there');
    await other.call('release', { hex: c.toHex() });
    const big = ObjectId.random();
    store.put(big, Buffer.alloc(4 * KB));
    assert.deepEqual(live(), [], 'once released, c could go too');
    st = store.stats();
    assert.equal(st.objects, 1);
    assert.equal(st.usedBytes, 4 * KB);
  });

  test('unsealed objects are never evicted', (t) => {
    const { store } = tempStore(t, { capacity: 2 * KB, eviction: 'lru' });
    const [a, b] = ids(2);
    store.create(a, KB); // unsealed, unreferenced
    store.put(b, Buffer.alloc(KB));
    store.put(ObjectId.random(), Buffer.alloc(KB)); // evicts b, not a
    assert.equal(store.contains(b), false);
    assert.equal(store.list().find((o) => o.id.equals(a))?.state, 'created');
    throwsCode(() => store.create(ObjectId.random(), 2 * KB), 'ERR_STORE_FULL');
    store.abort(a);
  });

  test('evict(bytes) frees at least `bytes`, LRU first, and returns what it freed', (t) => {
    const { store } = tempStore(t, { capacity: 8 * KB });
    const list = ids(4);
    for (const id of list) store.put(id, Buffer.alloc(KB));
    store.get(list[0])!.release(); // order now: 1, 2, 3, 0
    const held = store.get(list[3])!;
    assert.equal(store.evict(0), 0);
    assert.equal(store.evict(1), KB);
    assert.deepEqual(hexes(list.filter((x) => store.contains(x))), hexes([list[0], list[2], list[3]]));
    assert.equal(store.evict(KB), KB, 'exactly one more: list[2], older than list[0]');
    assert.deepEqual(hexes(list.filter((x) => store.contains(x))), hexes([list[0], list[3]]));
    store.put(list[1], Buffer.alloc(KB)); // younger than list[0]
    assert.equal(store.evict(KB + 1), 2 * KB, 'two objects to free more than one');
    assert.deepEqual(hexes(list.filter((x) => store.contains(x))), hexes([list[3]]));
    assert.equal(store.evict(10 * KB), 0, 'nothing unreferenced is left');
    assert.ok(store.contains(list[3]), 'the held one stays');
    assert.equal(store.stats().evictions, 4);
    held.release();
    assert.equal(store.evict(1), KB);
    assert.equal(store.stats().usedBytes, 0);
  });

  test('maxObjects is a limit too: lru evicts, none fails', (t) => {
    const { store: lru } = tempStore(t, { capacity: 64 * KB, maxObjects: 2 });
    const [a, b, c] = ids(3);
    lru.put(a, Buffer.alloc(1));
    lru.put(b, Buffer.alloc(1));
    lru.put(c, Buffer.alloc(1));
    assert.deepEqual(hexes([a, b, c].filter((x) => lru.contains(x))), hexes([b, c]));
    const { store: none } = tempStore(t, { capacity: 64 * KB, maxObjects: 2, eviction: 'none' });
    none.put(a, Buffer.alloc(1));
    none.put(b, Buffer.alloc(1));
    throwsCode(() => none.put(c, Buffer.alloc(1)), 'ERR_STORE_FULL');
    assert.equal(none.stats().objects, 2);
  });
});

describe("eviction 'none'", () => {
  test('a full store gives ERR_STORE_FULL and evicts nothing', (t) => {
    const { store } = tempStore(t, { capacity: 4 * KB, eviction: 'none' });
    const list = ids(4);
    for (const id of list) store.put(id, Buffer.alloc(KB));
    throwsCode(() => store.create(ObjectId.random(), 1), 'ERR_STORE_FULL');
    throwsCode(() => store.put(ObjectId.random(), Buffer.alloc(1)), 'ERR_STORE_FULL');
    const t0 = performance.now();
    throwsCode(() => store.create(ObjectId.random(), 1, null, { timeoutMs: 150 }), 'ERR_STORE_FULL', 'nobody frees anything');
    assert.ok(performance.now() - t0 >= 140, 'it waited for the timeout');
    assert.ok(list.every((x) => store.contains(x)));
    assert.equal(store.stats().evictions, 0);
    assert.equal(store.evict(KB), KB, 'explicit evict() still works');
  });

  test('create({ timeoutMs }) waits for room that another process frees', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t, { capacity: 4 * KB, eviction: 'none' });
    const other = await Agent.start(t, name);
    const list = ids(4);
    for (const id of list) store.put(id, Buffer.alloc(KB));
    throwsCode(() => store.create(ObjectId.random(), KB), 'ERR_STORE_FULL');
    // The other process deletes one in 200 ms, while this thread is blocked in create.
    const later = other.call('later', { ms: 200, then: { op: 'delete', hex: list[1].toHex() } });
    const id = ObjectId.random();
    const buf = store.create(id, KB, null, { timeoutMs: 10000 });
    assert.equal(buf.length, KB);
    store.seal(id);
    assert.equal(await later, true);
    assert.equal(store.contains(list[1]), false);

    // Room held by a deferred delete comes free when the holder releases.
    await other.call('get', { hex: list[2].toHex() });
    assert.equal(store.delete(list[2]), false);
    throwsCode(() => store.create(ObjectId.random(), KB), 'ERR_STORE_FULL', 'deleted but still held');
    const release = other.call('later', { ms: 200, then: { op: 'release', hex: list[2].toHex() } });
    const id2 = ObjectId.random();
    assert.equal(store.create(id2, KB, null, { timeoutMs: 10000 }).length, KB);
    assert.equal(await release, 1);
    store.abort(id2);
  });

  test('a child blocked in create({ timeoutMs: -1 }) gets room when this process deletes', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t, { capacity: 2 * KB, eviction: 'none' });
    const other = await Agent.start(t, name);
    const [a, b, c] = ids(3);
    store.put(a, Buffer.alloc(KB));
    store.put(b, Buffer.alloc(KB));
    const answer = other.call('create', { hex: c.toHex(), size: KB, timeoutMs: -1 });
    let done = false;
    answer.then(() => (done = true), () => (done = true));
    await sleep(300);
    assert.equal(done, false, 'still waiting for room');
    store.delete(a);
    assert.equal(await answer, KB);
    assert.equal(store.list().find((o) => o.id.equals(c))?.state, 'created');
  });

  test('createAsync waits for room without blocking; ERR_STORE_FULL at the timeout; ERR_ABORTED on abort', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t, { capacity: 4 * KB, eviction: 'none' });
    const other = await Agent.start(t, name);
    const list = ids(4);
    for (const id of list) store.put(id, Buffer.alloc(KB));
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    t.after(() => clearInterval(timer));
    const id = ObjectId.random();
    const p = store.createAsync(id, KB - 64, { metadata: Buffer.from('m'), timeoutMs: 10000 });
    await sleep(100);
    const ticksBefore = ticks;
    assert.ok(ticksBefore > 0, 'the event loop runs while createAsync waits');
    await other.call('delete', { hex: list[0].toHex() });
    const buf = await p;
    assert.equal(buf.length, KB - 64);
    buf.fill(9);
    store.seal(id);
    const obj = store.get(id)!;
    assert.equal(obj.metadata.toString(), 'm');
    assert.ok(obj.data.equals(Buffer.alloc(KB - 64, 9)));
    obj.release();

    await rejectsCode(store.createAsync(ObjectId.random(), KB, { timeoutMs: 100 }), 'ERR_STORE_FULL', 'nobody frees');
    const ac = new AbortController();
    const q = store.createAsync(ObjectId.random(), KB, { signal: ac.signal });
    await sleep(30);
    ac.abort();
    await rejectsCode(q, 'ERR_ABORTED');
    // Errors other than a full store are not waited on.
    await rejectsCode(store.createAsync(id, 1, { timeoutMs: 10000 }), 'ERR_OBJECT_EXISTS');
    // With room, it resolves at once; default timeout is forever, and a child frees in time.
    const r = ObjectId.random();
    const forever = store.createAsync(r, KB);
    await other.call('later', { ms: 100, then: { op: 'delete', hex: list[1].toHex() } });
    assert.equal((await forever).length, KB);
    store.abort(r);
    assert.equal(store.stats().usedBytes, expectedUsedBytes(store));
  });

  test('an object that can never fit is ERR_INVALID_ARGUMENT, never a wait', async (t) => {
    // capacity 100: the data region holds one 64-byte allocation, never a 65..100-byte one.
    const { store } = tempStore(t, { capacity: 100, eviction: 'none' });
    throwsCode(() => store.create(ObjectId.random(), 101), 'ERR_INVALID_ARGUMENT', 'size past capacity');
    throwsCode(() => store.create(ObjectId.random(), 50, Buffer.alloc(51)), 'ERR_INVALID_ARGUMENT', 'size + metadata past capacity');
    throwsCode(() => store.create(ObjectId.random(), 100), 'ERR_INVALID_ARGUMENT', '100 bytes round up to 128 > 100');
    throwsCode(() => store.create(ObjectId.random(), 65, null, { timeoutMs: -1 }), 'ERR_INVALID_ARGUMENT', 'would wait forever');
    await rejectsCode(store.createAsync(ObjectId.random(), 65), 'ERR_INVALID_ARGUMENT', 'createAsync would wait forever');
    const { store: lru } = tempStore(t, { capacity: 100, eviction: 'lru' });
    const keep = ObjectId.random();
    lru.put(keep, Buffer.alloc(64));
    throwsCode(() => lru.create(ObjectId.random(), 65), 'ERR_INVALID_ARGUMENT');
    assert.ok(lru.contains(keep), 'nothing was evicted for an object that cannot fit');
    lru.put(ObjectId.random(), Buffer.alloc(1)); // but 64 bytes do fit
    assert.equal(lru.contains(keep), false);
    assert.equal(allocSize(100), 128);
  });
});
