// Bad input of every kind gives a StoreError with the documented code, never a crash: a table
// of cases, use after close, a randomized fast-check run over every method, corrupted
// segments (ERR_BAD_SEGMENT, never an out-of-bounds access), a capacity the tmpfs cannot hold
// (ERR_NO_SPACE from the pre-check) and names that are not a single safe file name.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, openSync, readFileSync, statfsSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import fc from 'fast-check';
import { STORE_ERROR_CODES, StoreError } from '../src/errors.js';
import { ObjectId } from '../src/object-id.js';
import { ObjectStore, type StoreCreateOptions, type StoreOpenOptions } from '../src/store.js';
import { Agent, spawnChild } from './helpers/child.js';
import {
  HEADER,
  cleanupName,
  closeQuietly,
  describeError,
  rejectsCode,
  tempStore,
  throwsCode,
  uniqueName,
  unlinkQuietly,
} from './helpers/store.js';

const INVALID = 'ERR_INVALID_ARGUMENT';
const BAD_NAMES: unknown[] = [
  42, null, undefined, {}, ['a'], '', 'a/b', '/abs', '..', '../escape', 'x/../y', 'x..y', '.hidden', 'sp ace',
  'nul\0byte', 'tab\t', 'a'.repeat(201), 'ünï', 'semi;colon', '*',
];

