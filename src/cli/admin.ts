// `shmstore ls | stat | rm`: look after stores in the shm directory.
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { StoreError } from '../errors.js';
import { ObjectStore, type StoreStats } from '../store.js';

const MAGIC = Buffer.from('SSHMSTR1', 'latin1');

export interface StoreListing {
  name: string;
  bytes: number;
  mode: string;
}

/** Files in the shm directory that start with a shmstore magic. */
export function listStores(): StoreListing[] {
  const dir = dirname(ObjectStore.pathOf('x'));
  const out: StoreListing[] = [];
  for (const name of readdirSync(dir)) {
    const path = `${dir}/${name}`;
    try {
      const st = statSync(path);
      if (!st.isFile() || st.size < MAGIC.length) continue;
      const fd = openSync(path, 'r');
      const head = Buffer.alloc(MAGIC.length);
      try {
        readSync(fd, head, 0, head.length, 0);
      } finally {
        closeSync(fd);
      }
      if (head.equals(MAGIC)) out.push({ name, bytes: st.size, mode: (st.mode & 0o777).toString(8).padStart(4, '0') });
    } catch {
      // not readable by us: not ours to list
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export interface StoreStatus {
  name: string;
  stats: StoreStats;
  clients: { slot: number; pid: number; attachedAt: string }[];
  objects: number;
}

export function storeStatus(name: string): StoreStatus {
  using store = ObjectStore.open(name);
  const stats = store.stats();
  const clients = store
    .clients()
    .filter((c) => !c.self)
    .map((c) => ({ slot: c.slot, pid: c.pid, attachedAt: c.attachedAt.toISOString() }));
  return { name, stats: { ...stats, clients: stats.clients - 1 }, clients, objects: stats.objects };
}

export function removeStore(name: string): void {
  try {
    ObjectStore.unlink(name);
  } catch (err) {
    if (err instanceof StoreError && err.code === 'ERR_STORE_NOT_FOUND') throw new StoreError(err.code, `no store named '${name}'`);
    throw err;
  }
}
