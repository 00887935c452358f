// Churn of freed and reused shared memory under --expose-gc.
//   argv: <storeName> <cycles>
// Thousands of put/get/delete cycles with sizes that make the allocator hand the same
// addresses out again and again, while views are released, kept, dropped for the GC, or kept
// as Float64Arrays over the same ArrayBuffer. Every live view must keep its exact bytes
// (objects are immutable; memory under a live view must never be reused), every released
// view must read as length 0, and at the end nothing may be left held.
// Prints one JSON line: { cycles, mismatches, notDetached, usedBytes, deleting, objects, holders }.
import { setImmediate as tick } from 'node:timers/promises';
import { StoreError } from '../../src/errors.js';
import { ObjectId } from '../../src/object-id.js';
import { ObjectStore, type StoredObject } from '../../src/store.js';

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

const store = ObjectStore.open(process.argv[2]);
const cycles = Number(process.argv[3]);
const sizes = [1, 64, 100, 4096, 8000, 0, 65, 1000];

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (seed + i * 31) & 255;
  return b;
}

interface Live {
  obj: StoredObject;
  seed: number;
  size: number;
  f64: Float64Array;
  sub: Buffer;
}

let mismatches = 0;
let notDetached = 0;
const live: Live[] = [];

function verify(l: Live): void {
  const want = pattern(l.size, l.seed);
  if (!l.obj.data.equals(want)) mismatches++;
  if (l.obj.metadata.readUInt32LE(0) !== l.seed) mismatches++;
  if (l.f64.length !== Math.floor(l.size / 8)) mismatches++;
  if (l.f64.length > 0 && !Buffer.from(l.f64.buffer, l.f64.byteOffset, l.f64.byteLength).equals(want.subarray(0, l.f64.byteLength))) mismatches++;
  if (l.size >= 3 && !l.sub.equals(want.subarray(1, 3))) mismatches++;
}

function retire(l: Live): void {
  verify(l);
  l.obj.release();
  if (l.obj.data.length !== 0 || l.obj.metadata.length !== 0 || l.f64.length !== 0 || l.sub.length !== 0) notDetached++;
}

async function put(id: ObjectId, data: Buffer, meta: Buffer): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      store.put(id, data, meta);
      return;
    } catch (err) {
      // Full of deleted objects whose dropped views the GC has not collected yet.
      if (!(err instanceof StoreError && err.code === 'ERR_STORE_FULL') || attempt > 200) throw err;
      gc!();
      await tick();
    }
  }
}

for (let i = 0; i < cycles; i++) {
  const size = sizes[i % sizes.length];
  const seed = i & 0xffff;
  const id = ObjectId.random();
  const meta = Buffer.alloc(8);
  meta.writeUInt32LE(seed, 0);
  await put(id, pattern(size, seed), meta);
  const obj = store.get(id)!;
  const l: Live = {
    obj,
    seed,
    size,
    f64: new Float64Array(obj.data.buffer, obj.data.byteOffset, Math.floor(size / 8)),
    sub: obj.data.subarray(1, 3),
  };
  verify(l);
  switch (i % 4) {
    case 0: // release, then delete: freed at once
      retire(l);
      store.delete(id);
      break;
    case 1: // delete while held, keep the views: freed when we release later
      store.delete(id);
      live.push(l);
      break;
    case 2: // delete while held, drop the views: freed when the GC collects them
      store.delete(id);
      break;
    default: // keep, not deleted: a second get of the same object shares its memory
      {
        const again = store.get(id)!;
        if (!again.data.equals(obj.data)) mismatches++;
        live.push(l);
        store.delete(id);
      }
  }
  if (live.length > 16) retire(live.shift()!);
  if (live.length > 0) verify(live[i % live.length]);
  if (i % 50 === 0) {
    gc();
    await tick();
  }
}
for (const l of live.splice(0)) retire(l);
// Everything was deleted: once the GC has released the dropped views, nothing is left.
let st = store.stats();
for (let round = 0; round < 200 && (st.deleting > 0 || st.usedBytes > 0); round++) {
  gc();
  await tick();
  await new Promise((r) => setTimeout(r, 5));
  st = store.stats();
}
const holders = store.list().reduce((n, o) => n + o.holders, 0);
process.stdout.write(
  `${JSON.stringify({ cycles, mismatches, notDetached, usedBytes: st.usedBytes, deleting: st.deleting, objects: st.objects, holders })}\n`,
);
store.close();
