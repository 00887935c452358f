// The object calls of the API contract with Plasma's semantics, across real processes:
// create, seal, get, release, contains, delete, abort, list, stats, put, metadata, ids, unlink,
// segment permissions, data alignment and the client limit.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { ObjectId } from '../src/object-id.js';
import { ObjectStore } from '../src/store.js';
import { Agent } from './helpers/child.js';
import {
  HEADER,
  allocSize,
  closeQuietly,
  expectedUsedBytes,
  openStore,
  pattern,
  tempStore,
  throwsCode,
  uniqueName,
} from './helpers/store.js';

describe('create, seal, get across processes', () => {
  test('create hands out a writable buffer; seal makes it visible to another process', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const id = ObjectId.random();
    const meta = Buffer.from('{"dtype":"f64"}');
    const buf = store.create(id, 1000, meta);
    assert.ok(Buffer.isBuffer(buf));
    assert.equal(buf.length, 1000);
    const data = pattern(1000, 7);
    buf.set(data);
    assert.deepEqual(Buffer.from(buf), data, 'the creator reads back what it wrote');

    // Unsealed: invisible to everyone, the creator included, but listed as 'created'.
    assert.equal(store.contains(id), false);
    assert.equal(store.get(id), null);
    assert.equal(await other.call('contains', { hex: id.toHex() }), false);
    assert.equal(await other.call('get', { hex: id.toHex(), timeoutMs: 0 }), null);
    const listed = store.list().find((o) => o.id.equals(id));
    assert.equal(listed?.state, 'created');
    assert.equal(listed?.size, 1000);
    assert.equal(listed?.metadataSize, meta.length);

    store.seal(id);
    assert.equal(store.contains(id), true);
    assert.equal(await other.call('contains', { hex: id.toHex() }), true);
    const got = await other.call('get', { hex: id.toHex() });
    assert.equal(got.data.length, 1000);
    assert.equal(got.data.sha256, createHash('sha256').update(data).digest('hex'));
    assert.equal(got.metadata.hex, meta.toString('hex'));
    const after = store.list().find((o) => o.id.equals(id));
    assert.equal(after?.state, 'sealed');
    assert.equal(after?.holders, 1, 'the other process holds it');
  });

  test('put is create + copy + seal; get returns data and metadata in the same and another process', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const a = ObjectId.random();
    const b = ObjectId.random();
    const c = ObjectId.random();
    store.put(a, pattern(300, 1), Buffer.from('meta-a'));
    store.put(b, pattern(5, 2)); // no metadata
    store.put(c, new Uint8Array(0), Buffer.from('only-metadata')); // empty data is fine
    for (const [id, size, m] of [[a, 300, 'meta-a'], [b, 5, ''], [c, 0, 'only-metadata']] as const) {
      const obj = store.get(id);
      assert.ok(obj !== null);
      assert.ok(obj.id.equals(id));
      assert.equal(obj.data.length, size);
      assert.equal(obj.metadata.toString(), m);
      const remote = await other.call('get', { hex: id.toHex() });
      assert.equal(remote.data.sha256, createHash('sha256').update(obj.data).digest('hex'));
      assert.equal(Buffer.from(remote.metadata.hex, 'hex').toString(), m);
      obj.release();
    }
    // A put from the other process is visible here.
    const d = ObjectId.random();
    await other.call('put', { hex: d.toHex(), size: 64, fill: 0xab, metaHex: 'cafe' });
    const od = store.get(d);
    assert.ok(od !== null);
    assert.ok(od.data.every((x) => x === 0xab));
    assert.equal(od.metadata.toString('hex'), 'cafe');
    od.release();
  });

  test('the state machine: errors of seal, abort, create, delete and release', (t) => {
    const { store } = tempStore(t);
    const id = ObjectId.random();
    const unknown = ObjectId.random();
    store.create(id, 10);
    throwsCode(() => store.create(id, 10), 'ERR_OBJECT_EXISTS', 'create of an unsealed id');
    throwsCode(() => store.delete(id), 'ERR_OBJECT_NOT_SEALED', 'delete of an unsealed object');
    store.seal(id);
    throwsCode(() => store.seal(id), 'ERR_OBJECT_ALREADY_SEALED', 'seal twice');
    throwsCode(() => store.abort(id), 'ERR_OBJECT_ALREADY_SEALED', 'abort of a sealed object');
    throwsCode(() => store.create(id, 10), 'ERR_OBJECT_EXISTS', 'create of a sealed id');
    throwsCode(() => store.put(id, Buffer.alloc(1)), 'ERR_OBJECT_EXISTS', 'put of a sealed id');
    throwsCode(() => store.seal(unknown), 'ERR_OBJECT_NOT_FOUND', 'seal of an unknown id');
    throwsCode(() => store.abort(unknown), 'ERR_OBJECT_NOT_FOUND', 'abort of an unknown id');
    throwsCode(() => store.delete(unknown), 'ERR_OBJECT_NOT_FOUND', 'delete of an unknown id');
    throwsCode(() => store.release(id), 'ERR_OBJECT_NOT_FOUND', 'release of an object this client does not hold');
    assert.equal(store.get(unknown), null);
    assert.equal(store.contains(unknown), false);
    // After delete the id is free for a new object.
    assert.equal(store.delete(id), true);
    throwsCode(() => store.delete(id), 'ERR_OBJECT_NOT_FOUND', 'delete twice');
    store.put(id, Buffer.from('again'));
    assert.equal(store.get(id)?.data.toString(), 'again');
  });

  test('abort: only the creator may abort (or seal) an unsealed object', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const id = ObjectId.random();
    const before = store.stats().usedBytes;
    await other.call('create', { hex: id.toHex(), size: 500, fill: 1 });
    assert.equal(store.stats().usedBytes, before + allocSize(500));
    throwsCode(() => store.abort(id), 'ERR_NOT_CREATOR', 'abort from another process');
    throwsCode(() => store.seal(id), 'ERR_NOT_CREATOR', 'seal from another process');
    throwsCode(() => store.create(id, 1), 'ERR_OBJECT_EXISTS', 'create of an id another process is creating');
    assert.equal(store.list().find((o) => o.id.equals(id))?.state, 'created', 'still there after the failed abort');

    await other.call('abort', { hex: id.toHex() });
    assert.equal(store.list().find((o) => o.id.equals(id)), undefined);
    assert.equal(store.stats().usedBytes, before, 'abort frees the memory');
    assert.ok(store.stats().aborts >= 1);
    // The id is free again, for anyone.
    store.put(id, Buffer.from('mine'));
    assert.equal(store.get(id)?.data.toString(), 'mine');
    // And the other process cannot abort or seal what this one created.
    const mine = ObjectId.random();
    store.create(mine, 8);
    await other.callFails('abort', { hex: mine.toHex() }, 'ERR_NOT_CREATOR');
    await other.callFails('seal', { hex: mine.toHex() }, 'ERR_NOT_CREATOR');
    store.abort(mine);
  });

  test('contains is true for sealed objects only', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const id = ObjectId.random();
    assert.equal(store.contains(id), false, 'unknown');
    await other.call('create', { hex: id.toHex(), size: 16 });
    assert.equal(store.contains(id), false, 'created, not sealed');
    await other.call('seal', { hex: id.toHex() });
    assert.equal(store.contains(id), true, 'sealed');
    const held = store.get(id);
    store.delete(id);
    assert.equal(store.contains(id), false, 'deleted while held');
    held?.release();
    assert.equal(store.contains(id), false, 'deleted');
  });

  test('delete is deferred while another process holds the object', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const keep = ObjectId.random();
    store.put(keep, pattern(200, 3));
    const base = store.stats().usedBytes;
    const id = ObjectId.random();
    store.put(id, pattern(4000, 9));
    assert.equal(store.stats().usedBytes, base + allocSize(4000));
    await other.call('get', { hex: id.toHex() });
    assert.equal(store.list().find((o) => o.id.equals(id))?.holders, 1);

    assert.equal(store.delete(id), false, 'not freed now: someone holds it');
    let st = store.stats();
    assert.equal(st.deleting, 1);
    assert.equal(st.usedBytes, base + allocSize(4000), 'the memory stays while it is held');
    assert.equal(store.contains(id), false, 'but the object is gone from view');
    assert.equal(store.get(id), null);
    assert.equal(await other.call('contains', { hex: id.toHex() }), false);
    assert.equal(store.list().find((o) => o.id.equals(id))?.state, 'deleting');
    // The id can be reused at once, while the old memory is still held.
    const fresh = ObjectId.random();
    store.put(fresh, Buffer.alloc(1));
    store.delete(fresh);

    assert.equal(await other.call('release', { hex: id.toHex() }), 1);
    st = store.stats();
    assert.equal(st.deleting, 0);
    assert.equal(st.usedBytes, base, 'the last release frees the memory');
    assert.equal(store.list().find((o) => o.id.equals(id)), undefined);
    // A delete with no holders frees at once.
    const now = ObjectId.random();
    store.put(now, Buffer.alloc(100));
    assert.equal(store.delete(now), true);
    assert.equal(store.stats().usedBytes, base);
  });

  test('release drops the reference: holders go back to 0 and the object becomes evictable', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const id = ObjectId.random();
    store.put(id, Buffer.alloc(100, 1));
    const holders = () => store.list().find((o) => o.id.equals(id))?.holders;
    const mine = store.get(id)!;
    assert.equal(holders(), 1);
    await other.call('get', { hex: id.toHex() });
    assert.equal(holders(), 2);
    mine.release();
    mine.release(); // idempotent
    assert.equal(holders(), 1);
    await other.call('releaseId', { hex: id.toHex() });
    assert.equal(holders(), 0);
    await other.callFails('releaseId', { hex: id.toHex() }, 'ERR_OBJECT_NOT_FOUND');
    // store.release(id) drops every reference this process has on id.
    const g1 = store.get(id)!;
    const g2 = store.get(id)!;
    assert.equal(holders(), 1, 'holders counts clients, not gets');
    store.release(id);
    assert.equal(holders(), 0);
    assert.equal(g1.data.length, 0);
    assert.equal(g2.data.length, 0);
    g1.release(); // harmless after store.release
    // Unreferenced, it can be evicted; while held it could not.
    const held = store.get(id)!;
    assert.equal(store.evict(1), 0, 'a held object is never evicted');
    held.release();
    assert.equal(store.evict(1), allocSize(100));
    assert.equal(store.contains(id), false);
  });

  test('`using` releases at the end of the block', (t) => {
    const { store } = tempStore(t);
    const id = ObjectId.random();
    store.put(id, Buffer.alloc(10));
    let data: Buffer;
    {
      using obj = store.get(id)!;
      data = obj.data;
      assert.equal(store.list()[0].holders, 1);
    }
    assert.equal(store.list()[0].holders, 0);
    assert.equal(data.length, 0);
  });

  test('list and stats describe every object and counter', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t, { capacity: 1 << 16, maxObjects: 64, maxClients: 8, eviction: 'none' });
    let st = store.stats();
    assert.equal(st.capacity, 1 << 16);
    assert.equal(st.maxObjects, 64);
    assert.equal(st.maxClients, 8);
    assert.equal(st.eviction, 'none');
    assert.equal(st.usedBytes, 0);
    assert.equal(st.objects, 0);
    assert.equal(st.clients, 1);
    assert.equal(st.largestFree, 1 << 16);
    const other = await Agent.start(t, name);
    assert.equal(store.stats().clients, 2);
    const clients = store.clients();
    assert.equal(clients.length, 2);
    assert.equal(clients.filter((c) => c.self).length, 1);
    assert.ok(clients.some((c) => c.pid === other.info.pid && !c.self));
    assert.ok(clients.some((c) => c.pid === process.pid && c.self));

    const a = ObjectId.random();
    const b = ObjectId.random();
    const c = ObjectId.random();
    store.put(a, Buffer.alloc(100), Buffer.alloc(30));
    store.create(b, 1);
    await other.call('put', { hex: c.toHex(), size: 64 });
    await other.call('get', { hex: a.toHex() });
    const list = store.list();
    assert.equal(list.length, 3);
    const byHex = new Map(list.map((o) => [o.id.toHex(), o]));
    assert.deepEqual({ ...byHex.get(a.toHex()), id: undefined }, { id: undefined, size: 100, metadataSize: 30, state: 'sealed', holders: 1 });
    assert.deepEqual({ ...byHex.get(b.toHex()), id: undefined }, { id: undefined, size: 1, metadataSize: 0, state: 'created', holders: 0 });
    assert.deepEqual({ ...byHex.get(c.toHex()), id: undefined }, { id: undefined, size: 64, metadataSize: 0, state: 'sealed', holders: 0 });
    assert.ok(list.every((o) => o.id instanceof ObjectId));
    st = store.stats();
    assert.equal(st.objects, 3);
    assert.equal(st.sealed, 2);
    assert.equal(st.usedBytes, allocSize(100, 30) + allocSize(1) + allocSize(64));
    assert.equal(st.usedBytes, expectedUsedBytes(store));
    assert.equal(st.creates, 3);
    assert.equal(st.seals, 2);
    assert.equal(st.largestFree, (1 << 16) - st.usedBytes, 'first fit keeps the free space in one piece');
    // The other process sees the same numbers.
    const remote = await other.call('stats');
    assert.equal(remote.usedBytes, st.usedBytes);
    assert.equal(remote.objects, 3);
    store.delete(c);
    store.abort(b);
    st = store.stats();
    assert.equal(st.deletes, 1);
    assert.equal(st.aborts, 1);
    assert.equal(st.objects, 1);
  });
});

