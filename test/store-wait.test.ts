// Waiting for objects: get with a timeout (0 polls, -1 forever, a positive one that expires),
// getAsync with a timeout and an AbortSignal, Plasma's wait(), notifications across
// processes, and async waits that never block the event loop or hold a libuv pool thread.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { ObjectId } from '../src/object-id.js';
import type { StoreEvent } from '../src/store.js';
import { Agent, spawnChild } from './helpers/child.js';
import { hexes, ids, openStore, rejectsCode, sleep, tempStore } from './helpers/store.js';

/** Whether p has settled after the event loop had a chance to run. */
async function settled(p: Promise<unknown>, ms = 50): Promise<boolean> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await sleep(ms);
  return done;
}

describe('get', () => {
  test('timeout 0 (the default) polls; a positive timeout that expires returns null', (t) => {
    const { store } = tempStore(t);
    const id = ObjectId.random();
    assert.equal(store.get(id), null);
    assert.equal(store.get(id, { timeoutMs: 0 }), null);
    const t0 = performance.now();
    assert.equal(store.get(id, { timeoutMs: 150 }), null);
    assert.ok(performance.now() - t0 >= 140, 'it did wait for the timeout');
    store.create(id, 1);
    assert.equal(store.get(id, { timeoutMs: 50 }), null, 'unsealed objects are not returned');
    store.seal(id);
    assert.ok(store.get(id, { timeoutMs: 0 }) !== null);
  });

  test('a blocking get with a timeout returns as soon as another process seals', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const id = ObjectId.random();
    // The other process seals in 200 ms, while this thread is blocked in get().
    const later = other.call('later', { ms: 200, then: { op: 'put', hex: id.toHex(), size: 3, dataHex: 'abcdef' } });
    const obj = store.get(id, { timeoutMs: 10000 });
    assert.ok(obj !== null, 'woken by the seal, long before the timeout');
    assert.equal(obj.data.toString('hex'), 'abcdef');
    await later;
  });

  test('get with timeout -1 waits forever, until another process seals (in a child, since it blocks)', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const waiter = await Agent.start(t, name);
    const id = ObjectId.random();
    const answer = waiter.call('get', { hex: id.toHex(), timeoutMs: -1 });
    assert.equal(await settled(answer, 300), false, 'still waiting');
    store.create(id, 4).write('done');
    assert.equal(await settled(answer, 100), false, 'created is not sealed');
    store.seal(id);
    const got = await answer;
    assert.equal(Buffer.from(got.data.hex, 'hex').toString(), 'done');
  });
});

