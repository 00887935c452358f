// Crash safety: clients killed with SIGKILL while holding references, while creating, and while
// parked inside the store's lock. Afterwards this process and a fresh one keep using the store:
// references released, unsealed objects aborted, the lock recovered, no bytes leaked.
//
// Order matters where the lock may be broken: a fresh child process touches the store first,
// under a timeout, so a deadlock fails the test instead of hanging this process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectId } from '../src/object-id.js';
import type { ObjectStore } from '../src/store.js';
import { Agent, spawnChild } from './helpers/child.js';
import { allocSize, expectedUsedBytes, ids, pattern, tempStore } from './helpers/store.js';

/** A fresh process can open the store and put, get and delete an object (within the timeout). */
async function freshProcessWorks(t: Parameters<typeof tempStore>[0], name: string, store: ObjectStore): Promise<void> {
  const fresh = await Agent.start(t, name);
  const id = ObjectId.random();
  await fresh.call('put', { hex: id.toHex(), size: 100, fill: 4 }, 10000);
  const got = await fresh.call('get', { hex: id.toHex() }, 10000);
  assert.equal(got.data.length, 100);
  await fresh.call('release', { hex: id.toHex() });
  assert.equal(await fresh.call('delete', { hex: id.toHex() }), true);
  const st = await fresh.call('stats');
  assert.equal(st.usedBytes, expectedUsedBytes(store), 'the fresh process sees no leaked bytes');
  await fresh.call('close');
}

test('a client killed while holding references: they are released, deferred deletes complete', { timeout: 30000 }, async (t) => {
  const { store, name } = tempStore(t);
  const [a, b, c] = ids(3);
  store.put(a, pattern(1000, 1));
  store.put(b, pattern(3000, 2));
  store.put(c, pattern(10, 3));
  const used = store.stats().usedBytes;
  const victim = await Agent.start(t, name);
  await victim.call('get', { hex: a.toHex() });
  await victim.call('get', { hex: b.toHex() });
  await victim.call('getAsync', { hex: c.toHex() });
  assert.deepEqual(store.list().map((o) => o.holders), [1, 1, 1]);
  assert.equal(store.delete(b), false, 'deferred: the victim holds b');
  assert.equal(store.stats().deleting, 1);
  assert.equal(store.stats().clients, 2);

  const exit = await victim.kill('SIGKILL');
  assert.equal(exit.signal, 'SIGKILL');
  const st = store.stats(); // reclaims the dead client
  assert.equal(st.clients, 1);
  assert.ok(st.reclaimedClients >= 1);
  assert.equal(st.deleting, 0, 'the deferred delete completed');
  assert.equal(st.usedBytes, used - allocSize(3000), 'b is freed, nothing leaked');
  assert.equal(st.usedBytes, expectedUsedBytes(store));
  assert.deepEqual(store.list().map((o) => o.holders), [0, 0], 'no references are left');
  // Unreferenced now, so evictable; and the data is intact.
  const obj = store.get(a)!;
  assert.ok(obj.data.equals(pattern(1000, 1)));
  obj.release();
  await freshProcessWorks(t, name, store);
});

test('a client killed while creating: its unsealed object is aborted', { timeout: 30000 }, async (t) => {
  const { store, name } = tempStore(t, { eviction: 'none', capacity: 64 * 1024 });
  const keep = ObjectId.random();
  store.put(keep, pattern(500, 5));
  const used = store.stats().usedBytes;
  const victim = await Agent.start(t, name);
  const [x, y] = ids(2);
  await victim.call('create', { hex: x.toHex(), size: 20000, fill: 1 });
  await victim.call('create', { hex: y.toHex(), size: 30000, metaHex: 'beef' });
  assert.equal(store.stats().usedBytes, used + allocSize(20000) + allocSize(30000, 2));
  assert.deepEqual(store.list().filter((o) => o.state === 'created').length, 2);
  const aborts = store.stats().aborts;
  // A get of x waits for its seal; the death of the creator must not leave it waiting forever
  // on an object that can never be sealed: it resolves null at its timeout.
  const waiting = store.getAsync(x, { timeoutMs: 500 });

  await victim.kill('SIGKILL');
  const st = store.stats();
  assert.equal(st.usedBytes, used, 'the unsealed objects are gone, their bytes free');
  assert.equal(st.aborts, aborts + 2);
  assert.equal(st.objects, 1);
  assert.equal(store.contains(x), false);
  assert.deepEqual(store.list().map((o) => o.id.toHex()), [keep.toHex()]);
  assert.equal(await waiting, null);
  // The ids are free again, and the room is usable (eviction 'none': it really was freed).
  store.put(x, Buffer.alloc(60 * 1024 - 1024));
  store.delete(x);
  await freshProcessWorks(t, name, store);
});