describe('object ids', () => {
  test('ids are 20 bytes; hex round trip; equality', () => {
    assert.equal(ObjectId.SIZE, 20);
    const a = ObjectId.random();
    assert.equal(a.bytes.length, 20);
    assert.match(a.toHex(), /^[0-9a-f]{40}$/);
    assert.ok(ObjectId.fromHex(a.toHex()).equals(a));
    assert.ok(ObjectId.fromHex(a.toHex().toUpperCase()).equals(a));
    assert.ok(!ObjectId.random().equals(a));
    assert.equal(a.equals('x' as unknown as ObjectId), false);
    assert.equal(a.equals(undefined as unknown as ObjectId), false);
    assert.equal(a.equals(Object.create(ObjectId.prototype) as ObjectId), false, 'a fake that passes instanceof');
    const raw = randomBytes(20);
    const b = ObjectId.fromBytes(raw);
    raw[0] ^= 0xff; // fromBytes copies
    assert.notEqual(b.bytes[0], raw[0]);
    assert.equal(JSON.stringify({ b }), `{"b":"${b.toHex()}"}`);
    for (const bad of ['', 'ab', 'g'.repeat(40), '0'.repeat(39), '0'.repeat(41), ` ${'0'.repeat(39)}`]) {
      throwsCode(() => ObjectId.fromHex(bad), 'ERR_INVALID_ARGUMENT', `fromHex(${JSON.stringify(bad)})`);
    }
    throwsCode(() => ObjectId.fromBytes(new Uint8Array(19)), 'ERR_INVALID_ARGUMENT', 'fromBytes(19 bytes)');
    throwsCode(() => ObjectId.fromBytes(new Uint8Array(21)), 'ERR_INVALID_ARGUMENT', 'fromBytes(21 bytes)');
  });

  test('ObjectId.forStream follows the documented rule and gives the same ids in another process', { timeout: 20000 }, async (t) => {
    const seqs = [0, 1, 2, 255, 256, 2 ** 32, Number.MAX_SAFE_INTEGER];
    for (const s of seqs) {
      const id = ObjectId.forStream('ticks', s);
      const want = Buffer.alloc(20);
      createHash('sha256').update('shmstore/stream/ticks').digest().copy(want, 0, 0, 12);
      want.writeBigUInt64BE(BigInt(s), 12);
      assert.equal(id.toHex(), want.toString('hex'), `seq ${s}`);
    }
    assert.ok(!ObjectId.forStream('ticks', 1).equals(ObjectId.forStream('ticks', 2)));
    assert.ok(!ObjectId.forStream('ticks', 1).equals(ObjectId.forStream('ticks2', 1)));
    throwsCode(() => ObjectId.forStream('', 1), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => ObjectId.forStream('s', -1), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => ObjectId.forStream('s', 1.5), 'ERR_INVALID_ARGUMENT');
    throwsCode(() => ObjectId.forStream('s', 2 ** 53), 'ERR_INVALID_ARGUMENT');

    const { name } = tempStore(t);
    const other = await Agent.start(t, name);
    for (const stream of ['ticks', 'ünïcode/stream', 'x'.repeat(300)]) {
      const theirs = await other.call('forStream', { name: stream, seqs });
      assert.deepEqual(theirs, seqs.map((s) => ObjectId.forStream(stream, s).toHex()), stream);
    }
  });
});