describe('getAsync', () => {
  test('resolves when another process seals; the event loop runs meanwhile', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const id = ObjectId.random();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    t.after(() => clearInterval(timer));
    const p = store.getAsync(id); // default: forever
    assert.equal(await settled(p, 100), false);
    await other.call('put', { hex: id.toHex(), size: 10, fill: 7 });
    const obj = await p;
    clearInterval(timer);
    assert.ok(obj !== null);
    assert.ok(obj.data.equals(Buffer.alloc(10, 7)));
    assert.ok(ticks > 0, 'timers ran while the wait was pending');
    // An object that is already sealed resolves at once, also with timeout 0.
    assert.ok((await store.getAsync(id, { timeoutMs: 0 })) !== null);
  });

  test('resolves null at the timeout; timeout 0 polls', async (t) => {
    const { store } = tempStore(t);
    const id = ObjectId.random();
    assert.equal(await store.getAsync(id, { timeoutMs: 0 }), null);
    const t0 = performance.now();
    assert.equal(await store.getAsync(id, { timeoutMs: 120 }), null);
    assert.ok(performance.now() - t0 >= 110);
  });

  test('a timeout longer than a 32-bit timer still waits (does not fire after 1 ms)', async (t) => {
    const { store } = tempStore(t);
    const id = ObjectId.random();
    const ac = new AbortController();
    const p = store.getAsync(id, { timeoutMs: 2 ** 31 + 1000, signal: ac.signal });
    assert.equal(await settled(p, 100), false, 'a 24-day timeout has not expired after 100 ms');
    const w = store.wait([id], { timeoutMs: 2 ** 32, signal: ac.signal });
    assert.equal(await settled(w, 50), false, 'wait() too');
    ac.abort();
    await rejectsCode(p, 'ERR_ABORTED');
    await rejectsCode(w, 'ERR_ABORTED');
  });

  test('an AbortSignal ends the wait with ERR_ABORTED', async (t) => {
    const { store } = tempStore(t);
    const id = ObjectId.random();
    const ac = new AbortController();
    const p = store.getAsync(id, { signal: ac.signal });
    assert.equal(await settled(p, 30), false);
    ac.abort(new Error('stop'));
    const err = await rejectsCode(p, 'ERR_ABORTED');
    assert.equal((err.cause as Error).message, 'stop', 'the reason is the cause');
    await rejectsCode(store.getAsync(id, { signal: AbortSignal.abort() }), 'ERR_ABORTED', 'already aborted');
    await rejectsCode(store.getAsync(id, { timeoutMs: 10000, signal: AbortSignal.timeout(30) }), 'ERR_ABORTED', 'AbortSignal.timeout');
    // The store goes on working, and an abort after success changes nothing.
    store.put(id, Buffer.alloc(1));
    const ac2 = new AbortController();
    const obj = await store.getAsync(id, { signal: ac2.signal });
    ac2.abort();
    assert.ok(obj !== null && obj.data.length === 1);
  });

  test('close rejects pending waits with ERR_STORE_CLOSED', async (t) => {
    const { store } = tempStore(t);
    const p = store.getAsync(ObjectId.random());
    const w = store.wait([ObjectId.random()]);
    await sleep(10);
    store.close();
    await rejectsCode(p, 'ERR_STORE_CLOSED');
    await rejectsCode(w, 'ERR_STORE_CLOSED');
  });

  test('a getAsync in another process is woken by a seal here, and can be aborted there', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const id = ObjectId.random();
    const answer = other.call('getAsync', { hex: id.toHex(), timeoutMs: -1 });
    const never = other.call('getAsync', { hex: ObjectId.random().toHex(), tag: 'never' });
    assert.equal(await settled(answer, 200), false);
    store.put(id, Buffer.from('hello'));
    const got = await answer;
    assert.equal(Buffer.from(got.data.hex, 'hex').toString(), 'hello');
    assert.equal(await settled(never, 50), false);
    await other.call('abortWait', { tag: 'never' });
    await assert.rejects(never, (err: Error & { code?: string }) => err.code === 'ERR_ABORTED');
  });
});