describe('bad arguments give ERR_INVALID_ARGUMENT', () => {
  test('ObjectStore.create: names and options', (t) => {
    for (const name of BAD_NAMES) {
      throwsCode(() => ObjectStore.create(name as string, { capacity: 4096 }), INVALID, `create(${JSON.stringify(name)})`);
      throwsCode(() => ObjectStore.open(name as string), INVALID, `open(${JSON.stringify(name)})`);
      throwsCode(() => ObjectStore.unlink(name as string), INVALID, `unlink(${JSON.stringify(name)})`);
      throwsCode(() => ObjectStore.pathOf(name as string), INVALID, `pathOf(${JSON.stringify(name)})`);
    }
    assert.equal(existsSync('/dev/escape'), false);
    const name = uniqueName();
    cleanupName(t, name);
    const cases: [string, unknown][] = [
      ['no options', undefined],
      ['null options', null],
      ['array options', []],
      ['string options', 'capacity=1'],
      ['no capacity', {}],
      ['NaN capacity', { capacity: NaN }],
      ['negative capacity', { capacity: -4096 }],
      ['fractional capacity', { capacity: 4096.5 }],
      ['string capacity', { capacity: '4096' }],
      ['infinite capacity', { capacity: Infinity }],
      ['bigint capacity', { capacity: 4096n }],
      ['zero capacity', { capacity: 0 }],
      ['capacity under 64', { capacity: 63 }],
      ['capacity over 64 TiB', { capacity: 2 ** 47 }],
      ['unsafe capacity', { capacity: 2 ** 60 }],
      ['unknown option', { capacity: 4096, capacty: 1 }],
      ['maxObjects 0', { capacity: 4096, maxObjects: 0 }],
      ['maxObjects past the limit', { capacity: 4096, maxObjects: 2 ** 24 + 1 }],
      ['maxObjects NaN', { capacity: 4096, maxObjects: NaN }],
      ['maxClients 0', { capacity: 4096, maxClients: 0 }],
      ['maxClients 129', { capacity: 4096, maxClients: 129 }],
      ['maxClients 1.5', { capacity: 4096, maxClients: 1.5 }],
      ['eviction fifo', { capacity: 4096, eviction: 'fifo' }],
      ['mode with setuid', { capacity: 4096, mode: 0o4600 }],
      ['negative mode', { capacity: 4096, mode: -1 }],
      ['mode string', { capacity: 4096, mode: '600' }],
      ['notificationCapacity 3', { capacity: 4096, notificationCapacity: 3 }],
      ['notificationCapacity 0', { capacity: 4096, notificationCapacity: 0 }],
      ['notificationCapacity 2^21', { capacity: 4096, notificationCapacity: 2 ** 21 }],
      ['prefault 1', { capacity: 4096, prefault: 1 }],
      ['prefault string', { capacity: 4096, prefault: 'true' }],
    ];
    for (const [what, options] of cases) {
      throwsCode(() => ObjectStore.create(name, options as StoreCreateOptions), INVALID, what);
      assert.equal(existsSync(ObjectStore.pathOf(name)), false, `${what}: no file left behind`);
    }
  });

  test('ObjectStore.open: options', (t) => {
    const { store, name } = tempStore(t);
    const before = store.stats().clients;
    for (const [what, options] of [
      ['null options', null],
      ['string options', 'prefault'],
      ['unknown option', { prefaults: true }],
      ['prefault 1', { prefault: 1 }],
    ] as [string, unknown][]) {
      throwsCode(() => ObjectStore.open(name, options as StoreOpenOptions), INVALID, what);
    }
    assert.equal(store.stats().clients, before, 'a refused open holds no client slot');
  });

  test('object calls: ids, sizes, metadata, timeouts, options', async (t) => {
    const { store } = tempStore(t, { capacity: 64 * 1024 });
    const id = ObjectId.random();
    const fake = Object.create(ObjectId.prototype) as ObjectId; // passes instanceof, has no bytes
    const forged = Object.assign(Object.create(ObjectId.prototype), { bytes: new Uint8Array(19) }) as ObjectId;
    const badIds: unknown[] = [undefined, null, 'a'.repeat(40), id.toHex(), id.bytes, Buffer.alloc(20), {}, 7, fake, forged, [id]];
    for (const bad of badIds) {
      const b = bad as ObjectId;
      const w = `id ${describeError(bad)}`;
      throwsCode(() => store.create(b, 1), INVALID, `create ${w}`);
      throwsCode(() => store.seal(b), INVALID, `seal ${w}`);
      throwsCode(() => store.abort(b), INVALID, `abort ${w}`);
      throwsCode(() => store.put(b, Buffer.alloc(1)), INVALID, `put ${w}`);
      throwsCode(() => store.get(b), INVALID, `get ${w}`);
      throwsCode(() => store.contains(b), INVALID, `contains ${w}`);
      throwsCode(() => store.delete(b), INVALID, `delete ${w}`);
      throwsCode(() => store.release(b), INVALID, `release ${w}`);
      await rejectsCode(store.getAsync(b), INVALID, `getAsync ${w}`);
      await rejectsCode(store.createAsync(b, 1), INVALID, `createAsync ${w}`);
      await rejectsCode(store.wait([b]), INVALID, `wait ${w}`);
    }
    const badSizes: unknown[] = [NaN, -1, -0.5, 1.5, Infinity, -Infinity, '10', 10n, null, undefined, {}, 2 ** 53, 64 * 1024 + 1, 2 ** 40];
    for (const size of badSizes) {
      throwsCode(() => store.create(ObjectId.random(), size as number), INVALID, `create size ${String(size)}`);
      await rejectsCode(store.createAsync(ObjectId.random(), size as number), INVALID, `createAsync size ${String(size)}`);
      if (size !== 64 * 1024 + 1 && size !== 2 ** 40) throwsCode(() => store.evict(size as number), INVALID, `evict ${String(size)}`);
    }
    const badBytes: unknown[] = ['abc', [1, 2], { length: 1 }, 5, new Float64Array(2), new Uint16Array(2), new ArrayBuffer(4), new DataView(new ArrayBuffer(4))];
    for (const bytes of badBytes) {
      throwsCode(() => store.put(ObjectId.random(), bytes as Uint8Array), INVALID, `put data ${describeError(bytes)}`);
      throwsCode(() => store.put(ObjectId.random(), Buffer.alloc(1), bytes as Uint8Array), INVALID, `put metadata ${describeError(bytes)}`);
      throwsCode(() => store.create(ObjectId.random(), 1, bytes as Uint8Array), INVALID, `create metadata ${describeError(bytes)}`);
    }
    throwsCode(() => store.create(ObjectId.random(), 10, Buffer.alloc(64 * 1024)), INVALID, 'metadata past capacity');
    throwsCode(() => store.put(ObjectId.random(), Buffer.alloc(64 * 1024 + 1)), INVALID, 'data past capacity');
    const badTimeouts: unknown[] = [-2, -1.5, NaN, Infinity, '5', null, 5n, {}];
    for (const timeoutMs of badTimeouts) {
      const w = `timeoutMs ${String(timeoutMs)}`;
      throwsCode(() => store.get(id, { timeoutMs: timeoutMs as number }), INVALID, `get ${w}`);
      throwsCode(() => store.create(ObjectId.random(), 1, null, { timeoutMs: timeoutMs as number }), INVALID, `create ${w}`);
      await rejectsCode(store.getAsync(id, { timeoutMs: timeoutMs as number }), INVALID, `getAsync ${w}`);
      await rejectsCode(store.wait([id], { timeoutMs: timeoutMs as number }), INVALID, `wait ${w}`);
      await rejectsCode(store.createAsync(ObjectId.random(), 1, { timeoutMs: timeoutMs as number }), INVALID, `createAsync ${w}`);
    }
    // A blocking wait longer than the native limit (1e12 ms, about 31 years) is refused.
    throwsCode(() => store.get(id, { timeoutMs: 1e13 }), INVALID, 'get timeoutMs 1e13');
    throwsCode(() => store.create(ObjectId.random(), 1, null, { timeoutMs: 1e13 }), INVALID, 'create timeoutMs 1e13');
    // Unknown option keys and non-object options.
    for (const opts of [{ timeout: 5 }, { timeoutMs: 0, extra: 1 }, 5, 'x', [], null]) {
      const o = opts as never;
      const w = `options ${JSON.stringify(opts)}`;
      throwsCode(() => store.get(id, o), INVALID, `get ${w}`);
      throwsCode(() => store.create(ObjectId.random(), 1, null, o), INVALID, `create ${w}`);
      await rejectsCode(store.getAsync(id, o), INVALID, `getAsync ${w}`);
      await rejectsCode(store.wait([id], o), INVALID, `wait ${w}`);
      await rejectsCode(store.createAsync(ObjectId.random(), 1, o), INVALID, `createAsync ${w}`);
      await rejectsCode(store.notifications(o).next(), INVALID, `notifications ${w}`);
      await rejectsCode(store.waitFor(() => 1, o, () => 2), INVALID, `waitFor ${w}`);
    }
    for (const signal of ['x', {}, 1, new AbortController()]) {
      await rejectsCode(store.getAsync(id, { signal: signal as AbortSignal }), INVALID, 'getAsync signal');
      await rejectsCode(store.wait([id], { signal: signal as AbortSignal }), INVALID, 'wait signal');
      await rejectsCode(store.createAsync(ObjectId.random(), 1, { signal: signal as AbortSignal }), INVALID, 'createAsync signal');
    }
    // wait: ids must be an array of ObjectIds, without holes.
    for (const list of ['ids', new Set([id]), { length: 1, 0: id }, [id, 'x'], [, id], new Array(2)]) {
      await rejectsCode(store.wait(list as ObjectId[], { timeoutMs: 10 }), INVALID, `wait ids ${describeError(list)}`);
    }
    // waitFor (public: streams use it): poll and onTimeout must be functions.
    await rejectsCode(store.waitFor(5 as never, {}, () => 1), INVALID, 'waitFor poll');
    await rejectsCode(store.waitFor(() => undefined, {}, 'x' as never), INVALID, 'waitFor onTimeout');
    assert.equal(await store.waitFor(() => 3, undefined as never, () => 1), 3, 'waitFor options are optional');
    // Cursors.
    throwsCode(() => store.setCursor(5 as never, 1), INVALID, 'cursor name');
    throwsCode(() => store.setCursor('c', -1), INVALID, 'cursor value');
    throwsCode(() => store.setCursor('c', 1.5), INVALID, 'cursor value');
    throwsCode(() => store.cursorValues({} as never), INVALID, 'cursorValues name');
    // After all that, the store is fine and holds nothing it should not.
    store.put(id, Buffer.from('ok'));
    assert.equal(store.get(id)?.data.toString(), 'ok');
    assert.equal(store.stats().objects, 1);
  });

  test('use after close is ERR_STORE_CLOSED everywhere', async (t) => {
    const { store } = tempStore(t);
    const id = ObjectId.random();
    store.put(id, Buffer.alloc(1));
    const held = store.get(id)!;
    store.close();
    const C = 'ERR_STORE_CLOSED';
    throwsCode(() => store.create(ObjectId.random(), 1), C, 'create');
    throwsCode(() => store.seal(id), C, 'seal');
    throwsCode(() => store.abort(id), C, 'abort');
    throwsCode(() => store.put(ObjectId.random(), Buffer.alloc(1)), C, 'put');
    throwsCode(() => store.get(id), C, 'get');
    throwsCode(() => store.release(id), C, 'release');
    throwsCode(() => store.contains(id), C, 'contains');
    throwsCode(() => store.delete(id), C, 'delete');
    throwsCode(() => store.evict(1), C, 'evict');
    throwsCode(() => store.list(), C, 'list');
    throwsCode(() => store.stats(), C, 'stats');
    throwsCode(() => store.clients(), C, 'clients');
    throwsCode(() => store.setCursor('c', 1), C, 'setCursor');
    throwsCode(() => store.clearCursor('c'), C, 'clearCursor');
    throwsCode(() => store.cursorValues('c'), C, 'cursorValues');
    await rejectsCode(store.getAsync(id), C, 'getAsync');
    await rejectsCode(store.wait([id]), C, 'wait');
    await rejectsCode(store.createAsync(ObjectId.random(), 1), C, 'createAsync');
    await rejectsCode(store.notifications().next(), C, 'notifications');
    await rejectsCode(store.waitFor(() => undefined, {}, () => 1), C, 'waitFor');
    assert.equal(store.closed, true);
    store.close(); // twice is fine
    held.release(); // a StoredObject of a closed store: a no-op
    assert.equal(held.data.length, 0);
  });
});