describe('the segment', () => {
  test('object data is 64-byte aligned in the mapping, with metadata right after it', (t) => {
    const { store, name } = tempStore(t, { capacity: 1 << 16 });
    // The mapping starts on a page, so an address is 64-aligned iff its offset in the file is.
    // Objects of awkward sizes, each starting with a unique random marker; 1-byte objects in
    // between shift the allocations.
    const placed: { id: ObjectId; marker: Buffer; size: number; meta: Buffer }[] = [];
    for (const size of [33, 100, 64, 65, 127, 1000, 40]) {
      store.put(ObjectId.random(), Buffer.alloc(1), Buffer.alloc(3, 1));
      const marker = randomBytes(32);
      const meta = randomBytes(24);
      const data = Buffer.alloc(size, 0x5a);
      marker.copy(data);
      const id = ObjectId.random();
      store.put(id, data, meta);
      placed.push({ id, marker, size, meta });
    }
    const file = readFileSync(ObjectStore.pathOf(name));
    const dataOffset = Number(file.readBigUInt64LE(HEADER.dataOffset));
    const capacity = Number(file.readBigUInt64LE(HEADER.capacity));
    assert.equal(capacity, 1 << 16, 'header layout as expected');
    assert.equal(dataOffset % 64, 0);
    for (const p of placed) {
      const at = file.indexOf(p.marker);
      assert.ok(at >= 0, 'the data is in the segment file (shared memory, no copy)');
      assert.equal(file.lastIndexOf(p.marker), at, 'marker unique');
      assert.ok(at >= dataOffset && at + p.size <= dataOffset + capacity, 'inside the data region');
      assert.equal(at % 64, 0, `object of ${p.size} bytes starts 64-byte aligned (file offset ${at})`);
      assert.ok(file.subarray(at + p.size, at + p.size + p.meta.length).equals(p.meta), 'metadata follows the data');
      // The view get() returns is that very memory: same bytes, same length.
      const obj = store.get(p.id)!;
      assert.ok(obj.data.equals(file.subarray(at, at + p.size)));
      obj.release();
    }
  });

  test('segments are created with mode 0600 unless `mode` says otherwise', (t) => {
    const { name } = tempStore(t);
    assert.equal(statSync(ObjectStore.pathOf(name)).mode & 0o777, 0o600);
    const { name: n2 } = tempStore(t, { mode: 0o640 });
    assert.equal(statSync(ObjectStore.pathOf(n2)).mode & 0o777, 0o640);
    const { name: n3 } = tempStore(t, { mode: 0o666 });
    assert.equal(statSync(ObjectStore.pathOf(n3)).mode & 0o777, 0o666, 'the umask does not narrow it');
    assert.equal(ObjectStore.pathOf(name), `/dev/shm/${name}`);
  });

  test('prefault maps the pages at create or open: writing the store then takes no page faults', (t) => {
    const MiB = 1 << 20;
    const { store: lazy, name } = tempStore(t, { capacity: 12 * MiB, eviction: 'none' });
    const created = tempStore(t, { capacity: 4 * MiB, prefault: true }).store;
    const opened = openStore(t, name, { prefault: true });
    // Each handle maps the segment anew: its first write to a page faults unless prefaulted.
    const faultsWriting = (s: ObjectStore) => {
      const buf = s.create(ObjectId.random(), 4 * MiB);
      const before = process.resourceUsage().minorPageFault;
      buf.fill(0xa5);
      return process.resourceUsage().minorPageFault - before;
    };
    const lazyFaults = faultsWriting(lazy);
    if (lazyFaults < 256) {
      t.skip(`4 MiB written through a lazy mapping took ${lazyFaults} faults: huge pages back /dev/shm here, nothing to show`);
      return;
    }
    assert.ok(faultsWriting(opened) < 64, 'open with prefault');
    assert.ok(faultsWriting(created) < 64, 'create with prefault');
  });

  test('create of an existing store and open of an unknown one', (t) => {
    const { name } = tempStore(t);
    throwsCode(() => ObjectStore.create(name, { capacity: 4096 }), 'ERR_STORE_EXISTS');
    const missing = uniqueName('missing');
    throwsCode(() => ObjectStore.open(missing), 'ERR_STORE_NOT_FOUND');
    throwsCode(() => ObjectStore.unlink(missing), 'ERR_STORE_NOT_FOUND');
    assert.equal(existsSync(ObjectStore.pathOf(missing)), false);
  });

  test('unlink: attached processes go on working; open after unlink is ERR_STORE_NOT_FOUND', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const before = ObjectId.random();
    store.put(before, Buffer.from('before'));
    ObjectStore.unlink(name);
    assert.equal(existsSync(ObjectStore.pathOf(name)), false);
    throwsCode(() => ObjectStore.open(name), 'ERR_STORE_NOT_FOUND', 'open after unlink');
    throwsCode(() => ObjectStore.unlink(name), 'ERR_STORE_NOT_FOUND', 'unlink twice');

    // Both mappings still work, and still share memory.
    const got = await other.call('get', { hex: before.toHex() });
    assert.equal(Buffer.from(got.data.hex, 'hex').toString(), 'before');
    const after = ObjectId.random();
    await other.call('put', { hex: after.toHex(), size: 5, dataHex: Buffer.from('after').toString('hex') });
    assert.equal(store.get(after)?.data.toString(), 'after');
    assert.equal(store.stats().clients, 2);

    // The name is free for a new, independent store.
    const fresh = ObjectStore.create(name, { capacity: 4096 });
    t.after(() => closeQuietly(fresh));
    assert.equal(fresh.contains(before), false);
    assert.equal(fresh.stats().clients, 1);
    fresh.put(ObjectId.random(), Buffer.alloc(1));
    assert.equal(store.stats().objects, 2, 'the old store did not see the new one');
  });

  test('ERR_TOO_MANY_CLIENTS with maxClients: 2; a dead client frees its slot', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t, { maxClients: 2 });
    const other = await Agent.start(t, name);
    assert.equal(store.stats().clients, 2);
    throwsCode(() => ObjectStore.open(name), 'ERR_TOO_MANY_CLIENTS', 'third handle in this process');
    await assert.rejects(Agent.start(t, name), (err: Error & { code?: string }) => err.code === 'ERR_TOO_MANY_CLIENTS');
    // A second handle in one process takes a slot too.
    await other.call('close');
    const second = openStore(t, name);
    throwsCode(() => ObjectStore.open(name), 'ERR_TOO_MANY_CLIENTS');
    second.close();
    // A client that dies without closing gives its slot back to the next opener.
    const doomed = await Agent.start(t, name);
    throwsCode(() => ObjectStore.open(name), 'ERR_TOO_MANY_CLIENTS');
    await doomed.kill();
    const third = openStore(t, name);
    assert.equal(third.stats().clients, 2);
  });
});
