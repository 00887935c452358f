// Randomly corrupted segments must give errors, never a crash (run in a child, so that a
// SIGSEGV fails the test instead of killing the test runner).
//   argv: <namePrefix> <seed> <runs>
// Each run: make a store with some objects, close it, overwrite a few random bytes of its
// tables or of the mutable part of its header, open it and run every operation; each must
// succeed or throw a StoreError. Before each run it prints {"run":..,"writes":[[offset,byte],..]}
// so that a crash names its input; at the end {"done":true,"runs":..,"foreign":[..],"codes":{..}}.
// Not corrupted: the robust mutex (garbage there can make pthread_mutex_lock wait forever,
// which no bounds check can prevent).
import { readFileSync, openSync, writeSync, closeSync } from 'node:fs';
import { StoreError } from '../../src/errors.js';
import { ObjectId } from '../../src/object-id.js';
import { ObjectStore } from '../../src/store.js';

const [prefix, seedArg, runsArg] = process.argv.slice(2);
let seed = Number(seedArg) >>> 0;
const runs = Number(runsArg);

function rand(): number {
  // mulberry32
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n: number) => Math.floor(rand() * n);

const foreign: string[] = [];
const codes: Record<string, number> = {};

function attempt(what: string, fn: () => unknown): unknown {
  try {
    const r = fn();
    codes.ok = (codes.ok ?? 0) + 1;
    return r;
  } catch (err) {
    if (err instanceof StoreError) {
      codes[err.code] = (codes[err.code] ?? 0) + 1;
    } else {
      foreign.push(`${what}: ${(err as Error)?.stack ?? String(err)}`);
    }
    return undefined;
  }
}

for (let run = 0; run < runs; run++) {
  const name = `${prefix}-${run}`;
  const ids = Array.from({ length: 6 }, () => ObjectId.random());
  const s = ObjectStore.create(name, { capacity: 16384, maxObjects: 8, maxClients: 4, notificationCapacity: 8 });
  s.put(ids[0], Buffer.alloc(100, 1), Buffer.from('m'));
  s.put(ids[1], Buffer.alloc(1000, 2));
  s.put(ids[2], Buffer.alloc(10, 3));
  s.delete(ids[1]);
  s.setCursor('c', 5);
  s.close();

  const path = ObjectStore.pathOf(name);
  const file = readFileSync(path);
  const off = (at: number) => Number(file.readBigUInt64LE(at));
  // Mutable header fields (used_bytes .. end of header), client slots, object table, index,
  // free-entry stack, extents and the notification ring: everything open() cannot validate.
  const regions: [number, number][] = [
    [192, 448], // change_seq, waiters, counters (the mutex at 128..168 is left alone)
    [off(48), off(96)], // clients .. data
  ];
  const writes: [number, number][] = [];
  const n = 1 + int(6);
  for (let i = 0; i < n; i++) {
    const [lo, hi] = regions[int(regions.length)];
    const at = lo + int(hi - lo);
    const kind = int(4);
    const value = kind === 0 ? 0xff : kind === 1 ? 0 : kind === 2 ? 0x80 : int(256);
    writes.push([at, value]);
  }
  // Sometimes a whole 8-byte field: a huge count or offset.
  if (int(2) === 0) {
    const [lo, hi] = regions[int(regions.length)];
    const at = (lo + int(hi - lo)) & ~7;
    for (let k = 0; k < 8; k++) writes.push([at + k, k === 7 ? 0x7f : 0xff]);
  }
  process.stdout.write(`${JSON.stringify({ run, writes })}\n`);
  const fd = openSync(path, 'r+');
  for (const [at, v] of writes) writeSync(fd, Buffer.from([v]), 0, 1, at);
  closeSync(fd);

  const store = attempt('open', () => ObjectStore.open(name)) as ObjectStore | undefined;
  if (store !== undefined) {
    attempt('stats', () => store.stats());
    const listed = (attempt('list', () => store.list()) as { id: ObjectId }[] | undefined) ?? [];
    attempt('clients', () => store.clients());
    for (const id of [...ids, ...listed.map((o) => o.id)]) {
      attempt('contains', () => store.contains(id));
      const obj = attempt('get', () => store.get(id)) as { data: Buffer; metadata: Buffer; release(): void } | null | undefined;
      if (obj) {
        // Touch every byte: a view past the mapping would fault here.
        let sum = 0;
        for (const b of obj.data) sum += b;
        for (const b of obj.metadata) sum += b;
        attempt('release', () => obj.release());
        void sum;
      }
    }
    for (let k = 0; k < 4; k++) {
      const id = ObjectId.random();
      const buf = attempt('create', () => store.create(id, [1, 64, 500, 3000][k])) as Buffer | undefined;
      if (buf) {
        buf.fill(7);
        attempt('seal', () => store.seal(id));
      }
    }
    attempt('put', () => store.put(ids[3], Buffer.alloc(200, 9)));
    attempt('delete', () => store.delete(ids[0]));
    attempt('delete', () => store.delete(ids[2]));
    attempt('abort', () => store.abort(ids[4]));
    attempt('evict', () => store.evict(4096));
    attempt('cursorValues', () => store.cursorValues('c'));
    attempt('setCursor', () => store.setCursor('d', 1));
    attempt('stats', () => store.stats());
    attempt('close', () => store.close());
  }
  ObjectStore.unlink(name);
}
process.stdout.write(`${JSON.stringify({ done: true, runs, foreign, codes })}\n`);