test('a client killed inside the lock: the lock is recovered and the half-done create repaired', { timeout: 30000 }, async (t) => {
  const { store, name } = tempStore(t);
  const live = ObjectId.random();
  store.put(live, pattern(700, 6));
  const held = store.get(live)!;
  const used = store.stats().usedBytes;
  assert.equal(store.stats().repairs, 0);
  const victim = await Agent.start(t, name, { env: { SHMSTORE_TEST_HOOKS: '1' } });
  const parked = victim.handle.waitForLine('parked', 10000);
  void victim.call('park').catch(() => {});
  await parked;
  // From here until the kill, this process must not touch the store: it would block on the lock.
  const exit = await victim.kill('SIGKILL');
  assert.equal(exit.signal, 'SIGKILL');

  // A fresh process first: if the lock were not recovered it would hang, and time out.
  await freshProcessWorks(t, name, store);

  const st = store.stats();
  assert.ok(st.repairs >= 1, `repairs ${st.repairs}`);
  assert.equal(st.clients, 1, 'the dead client was reclaimed');
  assert.equal(st.usedBytes, used, 'the half-done allocation did not leak');
  assert.equal(st.usedBytes, expectedUsedBytes(store));
  assert.equal(st.objects, 1);
  assert.equal(store.list().length, 1);
  assert.ok(held.data.equals(pattern(700, 6)), 'a view held across the repair is intact');
  held.release();
  // All of the store still works here: the largest object that fits, then everything freed.
  const big = ObjectId.random();
  store.put(big, Buffer.alloc(st.capacity - st.usedBytes));
  store.delete(big);
  store.delete(live);
  assert.equal(store.stats().usedBytes, 0);
});

test('the hook refuses to run without SHMSTORE_TEST_HOOKS=1', { timeout: 20000 }, async (t) => {
  const { store, name } = tempStore(t);
  const agent = await Agent.start(t, name, { env: { SHMSTORE_TEST_HOOKS: '0' } });
  await agent.callFails('park', {}, 'ERR_INVALID_ARGUMENT');
  assert.equal(store.stats().repairs, 0);
});

test('many clients killed at once, holding and creating: stats() reclaims all of them', { timeout: 30000 }, async (t) => {
  const { store, name } = tempStore(t, { capacity: 1 << 20 });
  const shared = ObjectId.random();
  store.put(shared, Buffer.alloc(4096, 1));
  const used = store.stats().usedBytes;
  const agents = await Promise.all(Array.from({ length: 4 }, () => Agent.start(t, name)));
  await Promise.all(
    agents.map(async (a) => {
      await a.call('get', { hex: shared.toHex() });
      await a.call('create', { hex: ObjectId.random().toHex(), size: 5000 });
      await a.call('put', { hex: ObjectId.random().toHex(), size: 100 }); // sealed: survives
    }),
  );
  assert.equal(store.list().find((o) => o.id.equals(shared))?.holders, 4);
  store.delete(shared);
  await Promise.all(agents.map((a) => a.kill()));
  const st = store.stats();
  assert.equal(st.clients, 1);
  assert.equal(st.deleting, 0);
  assert.equal(st.objects, 4, 'the four sealed puts stay; unsealed creates are gone');
  assert.equal(st.usedBytes, 4 * allocSize(100));
  assert.ok(used > 0);
  assert.equal(st.usedBytes, expectedUsedBytes(store));
  // A child that dies while blocked in a get is no problem either.
  const blocked = spawnChild(t, 'agent', [name]);
  await blocked.waitForLine((l) => l.startsWith('{"ready"'));
  blocked.write(JSON.stringify({ id: 1, op: 'get', hex: ObjectId.random().toHex(), timeoutMs: -1 }));
  await new Promise((r) => setTimeout(r, 100));
  await blocked.kill();
  assert.equal(store.stats().clients, 1);
});