describe('randomized: arbitrary values thrown at every method', () => {
  test('every call succeeds or throws a StoreError; the store still works afterwards', { timeout: 60000 }, async (t) => {
    const { store, name } = tempStore(t, { capacity: 256 * 1024, maxObjects: 512 });
    const prefix = uniqueName('fz');
    const created = new Set<string>();
    t.after(() => {
      for (const n of created) unlinkQuietly(n);
    });
    const fixedIds = Array.from({ length: 4 }, () => ObjectId.random());
    const specials = fc.constantFrom<unknown>(
      NaN, -1, -0, 0, 1, 1.5, 64, 4096, 2 ** 31, 2 ** 53, -(2 ** 53), Infinity, -Infinity, 1e300, 5e-324,
      '', 'x', 'a'.repeat(40), '../etc', 'a/b', '..', null, undefined, true, false,
      Symbol('s'), 10n, -1n, [], [1, 2], {}, { length: 20 }, () => 1,
      new Uint8Array(0), new Uint8Array(20), new Uint8Array(19), Buffer.alloc(20), new Float64Array(3), new ArrayBuffer(20),
      new Date(0), new Map(), /re/, new Error('e'), Object.create(null), Object.create(ObjectId.prototype),
      AbortSignal.abort(), new AbortController().signal, ...fixedIds, fixedIds.slice(0, 2),
    );
    const timeouts = fc.oneof(fc.constantFrom<unknown>(-1, 0, 1, -2, NaN, Infinity, '5', null, 2 ** 40), fc.double(), fc.integer());
    const options = fc.record(
      {
        timeoutMs: timeouts,
        numReturns: fc.oneof(fc.integer({ min: -2, max: 5 }), specials),
        signal: fc.oneof(specials, fc.constant(AbortSignal.abort())),
        metadata: fc.oneof(fc.uint8Array({ maxLength: 64 }), specials),
        notify: specials,
        bogus: specials,
      },
      { requiredKeys: [] },
    );
    const value = fc.oneof(
      { weight: 3, arbitrary: specials },
      { weight: 2, arbitrary: fc.anything() },
      { weight: 2, arbitrary: options },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }) },
      { weight: 1, arbitrary: fc.integer({ min: -10, max: 300 * 1024 }) },
      { weight: 1, arbitrary: fc.string() },
      { weight: 1, arbitrary: fc.array(fc.constantFrom<unknown>(...fixedIds, 'x', 1), { maxLength: 4 }) },
    );
    const methods = [
      'create', 'createAsync', 'seal', 'abort', 'put', 'get', 'getAsync', 'wait', 'notifications', 'evict',
      'release', 'contains', 'delete', 'list', 'stats', 'clients', 'setCursor', 'clearCursor', 'cursorValues', 'waitFor',
      'ObjectStore.open', 'ObjectStore.unlink', 'ObjectStore.pathOf', 'ObjectStore.create',
      'ObjectId.fromHex', 'ObjectId.fromBytes', 'ObjectId.forStream', 'ObjectId.equals',
    ] as const;
    const pending: Promise<unknown>[] = [];
    const foreign: string[] = [];

    /** Blocking calls must not block long: a wait of -1 or of seconds becomes 2 ms. */
    const tame = (v: unknown): unknown => {
      if (v !== null && typeof v === 'object' && !Array.isArray(v) && 'timeoutMs' in v) {
        const ms = (v as { timeoutMs: unknown }).timeoutMs;
        if (typeof ms === 'number' && (ms === -1 || ms > 2)) return { ...v, timeoutMs: 2 };
      }
      return v;
    };
    /** Names go through the store's own prefix, unless they are invalid anyway. */
    const safeName = (v: unknown): unknown => {
      if (typeof v !== 'string') return v;
      if (/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/.test(v) && !v.includes('..')) return `${prefix}-${v}`.slice(0, 200);
      return v;
    };
    /** Store options that would make a big segment are made small. */
    const smallStore = (v: unknown): unknown => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
      const o = { ...(v as Record<string, unknown>) };
      if (typeof o.capacity === 'number' && o.capacity > 1 << 20) o.capacity = 1 << 20;
      if (typeof o.maxObjects === 'number' && o.maxObjects > 1024) o.maxObjects = 1024;
      if (typeof o.notificationCapacity === 'number' && o.notificationCapacity > 1024) o.notificationCapacity = 1024;
      return o;
    };

    const call = (method: (typeof methods)[number], a: unknown[]): unknown => {
      const s = store as unknown as Record<string, (...args: unknown[]) => unknown>;
      switch (method) {
        case 'create':
          return store.create(a[0] as ObjectId, a[1] as number, a[2] as Uint8Array, tame(a[3]) as never);
        case 'get':
          return store.get(a[0] as ObjectId, tame(a[1]) as never);
        case 'notifications': {
          const it = store.notifications(a[0] as never);
          const first = it.next();
          return first.finally(() => it.return(undefined));
        }
        case 'ObjectStore.open': {
          const opened = ObjectStore.open(safeName(a[0]) as string);
          opened.close();
          return opened;
        }
        case 'ObjectStore.unlink':
          return ObjectStore.unlink(safeName(a[0]) as string);
        case 'ObjectStore.pathOf':
          return ObjectStore.pathOf(a[0] as string);
        case 'ObjectStore.create': {
          const n = safeName(a[0]);
          const made = ObjectStore.create(n as string, smallStore(a[1]) as StoreCreateOptions);
          created.add(n as string);
          made.close();
          ObjectStore.unlink(n as string);
          return made;
        }
        case 'ObjectId.fromHex':
          return ObjectId.fromHex(a[0] as string);
        case 'ObjectId.fromBytes':
          return ObjectId.fromBytes(a[0] as Uint8Array);
        case 'ObjectId.forStream':
          return ObjectId.forStream(a[0] as string, a[1] as number);
        case 'ObjectId.equals':
          return fixedIds[0].equals(a[0] as ObjectId);
        default:
          return s[method](...a);
      }
    };

    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...methods), fc.array(value, { maxLength: 4 }), async (method, args) => {
        let result: unknown;
        try {
          result = call(method, args);
        } catch (err) {
          if (!(err instanceof StoreError)) {
            foreign.push(`${method}(${args.map((x) => describeError(x)).join(', ')}) threw ${describeError(err)}`);
            return false;
          }
          assert.ok((STORE_ERROR_CODES as readonly string[]).includes(err.code));
          return true;
        }
        if (result instanceof Promise) {
          // Settles soon, or stays pending legitimately (a wait): checked when the store closes.
          const checked = result.then(
            () => true,
            (err: unknown) => {
              if (err instanceof StoreError) return true;
              foreign.push(`${method}(${args.map((x) => describeError(x)).join(', ')}) rejected with ${describeError(err)}`);
              return false;
            },
          );
          const early = await Promise.race([checked, new Promise((r) => setTimeout(() => r('pending'), 5))]);
          if (early === 'pending') pending.push(checked);
          else if (early === false) return false;
        }
        // Release whatever a successful get handed out, so the store does not fill with holds.
        if (result !== null && typeof result === 'object' && 'release' in result) (result as { release(): void }).release();
        return true;
      }),
      { numRuns: 1500, verbose: true },
    );
    assert.deepEqual(foreign, []);

    // The store still works, for this process and another, with junk waits still pending.
    const id = ObjectId.random();
    const waiting = store.getAsync(id, { timeoutMs: 10000 });
    const other = await Agent.start(t, name);
    await other.call('put', { hex: id.toHex(), size: 3, dataHex: '010203' });
    assert.equal((await waiting)?.data.toString('hex'), '010203');
    const st = store.stats();
    assert.ok(st.objects <= st.maxObjects);
    assert.equal(st.clients, 2);
    // Closing ends every pending wait with a StoreError (ERR_STORE_CLOSED), nothing else.
    store.close();
    const outcomes = await Promise.all(pending);
    assert.ok(outcomes.every((ok) => ok), foreign.join('\n'));
    for (const n of created) assert.equal(existsSync(`/dev/shm/${n}`), false, `${n} was unlinked`);
  });
});