describe('wait (Plasma semantics)', () => {
  test('resolves once numReturns of the ids are sealed, with the sealed ones', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const [a, b, c] = ids(3);
    const p = store.wait([a, b, c], { numReturns: 2 });
    await other.call('put', { hex: a.toHex(), size: 1 });
    assert.equal(await settled(p, 150), false, 'one of two is not enough');
    await other.call('create', { hex: b.toHex(), size: 1 });
    assert.equal(await settled(p, 100), false, 'created is not sealed');
    await other.call('seal', { hex: b.toHex() });
    const ready = await p;
    assert.deepEqual(hexes(ready), hexes([a, b]));
    assert.ok(ready.every((x) => x instanceof ObjectId));
  });

  test('by default waits for all of them', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const list = ids(4);
    const p = store.wait(list);
    for (const id of list.slice(0, 3)) await other.call('put', { hex: id.toHex(), size: 1 });
    assert.equal(await settled(p, 100), false);
    await other.call('put', { hex: list[3].toHex(), size: 1 });
    assert.deepEqual(hexes(await p), hexes(list));
  });

  test('at the timeout it resolves with the ids sealed by then (possibly none)', async (t) => {
    const { store } = tempStore(t);
    const [a, b, c] = ids(3);
    store.put(a, Buffer.alloc(1));
    store.create(b, 1); // not sealed
    assert.deepEqual(hexes(await store.wait([a, b, c], { numReturns: 3, timeoutMs: 100 })), hexes([a]));
    assert.deepEqual(await store.wait([b, c], { timeoutMs: 50 }), []);
    assert.deepEqual(hexes(await store.wait([a, b, c], { timeoutMs: 0 })), hexes([a]), 'timeout 0 polls');
  });

  test('ready at once when enough are sealed; numReturns 0 and an empty list resolve at once', async (t) => {
    const { store } = tempStore(t);
    const [a, b] = ids(2);
    store.put(a, Buffer.alloc(1));
    assert.deepEqual(hexes(await store.wait([a, b], { numReturns: 1 })), hexes([a]));
    assert.deepEqual(hexes(await store.wait([a, b], { numReturns: 0 })), hexes([a]));
    assert.deepEqual(await store.wait([]), []);
  });

  test('bad numReturns and an AbortSignal', async (t) => {
    const { store } = tempStore(t);
    const [a, b] = ids(2);
    for (const n of [-1, 3, 1.5, NaN, '1']) {
      await rejectsCode(store.wait([a, b], { numReturns: n as number }), 'ERR_INVALID_ARGUMENT', `numReturns ${String(n)}`);
    }
    const ac = new AbortController();
    const p = store.wait([a, b], { signal: ac.signal });
    assert.equal(await settled(p, 30), false);
    ac.abort();
    await rejectsCode(p, 'ERR_ABORTED');
  });

  test('a wait in another process resolves when this one seals', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    const [a, b] = ids(2);
    const answer = other.call('wait', { hexes: [a.toHex(), b.toHex()], numReturns: 1 });
    assert.equal(await settled(answer, 150), false);
    store.put(b, Buffer.alloc(1));
    assert.deepEqual(await answer, [b.toHex()]);
  });
});

describe('notifications', () => {
  test('seal and delete events of another process, in order', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    store.put(ObjectId.random(), Buffer.alloc(1)); // before subscribing: not reported
    const ac = new AbortController();
    const it = store.notifications({ signal: ac.signal });
    const first = it.next(); // subscribes now
    const [a, b] = ids(2);
    await other.call('put', { hex: a.toHex(), size: 1 });
    await other.call('create', { hex: b.toHex(), size: 1 });
    await other.call('abort', { hex: b.toHex() }); // aborts are not events
    await other.call('put', { hex: b.toHex(), size: 1 });
    await other.call('delete', { hex: a.toHex() });
    const events: StoreEvent[] = [(await first).value as StoreEvent];
    while (events.length < 3) events.push((await it.next()).value as StoreEvent);
    const shown = events.map((e) => (e.type === 'missed' ? `missed ${e.count}` : `${e.type} ${e.id.toHex()}`));
    assert.deepEqual(shown, [`sealed ${a.toHex()}`, `sealed ${b.toHex()}`, `deleted ${a.toHex()}`]);
    // Nothing more is pending; aborting ends the iteration with ERR_ABORTED.
    const more = it.next();
    assert.equal(await settled(more, 50), false);
    ac.abort();
    await rejectsCode(more, 'ERR_ABORTED');
  });

  test('evictions are reported as deletes', async (t) => {
    const { store } = tempStore(t, { capacity: 4096 });
    const [a, b] = ids(2);
    store.put(a, Buffer.alloc(4096));
    const it = store.notifications();
    const first = it.next();
    store.put(b, Buffer.alloc(100)); // evicts a
    const seen = [(await first).value, (await it.next()).value] as StoreEvent[];
    await it.return();
    assert.deepEqual(
      seen.map((e) => (e.type === 'missed' ? 'missed' : `${e.type} ${e.id.toHex()}`)),
      [`deleted ${a.toHex()}`, `sealed ${b.toHex()}`],
    );
  });

  test("a reader that falls a whole ring behind gets { type: 'missed', count }", { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t, { notificationCapacity: 4 });
    const other = await Agent.start(t, name);
    const it = store.notifications();
    t.after(() => it.return());
    const first = it.next();
    const list = ids(10);
    // The other process seals 10 objects while this reader does not call next().
    await other.call('putMany', { hexes: list.map((x) => x.toHex()), size: 8 });
    const events: StoreEvent[] = [(await first).value as StoreEvent];
    const accounted = () => events.reduce((n, e) => n + (e.type === 'missed' ? e.count : 1), 0);
    while (accounted() < 10) events.push((await it.next()).value as StoreEvent);
    assert.equal(accounted(), 10, 'every event is either delivered or counted as missed');
    // The pending next() may read the ring while the seals go on, so there can be more than one
    // 'missed'. In order: each seal delivered is the next one not counted as missed.
    assert.ok(events.some((e) => e.type === 'missed'), JSON.stringify(events));
    let at = 0;
    for (const [i, e] of events.entries()) {
      if (e.type === 'missed') {
        assert.ok(e.count > 0 && events[i + 1]?.type !== 'missed', JSON.stringify(events));
        at += e.count;
      } else assert.equal(e.type === 'sealed' && e.id.toHex(), list[at++].toHex(), JSON.stringify(events));
    }
    assert.equal(events.at(-1)?.type, 'sealed', 'the newest events are kept');
    // And the reader goes on with new events.
    const z = ObjectId.random();
    const next = it.next();
    store.put(z, Buffer.alloc(1));
    const ev = (await next).value as StoreEvent;
    assert.ok(ev.type === 'sealed' && ev.id.equals(z));
  });
});

