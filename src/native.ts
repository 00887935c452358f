// Loads the addon (node-gyp's build, then cmake-js's) and describes its surface. Nothing
// outside src/store.ts and src/object-id.ts talks to it.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { STORE_ERROR_CODES, StoreError, type StoreErrorCode } from './errors.js';
import type { StoreStats } from './store.js';

export interface NativeObjectInfo {
  id: Buffer;
  size: number;
  metadataSize: number;
  state: 'created' | 'sealed' | 'deleting';
  holders: number;
  creator: number;
}

export interface NativeClientInfo {
  slot: number;
  pid: number;
  attachedAt: number;
  self: boolean;
}


export interface NativeEvent {
  seq: number;
  type: 'sealed' | 'deleted';
  id: Buffer;
}

export interface NativeStore {
  close(): void;
  create(id: Uint8Array, size: number, metadata: Uint8Array | null, timeoutMs: number): Buffer;
  seal(id: Uint8Array, keepReference?: boolean): void;
  abort(id: Uint8Array): void;
  /** Fills `out` with [dataSize, metadataSize, entry, generation] when it returns a Buffer. */
  get(id: Uint8Array, timeoutMs: number): Buffer | null;
  /** ifRoom: false when the store is full instead of ERR_STORE_FULL; else true. */
  put(id: Uint8Array, data: Uint8Array | readonly Uint8Array[], metadata: Uint8Array | null, keepReference: boolean, ifRoom: boolean): boolean;
  /** Fills `out` with [dataSize, metadataSize] when it returns a number. */
  read(id: Uint8Array, timeoutMs: number, target: Uint8Array, withMetadata: boolean): number | null;
  release(entry: number, generation: number): boolean;
  releaseId(id: Uint8Array): void;
  contains(id: Uint8Array): boolean;
  delete(id: Uint8Array): boolean;
  evict(bytes: number): number;
  list(): NativeObjectInfo[];
  clients(): NativeClientInfo[];
  stats(): StoreStats;
  setCursor(name: string, value: number, notify?: boolean): void;
  clearCursor(name: string): void;
  cursorValues(name: string): number[];
  notifyHead(): number;
  readEvents(from: number, max: number): { events: NativeEvent[]; missed: number };
  changeSeq(): number;
  prefault(): void;
  watch(onChange: (seq: number) => void): void;
  unwatch(): void;
  startWaiting(seenSeq: number): void;
  parkInLockForTest(): never;
}

export interface NativeAddon {
  NativeStore: {
    new (kind: 'create', name: string, capacity: number, maxObjects: number, maxClients: number,
      eviction: number, mode: number, notifyCapacity: number, out: Float64Array): NativeStore;
    new (kind: 'open', name: string, out: Float64Array): NativeStore;
  };
  setErrorFactory(factory: (code: string, message: string) => Error): void;
  unlink(name: string): void;
  pathOf(name: string): string;
  limits: {
    idSize: number;
    alignment: number;
    maxClients: number;
    maxObjects: number;
    cursorsPerClient: number;
    layoutVersion: number;
    /** put and read copy objects (read: into targets) up to this size under the lock. */
    copyInLockMax: number;
  };
}

function load(): NativeAddon {
  const require = createRequire(import.meta.url);
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const candidates = [
    process.env.SHMSTORE_ADDON,
    `${root}build/Release/shmstore.node`, // npm install (node-gyp)
    `${root}build-cmake/Release/shmstore.node`, // npm run build:native (cmake-js)
  ].filter((p): p is string => typeof p === 'string' && p.length > 0);
  const failures: string[] = [];
  for (const path of candidates) {
    try {
      return require(path) as NativeAddon;
    } catch (err) {
      failures.push(`  ${path}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  if (process.platform !== 'linux') {
    throw new Error(`shmstore runs on Linux only (POSIX shm, futex, OFD locks); this is ${process.platform}`);
  }
  throw new Error(
    `shmstore: could not load the native addon. Tried:\n${failures.join('\n')}\n` +
      'Build it with `npm install` (node-gyp) or `npm run build:native` (cmake-js).',
  );
}

const known = new Set<string>(STORE_ERROR_CODES);

export const addon: NativeAddon = load();
addon.setErrorFactory((code, message) =>
  new StoreError(known.has(code) ? (code as StoreErrorCode) : 'ERR_SYSTEM', message),
);
