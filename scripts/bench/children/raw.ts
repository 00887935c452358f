// Child entry: raw store operations on 64-byte objects in one process (the harness made the
// store). Ids are pre-generated. Per repeat and per line, N cycles are timed:
//   cycle       create(id, 64) + write 64 B + seal + get + release   (the N objects are then
//               deleted in bulk, untimed, so the store does not fill)
//   cycle+del   the same with delete(id) inside the loop
//   put         put(id, 64 B) + get + release + delete
//   copy        put(id, 64 B) + read(id, target) + delete: create, seal, get and release with
//               no view (put copies in, read copies out and releases)
// and one pass of each operation alone (create+write, seal, contains, get, release, delete)
// for the per-operation cost; N objects (and, for get, N views) are alive at once there.
//   node raw.js --config '{"store": NAME, "objects": N, "repeats": R}'
import { ObjectId, ObjectStore, type StoredObject } from '../../../src/index.js';
import { childMain, readConfig, lifeline, send } from '../common.js';

interface RawConfig {
  store: string;
  objects: number;
  repeats: number;
}

childMain(async () => {
  const cfg = readConfig<RawConfig>();
  lifeline();
  using store = ObjectStore.open(cfg.store);
  const n = cfg.objects;
  const ids = Array.from({ length: n }, () => ObjectId.random());
  const payload = Buffer.alloc(64, 0xab);
  let sink = 0;

  const cycle = () => {
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      const buf = store.create(id, 64);
      buf.set(payload);
      store.seal(id);
      const obj = store.get(id)!;
      sink += obj.data[0];
      obj.release();
    }
  };
  const deleteAll = () => {
    for (let i = 0; i < n; i++) store.delete(ids[i]);
  };
  const cycleDelete = () => {
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      const buf = store.create(id, 64);
      buf.set(payload);
      store.seal(id);
      const obj = store.get(id)!;
      sink += obj.data[0];
      obj.release();
      store.delete(id);
    }
  };
  const putCycle = () => {
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      store.put(id, payload);
      const obj = store.get(id)!;
      sink += obj.data[0];
      obj.release();
      store.delete(id);
    }
  };
  const target = Buffer.alloc(64);
  const copyCycle = () => {
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      store.put(id, payload);
      if (store.read(id, target) !== 64) throw new Error('read: wrong size');
      sink += target[0];
      store.delete(id);
    }
  };
  const time = (fn: () => void): number => {
    const t0 = process.hrtime.bigint();
    fn();
    return Number(process.hrtime.bigint() - t0) / 1e9;
  };

  // Warm-up: every path once.
  cycle();
  deleteAll();
  cycleDelete();
  putCycle();
  copyCycle();

  const lines: Record<string, number[]> = { cycle: [], cycleDelete: [], put: [], copy: [], bulkDelete: [] };
  const ops: Record<string, number[]> = { 'create+write': [], seal: [], contains: [], get: [], release: [], delete: [] };
  const held: (StoredObject | null)[] = new Array(n).fill(null);
  for (let r = 0; r < cfg.repeats; r++) {
    lines.cycle.push(n / time(cycle));
    lines.bulkDelete.push(n / time(deleteAll));
    lines.cycleDelete.push(n / time(cycleDelete));
    lines.put.push(n / time(putCycle));
    lines.copy.push(n / time(copyCycle));
    // Each operation alone, over all N objects.
    ops['create+write'].push(
      n / time(() => {
        for (let i = 0; i < n; i++) store.create(ids[i], 64).set(payload);
      }),
    );
    ops.seal.push(
      n / time(() => {
        for (let i = 0; i < n; i++) store.seal(ids[i]);
      }),
    );
    // contains: one native call, the lock and the table lookup, no view: the floor of a call.
    ops.contains.push(
      n / time(() => {
        for (let i = 0; i < n; i++) if (store.contains(ids[i])) sink += 1;
      }),
    );
    ops.get.push(
      n / time(() => {
        for (let i = 0; i < n; i++) held[i] = store.get(ids[i]);
      }),
    );
    ops.release.push(
      n / time(() => {
        for (let i = 0; i < n; i++) held[i]!.release();
      }),
    );
    ops.delete.push(n / time(deleteAll));
    held.fill(null);
  }
  send({ bench: 'result', role: 'raw', objects: n, perSecond: lines, opsPerSecond: ops, sink });
});