describe('async waits and the event loop', () => {
  test('many pending getAsync waits hold no libuv pool thread; a seal from a child resolves them all', { timeout: 30000 }, async (t) => {
    const { store, name } = tempStore(t);
    const other = await Agent.start(t, name);
    // More waits than the pool has threads (4 unless UV_THREADPOOL_SIZE says otherwise).
    const pool = Number(process.env.UV_THREADPOOL_SIZE) || 4;
    const n = Math.max(8, 2 * pool);
    const list = ids(n);
    const waits = list.map((id) => store.getAsync(id, { timeoutMs: 20000 }));
    let immediates = 0;
    let timers = 0;
    await new Promise<void>((r) => setImmediate(() => (immediates++, r())));
    await new Promise<void>((r) => setTimeout(() => (timers++, r()), 5));
    // fs.promises runs on the pool: it must still complete while all the waits are pending.
    const self = fileURLToPath(import.meta.url);
    const fsWork = Promise.all([
      ...Array.from({ length: 16 }, () => readFile(self)),
      ...Array.from({ length: 16 }, () => stat(self)),
    ]);
    const guard = new Promise<'blocked'>((r) => setTimeout(() => r('blocked'), 10000).unref());
    const outcome = await Promise.race([fsWork.then(() => 'done' as const), guard]);
    assert.equal(outcome, 'done', 'fs calls on the libuv pool completed while the waits were pending');
    assert.equal(immediates, 1);
    assert.equal(timers, 1);
    for (const w of waits) assert.equal(await settled(w, 0), false, 'all waits still pending');

    await other.call('putMany', { hexes: list.map((x) => x.toHex()), size: 16, fill: 3 });
    const objs = await Promise.all(waits);
    for (const [i, obj] of objs.entries()) {
      assert.ok(obj !== null, `wait ${i} resolved with its object`);
      assert.ok(obj.id.equals(list[i]));
      assert.ok(obj.data.equals(Buffer.alloc(16, 3)));
      obj.release();
    }
  });

  test('one waiter thread serves every store handle of the process; closing one leaves the others served', { timeout: 20000 }, async (t) => {
    const threads = async () => (await readdir('/proc/self/task')).length;
    const stores = [tempStore(t).store, tempStore(t).store, tempStore(t).store];
    const others = stores.map((s) => openStore(t, s.name));
    const before = await threads();
    const list = ids(stores.length);
    const waits = stores.map((s, i) => s.getAsync(list[i], { timeoutMs: 15000 }));
    await sleep(20);
    assert.ok((await threads()) - before <= 1, 'at most one thread more for three stores waiting');
    // Closing one handle rejects its wait only; the others still wake on their own store.
    stores[0].close();
    await rejectsCode(waits[0], 'ERR_STORE_CLOSED');
    others[2].put(list[2], Buffer.from('two'));
    others[1].put(list[1], Buffer.from('one'));
    const [one, two] = await Promise.all([waits[1], waits[2]]);
    assert.equal(one?.data.toString(), 'one');
    assert.equal(two?.data.toString(), 'two');
    one?.release();
    two?.release();
  });

  test('a worker thread waits on the same waiter thread; a worker ended mid-wait leaves the main thread served', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const [forWorker, forMain] = ids(2);
    const mainWait = store.getAsync(forMain, { timeoutMs: 15000 });
    const worker = new Worker(
      `const { parentPort, workerData: d } = require('node:worker_threads');
      (async () => {
        const { ObjectStore } = await import(d.store);
        const { ObjectId } = await import(d.objectId);
        const store = ObjectStore.open(d.name);
        const wait = store.getAsync(ObjectId.fromHex(d.id), { timeoutMs: 15000 });
        parentPort.postMessage('waiting');
        const obj = await wait;
        parentPort.postMessage(obj.data.toString());
        store.getAsync(ObjectId.random()); // still pending when the worker is terminated
        parentPort.postMessage('pending');
      })();`,
      {
        eval: true,
        workerData: {
          store: new URL('../src/store.js', import.meta.url).href,
          objectId: new URL('../src/object-id.js', import.meta.url).href,
          name,
          id: forWorker.toHex(),
        },
      },
    );
    t.after(() => worker.terminate());
    const next = () => new Promise<string>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.equal(await next(), 'waiting');
    store.put(forWorker, Buffer.from('to the worker'));
    assert.equal(await next(), 'to the worker');
    assert.equal(await next(), 'pending');
    await worker.terminate();
    assert.equal(await settled(mainWait, 20), false, 'the main wait is still pending');
    store.put(forMain, Buffer.from('to main'));
    const obj = await mainWait;
    assert.equal(obj?.data.toString(), 'to main');
    obj?.release();
  });

  test('workers terminated mid-wait while the store keeps changing: the process survives, the main wait is served', { timeout: 30000 }, async (t) => {
    const { store, name } = tempStore(t, { capacity: 1 << 20, maxObjects: 64 });
    const mainId = ObjectId.random();
    const mainWait = store.getAsync(mainId, { timeoutMs: 25000 });
    const source = `const { parentPort, workerData: d } = require('node:worker_threads');
      (async () => {
        const { ObjectStore } = await import(d.store);
        const { ObjectId } = await import(d.objectId);
        const store = ObjectStore.open(d.name);
        store.getAsync(ObjectId.random());
        parentPort.postMessage('waiting');
      })();`;
    const workerData = {
      store: new URL('../src/store.js', import.meta.url).href,
      objectId: new URL('../src/object-id.js', import.meta.url).href,
      name,
    };
    for (let round = 0; round < 10; round++) {
      const worker = new Worker(source, { eval: true, workerData });
      t.after(() => worker.terminate());
      await new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      // Seals land while the worker's environment is torn down.
      const ending = worker.terminate();
      for (let i = 0; i < 50; i++) {
        const id = ObjectId.random();
        store.put(id, Buffer.from('x'));
        store.delete(id);
        await new Promise((r) => setImmediate(r));
      }
      await ending;
    }
    store.put(mainId, Buffer.from('main'));
    const obj = await mainWait;
    assert.equal(obj?.data.toString(), 'main');
    obj?.release();
  });

  test('a pending wait keeps the process alive; an idle store does not', { timeout: 20000 }, async (t) => {
    const { store, name } = tempStore(t);
    const id = ObjectId.random();
    const child = spawnChild(t, 'keepalive', [name, id.toHex()]);
    await child.waitForLine('waiting');
    await sleep(300);
    assert.equal(child.exitStatus, null, 'the pending getAsync keeps the child alive');
    store.put(id, Buffer.from('x'));
    await child.waitForLine('got x');
    // The child neither closes the store nor exits explicitly: an idle store lets it end.
    const exit = await child.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
  });
});