describe('corrupted segments', () => {
  /** A closed store with a few objects; returns its file path and the pristine bytes. */
  function closedStore(t: Parameters<typeof tempStore>[0]): { name: string; path: string; pristine: Buffer } {
    const { store, name } = tempStore(t, { capacity: 64 * 1024, maxObjects: 32, maxClients: 4 });
    store.put(ObjectId.random(), Buffer.alloc(100, 1));
    store.put(ObjectId.random(), Buffer.alloc(5000, 2));
    // The offsets these tests write to are the header's: check them against the live store.
    const file = readFileSync(ObjectStore.pathOf(name));
    const st = store.stats();
    assert.equal(Number(file.readBigUInt64LE(HEADER.capacity)), st.capacity);
    assert.equal(Number(file.readBigUInt64LE(HEADER.usedBytes)), st.usedBytes);
    assert.equal(file.readUInt32LE(HEADER.objects), st.objects);
    assert.equal(file.readUInt32LE(HEADER.maxObjects), st.maxObjects);
    assert.equal(file.readUInt32LE(HEADER.entryFreeCount), st.maxObjects - st.objects);
    assert.equal(Number(file.readBigUInt64LE(HEADER.segmentSize)), file.length);
    store.close();
    const path = ObjectStore.pathOf(name);
    return { name, path, pristine: readFileSync(path) };
  }

  function patch(path: string, at: number, bytes: Buffer): void {
    const fd = openSync(path, 'r+');
    try {
      writeSync(fd, bytes, 0, bytes.length, at);
    } finally {
      closeSync(fd);
    }
  }
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    return b;
  };
  const u64 = (v: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(v);
    return b;
  };

  test('bad magic, bad version, sizes and offsets past the end: ERR_BAD_SEGMENT at open', (t) => {
    const { name, path, pristine } = closedStore(t);
    const dataOffset = Number(pristine.readBigUInt64LE(HEADER.dataOffset));
    const cases: [string, () => void][] = [
      ['bad magic', () => patch(path, HEADER.magic, Buffer.from('NOTASTOR'))],
      ['an older version', () => patch(path, HEADER.layoutVersion, u32(1))],
      ['a newer version', () => patch(path, HEADER.layoutVersion, u32(3))],
      ['version 0', () => patch(path, HEADER.layoutVersion, u32(0))],
      ['header size', () => patch(path, HEADER.headerSize, u32(64))],
      ['recorded size past the end', () => patch(path, HEADER.segmentSize, u64(BigInt(pristine.length) * 2n))],
      ['capacity past the end', () => patch(path, HEADER.capacity, u64(1n << 40n))],
      ['capacity beyond any limit', () => patch(path, HEADER.capacity, u64(0xffffffffffffffffn))],
      ['data offset past the end', () => patch(path, HEADER.dataOffset, u64(BigInt(pristine.length)))],
      ['data offset off by a page', () => patch(path, HEADER.dataOffset, u64(BigInt(dataOffset + 4096)))],
      ['objects offset huge', () => patch(path, HEADER.objectsOffset, u64(1n << 62n))],
      ['extents offset huge', () => patch(path, HEADER.extentsOffset, u64(0xfffffffffffff000n))],
      ['notify offset huge', () => patch(path, HEADER.notifyOffset, u64(1n << 50n))],
      ['maxObjects huge', () => patch(path, HEADER.maxObjects, u32(2 ** 24))],
      ['maxObjects 0', () => patch(path, HEADER.maxObjects, u32(0))],
      ['maxClients past the limit', () => patch(path, HEADER.maxClients, u32(1000))],
      ['index slots', () => patch(path, HEADER.indexSlots, u32(3))],
      ['notify capacity not a power of two', () => patch(path, HEADER.notifyCapacity, u32(1000))],
      ['eviction policy', () => patch(path, HEADER.eviction, u32(7))],
      ['file truncated', () => truncateSync(path, pristine.length - 4096)],
      ['file truncated into the header', () => truncateSync(path, 200)],
      ['file grown', () => truncateSync(path, pristine.length + 4096)],
    ];
    for (const [what, corrupt] of cases) {
      writeFileSync(path, pristine, { mode: 0o600 });
      corrupt();
      const err = throwsCode(() => ObjectStore.open(name), 'ERR_BAD_SEGMENT', what);
      assert.match(err.message, /bad segment/i, what);
    }
    // The pristine bytes open fine: the failures above came from the corruption.
    writeFileSync(path, pristine, { mode: 0o600 });
    const ok = ObjectStore.open(name);
    assert.equal(ok.stats().objects, 2);
    ok.close();
  });

  test('a plain file under the store name is ERR_BAD_SEGMENT, not a store', (t) => {
    const name = uniqueName('plain');
    cleanupName(t, name);
    const path = ObjectStore.pathOf(name);
    for (const content of [Buffer.from('not a shmstore segment\n'.repeat(300)), Buffer.alloc(8192, 0xff), Buffer.alloc(448, 1)]) {
      writeFileSync(path, content);
      throwsCode(() => ObjectStore.open(name), 'ERR_BAD_SEGMENT', `${content.length} bytes`);
    }
    throwsCode(() => ObjectStore.create(name, { capacity: 4096 }), 'ERR_STORE_EXISTS', 'create does not overwrite it');
    assert.equal(statSync(path).size, 448, 'the file is untouched');
  });

  test('an empty or all-zero file (a store never initialised) is ERR_BAD_SEGMENT after a short wait', (t) => {
    const name = uniqueName('empty');
    cleanupName(t, name);
    writeFileSync(ObjectStore.pathOf(name), Buffer.alloc(0));
    throwsCode(() => ObjectStore.open(name), 'ERR_BAD_SEGMENT', 'empty file');
  });

  test('corrupted counters and entries give ERR_BAD_SEGMENT, never an out-of-bounds access (in a child)', { timeout: 30000 }, async (t) => {
    const { name, path, pristine } = closedStore(t);
    const objectsOffset = Number(pristine.readBigUInt64LE(HEADER.objectsOffset));
    // Each case: corrupt, then a child opens the store and runs one operation. A crash would
    // end the child with a signal; a StoreError comes back as its code.
    const cases: [string, () => void, string, Record<string, unknown>, string][] = [
      ['free-entry count past the table', () => patch(path, HEADER.entryFreeCount, u32(0xfffffff0)), 'put', { size: 10 }, 'ERR_BAD_SEGMENT'],
      ['extent count past the table', () => patch(path, HEADER.extentCount, u32(0x7fffffff)), 'put', { size: 10 }, 'ERR_BAD_SEGMENT'],
      ['object offset past the data region', () => patch(path, objectsOffset + 40, u64(1n << 40n)), 'getFirst', {}, 'ERR_BAD_SEGMENT'],
      ['object size past the data region', () => patch(path, objectsOffset + 24, u64(1n << 40n)), 'getFirst', {}, 'ERR_BAD_SEGMENT'],
    ];
    for (const [what, corrupt, op, args, code] of cases) {
      writeFileSync(path, pristine, { mode: 0o600 });
      corrupt();
      const agent = await Agent.start(null, name);
      try {
        if (op === 'getFirst') {
          // The id of entry 0 is still intact: ask for it by id.
          const hex = pristine.subarray(objectsOffset, objectsOffset + 20).toString('hex');
          await agent.callFails('get', { hex }, code as never);
        } else {
          await agent.callFails(op, { hex: ObjectId.random().toHex(), ...args }, code as never);
        }
        // The child is alive and the rest of its store answers.
        await agent.call('stats');
      } catch (err) {
        const exit = agent.handle.exitStatus;
        throw new Error(`${what}: ${(err as Error).message}; child exit ${JSON.stringify(exit)}`);
      } finally {
        await agent.kill();
      }
    }
  });

  test('random corruption of tables and counters never crashes (fuzz, in a child)', { timeout: 60000 }, async (t) => {
    const prefix = uniqueName('corrupt');
    const runs = 600;
    t.after(() => {
      for (let i = 0; i < runs; i++) unlinkQuietly(`${prefix}-${i}`);
    });
    const seed = Math.floor(Math.random() * 2 ** 31);
    const child = spawnChild(t, 'corrupt-fuzz', [prefix, String(seed), String(runs)]);
    const exit = await child.exited;
    const last = child.lines.filter((l) => l.startsWith('{"run"')).at(-1);
    assert.deepEqual(exit, { code: 0, signal: null }, `seed ${seed}: the child died; last input ${last}; ${child.stderr.slice(-2000)}`);
    const summary = JSON.parse(child.lines.find((l) => l.startsWith('{"done"'))!);
    assert.equal(summary.runs, runs);
    assert.deepEqual(summary.foreign, [], `seed ${seed}: non-StoreError failures`);
    assert.ok(summary.codes.ERR_BAD_SEGMENT > 0, 'some corruption was detected');
  });
});

describe('space, permissions and client limits', () => {
  test('a capacity the tmpfs cannot hold is ERR_NO_SPACE from the pre-check, leaving no file', (t) => {
    const fs = statfsSync('/dev/shm');
    const free = fs.bavail * fs.bsize;
    if (free >= 2 ** 45) {
      t.skip(`/dev/shm has ${free} bytes free`);
      return;
    }
    const name = uniqueName('huge');
    cleanupName(t, name);
    const err = throwsCode(() => ObjectStore.create(name, { capacity: 2 ** 45 }), 'ERR_NO_SPACE');
    assert.match(err.message, /not enough room/, 'the statvfs pre-check, not a half-made segment');
    assert.equal(existsSync(ObjectStore.pathOf(name)), false);
    // The name is usable right after.
    const s = ObjectStore.create(name, { capacity: 4096 });
    closeQuietly(s);
  });

  test('every documented code exists and StoreError is an Error', () => {
    for (const code of ['ERR_OBJECT_EXISTS', 'ERR_OBJECT_NOT_FOUND', 'ERR_OBJECT_NOT_SEALED', 'ERR_OBJECT_ALREADY_SEALED',
      'ERR_OBJECT_IN_USE', 'ERR_NOT_CREATOR', 'ERR_STORE_FULL', 'ERR_STORE_EXISTS', 'ERR_STORE_NOT_FOUND', 'ERR_STORE_CLOSED',
      'ERR_BAD_SEGMENT', 'ERR_INVALID_ARGUMENT', 'ERR_TIMEOUT', 'ERR_ABORTED', 'ERR_NO_SPACE', 'ERR_TOO_MANY_CLIENTS']) {
      assert.ok((STORE_ERROR_CODES as readonly string[]).includes(code), code);
    }
    const e = throwsCode(() => ObjectId.fromHex('zz'), INVALID);
    assert.ok(e instanceof Error);
    assert.equal(e.name, 'StoreError');
  });
});
