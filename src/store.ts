// ObjectStore: the public wrapper of one store handle (one client slot of one segment).
import { ChangeWatcher, type PollOptions, type WaitOptions } from './change-watcher.js';
import { StoreError, invalidArgument } from './errors.js';
import { addon, type NativeStore } from './native.js';
import { ObjectId, describe, idBytes } from './object-id.js';
import * as check from './validate.js';

export type Eviction = 'lru' | 'none';

export interface StoreCreateOptions {
  /** Bytes of object data (and metadata) the store holds. */
  capacity: number;
  /** Objects at once, default 1024 (at most 2^24). */
  maxObjects?: number;
  /** Attached handles at once, default 64 (at most 128). */
  maxClients?: number;
  /** What create does when full: evict sealed unreferenced objects LRU first (default), or fail. */
  eviction?: Eviction;
  /** Permission bits of /dev/shm/<name>, default 0o600. */
  mode?: number;
  /** Seal/delete events kept for notifications(), a power of two, default 4096. */
  notificationCapacity?: number;
  /** Map every page now, as {@link StoreOpenOptions.prefault}. Default false. */
  prefault?: boolean;
}

export interface StoreOpenOptions {
  /**
   * Map every page of the segment into this process now (~0.2 s per GiB of store, and 2 MiB of
   * page tables per GiB), so that no read or write later stops for a page fault: otherwise a
   * process takes one per 4 KiB the first time it touches each page. Default false.
   */
  prefault?: boolean;
}

export interface GetOptions {
  /** 0 polls (default), -1 waits forever, else milliseconds. Blocks the thread: see getAsync. */
  timeoutMs?: number;
}

export interface CreateObjectOptions {
  /** While the store is full, wait this long for room (blocks the thread). Default 0. */
  timeoutMs?: number;
}

export interface ObjectInfo {
  id: ObjectId;
  size: number;
  metadataSize: number;
  state: 'created' | 'sealed' | 'deleting';
  holders: number;
}

export interface StoreStats {
  capacity: number;
  usedBytes: number;
  objects: number;
  sealed: number;
  /** Deleted objects whose memory waits for their last holder. */
  deleting: number;
  clients: number;
  evictions: number;
  evictedBytes: number;
  largestFree: number;
  freeExtents: number;
  maxObjects: number;
  maxClients: number;
  creates: number;
  seals: number;
  deletes: number;
  aborts: number;
  /** Times the lock was recovered from a dead holder. */
  repairs: number;
  reclaimedClients: number;
  notifications: number;
  eviction: Eviction;
}

export interface ClientInfo {
  slot: number;
  pid: number;
  attachedAt: Date;
  self: boolean;
}

export type StoreEvent =
  | { type: 'sealed' | 'deleted'; id: ObjectId }
  /** The reader fell a whole ring behind: `count` events were overwritten unread. */
  | { type: 'missed'; count: number };

const CREATE_KEYS = ['capacity', 'maxObjects', 'maxClients', 'eviction', 'mode', 'notificationCapacity', 'prefault'] as const;
const OPEN_KEYS = ['prefault'] as const;

const NO_METADATA = Buffer.alloc(0);

/** A sealed object this process holds: `data` and `metadata` are views of shared memory. */
export class StoredObject implements Disposable {
  readonly id: ObjectId;
  readonly data: Buffer;
  readonly metadata: Buffer;
  #store: ObjectStore | null;
  readonly #entry: number;
  readonly #generation: number;

  /** @internal */
  constructor(store: ObjectStore, id: ObjectId, whole: Buffer, dataSize: number, entry: number, generation: number) {
    this.id = id;
    // One view when there is no metadata: each subarray costs an allocation on a hot path.
    const hasMetadata = whole.length > dataSize;
    this.data = hasMetadata ? whole.subarray(0, dataSize) : whole;
    this.metadata = hasMetadata ? whole.subarray(dataSize) : NO_METADATA;
    this.#store = store;
    this.#entry = entry;
    this.#generation = generation;
  }

  /** Drops this process's reference; every view of the object in this process detaches. Idempotent. */
  release(): void {
    const store = this.#store;
    if (store === null) return;
    this.#store = null;
    if (!store.closed) store.releaseToken(this.#entry, this.#generation);
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

export class ObjectStore implements Disposable {
  readonly name: string;
  readonly #native: NativeStore;
  // Results of get/seal that do not fit a return value; over an ArrayBuffer so it never moves.
  readonly #out = new Float64Array(new ArrayBuffer(32));
  readonly #watcher: ChangeWatcher;
  #closed = false;

  private constructor(name: string, open: (out: Float64Array) => NativeStore, prefault: boolean, created: boolean) {
    this.name = name;
    this.#native = open(this.#out);
    if (prefault) {
      try {
        this.#native.prefault();
      } catch (err) {
        this.#native.close(); // give the client slot back
        if (created) {
          try {
            addon.unlink(name); // and leave no store behind, as a failed create does
          } catch {
            // already gone
          }
        }
        throw err;
      }
    }
    this.#watcher = new ChangeWatcher(this.#native);
  }

  /** Creates the segment /dev/shm/<name> (ERR_STORE_EXISTS if it is there) and attaches to it. */
  static create(name: string, options: StoreCreateOptions): ObjectStore {
    check.name(name);
    if (options === undefined) throw invalidArgument('ObjectStore.create(name, { capacity }) needs options');
    const o = check.options<StoreCreateOptions>(options, CREATE_KEYS, 'store options');
    const capacity = check.size(o.capacity, 'capacity');
    const maxObjects = check.intInRange(o.maxObjects ?? 1024, 1, addon.limits.maxObjects, 'maxObjects');
    const maxClients = check.intInRange(o.maxClients ?? 64, 1, addon.limits.maxClients, 'maxClients');
    const mode = check.intInRange(o.mode ?? 0o600, 0, 0o777, 'mode');
    const notify = check.intInRange(o.notificationCapacity ?? 4096, 1, 1 << 20, 'notificationCapacity');
    const eviction = o.eviction ?? 'lru';
    if (eviction !== 'lru' && eviction !== 'none') {
      throw invalidArgument(`eviction must be 'lru' or 'none', got ${describe(eviction)}`);
    }
    const prefault = check.boolean(o.prefault ?? false, 'prefault');
    return new ObjectStore(
      name,
      (out) => new addon.NativeStore('create', name, capacity, maxObjects, maxClients, eviction === 'lru' ? 1 : 0, mode, notify, out),
      prefault,
      true,
    );
  }

  /** Attaches to an existing store (ERR_STORE_NOT_FOUND, ERR_BAD_SEGMENT, ERR_TOO_MANY_CLIENTS). */
  static open(name: string, options?: StoreOpenOptions): ObjectStore {
    check.name(name);
    const o = check.options<StoreOpenOptions>(options, OPEN_KEYS, 'open options');
    const prefault = check.boolean(o.prefault ?? false, 'prefault');
    return new ObjectStore(name, (out) => new addon.NativeStore('open', name, out), prefault, false);
  }

  /** Removes the name, like shm_unlink: attached processes keep working on their mapping. */
  static unlink(name: string): void {
    check.name(name);
    addon.unlink(name);
  }

  /** The file that backs the store. */
  static pathOf(name: string): string {
    check.name(name);
    return addon.pathOf(name);
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Allocates an object and returns its writable data; seal() publishes it, abort() drops it. */
  create(id: ObjectId, size: number, metadata?: Uint8Array | null, options?: CreateObjectOptions): Buffer {
    const idb = idBytes(id);
    check.size(size, 'size');
    const meta = metadata == null ? null : check.bytes(metadata, 'metadata');
    const o = check.options<CreateObjectOptions>(options, ['timeoutMs'], 'create options');
    return this.#native.create(idb, size, meta, check.timeout(o.timeoutMs, 0));
  }

  /** create() that waits for room without blocking the thread (ERR_STORE_FULL at the timeout). */
  async createAsync(
    id: ObjectId,
    size: number,
    options?: { metadata?: Uint8Array | null; timeoutMs?: number; signal?: AbortSignal },
  ): Promise<Buffer> {
    const idb = idBytes(id);
    check.size(size, 'size');
    const o = check.options<{ metadata: Uint8Array | null; timeoutMs: number; signal: AbortSignal }>(
      options, ['metadata', 'timeoutMs', 'signal'], 'createAsync options');
    const meta = o.metadata == null ? null : check.bytes(o.metadata, 'metadata');
    const timeoutMs = check.timeout(o.timeoutMs, -1);
    const attempt = (): Buffer | undefined => {
      try {
        return this.#native.create(idb, size, meta, 0);
      } catch (err) {
        if (err instanceof StoreError && err.code === 'ERR_STORE_FULL') return undefined;
        throw err;
      }
    };
    return this.#watcher.until(attempt, { timeoutMs, signal: check.signal(o.signal) }, () =>
      this.#native.create(idb, size, meta, 0),
    );
  }

  /**
   * Makes the object immutable and visible. With `keepReference` this process goes on holding
   * it (it cannot be evicted or freed) until `release(id)`.
   */
  seal(id: ObjectId, options?: { keepReference?: boolean }): void {
    const o = check.options<{ keepReference: boolean }>(options, ['keepReference'], 'seal options');
    this.#native.seal(idBytes(id), o.keepReference === true);
  }

  abort(id: ObjectId): void {
    this.#native.abort(idBytes(id));
  }

  /**
   * create + copy + seal, in one call (no writable view is made). `data` may be a list of
   * pieces, stored one after another (e.g. an Arrow stream's pieces, never assembled first).
   */
  put(id: ObjectId, data: Uint8Array | readonly Uint8Array[], metadata?: Uint8Array | null, options?: { keepReference?: boolean }): void {
    this.#put(id, data, metadata, options, false);
  }

  /**
   * put() that returns false instead of throwing ERR_STORE_FULL when there is no room now
   * (true once stored): for callers to whom a full store is routine, such as a producer that
   * then waits for its consumers, without the cost of an error per try.
   */
  tryPut(id: ObjectId, data: Uint8Array | readonly Uint8Array[], metadata?: Uint8Array | null, options?: { keepReference?: boolean }): boolean {
    return this.#put(id, data, metadata, options, true);
  }

  #put(id: ObjectId, data: Uint8Array | readonly Uint8Array[], metadata: Uint8Array | null | undefined, options: { keepReference?: boolean } | undefined, ifRoom: boolean): boolean {
    const idb = idBytes(id);
    // A dense copy of a list, every piece checked: the addon then reads it without running a
    // getter (of a hole, say) that could detach a piece it already holds a pointer into.
    const pieces = Array.isArray(data) ? Array.from(data, (piece: unknown, i) => check.bytes(piece, `data[${i}]`)) : check.bytes(data, 'data');
    const meta = metadata == null ? null : check.bytes(metadata, 'metadata');
    const o = check.options<{ keepReference: boolean }>(options, ['keepReference'], 'put options');
    return this.#native.put(idb, pieces, meta, o.keepReference === true, ifRoom);
  }

  /**
   * Copies the sealed object's data into `target` if it fits, and returns the data's size (so a
   * result larger than `target.length` means the data was not copied), or null if the object
   * is not sealed by the timeout (as in get); in those two cases `target`'s bytes are
   * unspecified. For small objects, where a shared view costs more than a copy: with a target
   * of at most 16 KiB it copies under the store's lock (or, in a store with eviction 'none',
   * usually without any), holding nothing; with a larger one it holds the object while copying.
   */
  read(id: ObjectId, target: Uint8Array, options?: GetOptions): number | null {
    const idb = idBytes(id);
    check.bytes(target, 'target');
    const o = check.options<GetOptions>(options, ['timeoutMs'], 'read options');
    return this.#native.read(idb, check.timeout(o.timeoutMs, 0), target, false);
  }

  /**
   * @internal read() that also copies the metadata, right after the data, when both fit.
   * Returns [dataSize, metadataSize], or null if the object is not sealed.
   */
  readWithMetadata(id: ObjectId, target: Uint8Array): readonly [number, number] | null {
    if (this.#native.read(idBytes(id), 0, target, true) === null) return null;
    return [this.#out[0], this.#out[1]];
  }

  /** The sealed object, or null if it is not sealed by the timeout (0 polls; -1 forever, blocking). */
  get(id: ObjectId, options?: GetOptions): StoredObject | null {
    const idb = idBytes(id);
    const o = check.options<GetOptions>(options, ['timeoutMs'], 'get options');
    return this.#wrap(id, this.#native.get(idb, check.timeout(o.timeoutMs, 0)));
  }

  /** Waits for the object without blocking the event loop; null at the timeout (default -1: forever). */
  async getAsync(id: ObjectId, options?: WaitOptions): Promise<StoredObject | null> {
    const idb = idBytes(id);
    const o = check.options<WaitOptions>(options, ['timeoutMs', 'signal'], 'getAsync options');
    const opts = { timeoutMs: check.timeout(o.timeoutMs, -1), signal: check.signal(o.signal) };
    const poll = () => this.#wrap(id, this.#native.get(idb, 0)) ?? undefined;
    return this.#watcher.until<StoredObject | null>(poll, opts, () => null);
  }

  /**
   * Plasma's Wait: resolves with the ids that are sealed, as soon as `numReturns` of them are
   * (default: all), or at the timeout with those that are by then (default -1: forever).
   */
  async wait(ids: readonly ObjectId[], options?: WaitOptions & { numReturns?: number }): Promise<ObjectId[]> {
    if (!Array.isArray(ids)) throw invalidArgument(`ids must be an array of ObjectId, got ${describe(ids)}`);
    // Array.from, not map: a hole in a sparse array is an invalid id, not a skipped one.
    const list = Array.from(ids, (id: ObjectId) => ({ id, bytes: idBytes(id) }));
    const o = check.options<WaitOptions & { numReturns: number }>(options, ['timeoutMs', 'signal', 'numReturns'], 'wait options');
    const numReturns = check.intInRange(o.numReturns ?? list.length, 0, list.length, 'numReturns');
    const ready = () => list.filter((x) => this.#native.contains(x.bytes)).map((x) => x.id);
    const poll = () => {
      const r = ready();
      return r.length >= numReturns ? r : undefined;
    };
    return this.#watcher.until(poll, { timeoutMs: check.timeout(o.timeoutMs, -1), signal: check.signal(o.signal) }, ready);
  }

  /**
   * Seal and delete events from the first iteration on (Plasma's Subscribe). A reader that falls more than the
   * ring's capacity behind gets one { type: 'missed', count } and goes on.
   */
  async *notifications(options?: { signal?: AbortSignal }): AsyncGenerator<StoreEvent, void, undefined> {
    const o = check.options<{ signal: AbortSignal }>(options, ['signal'], 'notifications options');
    const signal = check.signal(o.signal);
    let next = this.#native.notifyHead();
    for (;;) {
      const batch = await this.#watcher.until(
        () => {
          const r = this.#native.readEvents(next, 1024);
          return r.events.length > 0 || r.missed > 0 ? r : undefined;
        },
        { timeoutMs: -1, signal },
        () => ({ events: [], missed: 0 }),
      );
      if (batch.missed > 0) {
        next += batch.missed;
        yield { type: 'missed', count: batch.missed };
      }
      for (const ev of batch.events) {
        next = ev.seq + 1;
        yield { type: ev.type, id: ObjectId.fromBytes(ev.id) };
      }
    }
  }

  /** Evicts sealed, unreferenced objects (LRU first) until `bytes` are freed; returns bytes freed. */
  evict(bytes: number): number {
    return this.#native.evict(check.size(bytes, 'bytes'));
  }

  /** Drops every reference this process holds on id and detaches their views. */
  release(id: ObjectId): void {
    this.#native.releaseId(idBytes(id));
  }

  /** True when id is sealed (an unsealed object is not contained, as in Plasma). */
  contains(id: ObjectId): boolean {
    return this.#native.contains(idBytes(id));
  }

  /**
   * Deletes a sealed object: it disappears at once, and its memory is freed when the last
   * holder releases it. Returns true if it was freed now.
   */
  delete(id: ObjectId): boolean {
    return this.#native.delete(idBytes(id));
  }

  list(): ObjectInfo[] {
    return this.#native.list().map((o) => ({
      id: ObjectId.fromBytes(o.id),
      size: o.size,
      metadataSize: o.metadataSize,
      state: o.state,
      holders: o.holders,
    }));
  }

  /** Usage and counters; also reclaims the slots of dead clients. */
  stats(): StoreStats {
    return this.#native.stats();
  }

  clients(): ClientInfo[] {
    return this.#native.clients().map((c) => ({ ...c, attachedAt: new Date(c.attachedAt) }));
  }

  /**
   * Per-client cursors: small named counters that vanish when their client dies or closes
   * (streams keep producer heads and subscriber positions in them). Storing wakes waiters
   * unless `notify` is false.
   */
  setCursor(name: string, value: number, options?: { notify?: boolean }): void {
    const notify = check.options<{ notify: boolean }>(options, ['notify'], 'setCursor options').notify ?? true;
    this.#native.setCursor(check.name(name, 'cursor name'), check.size(value, 'cursor value'), notify !== false);
  }

  clearCursor(name: string): void {
    this.#native.clearCursor(check.name(name, 'cursor name'));
  }

  /** The values of cursor `name` of every attached client. */
  cursorValues(name: string): number[] {
    return this.#native.cursorValues(check.name(name, 'cursor name'));
  }

  /**
   * Resolves with poll()'s first non-undefined value, polling again on every change of the
   * store (seal, delete, release, cursor) and every `pollEveryMs`; onTimeout() gives the value
   * at the timeout.
   */
  async waitFor<T>(poll: () => T | undefined, options: PollOptions, onTimeout: () => T): Promise<T> {
    if (typeof poll !== 'function') throw invalidArgument(`poll must be a function, got ${describe(poll)}`);
    if (typeof onTimeout !== 'function') throw invalidArgument(`onTimeout must be a function, got ${describe(onTimeout)}`);
    const o = check.options<PollOptions>(options, ['timeoutMs', 'signal', 'pollEveryMs'], 'waitFor options');
    const pollEveryMs = o.pollEveryMs === undefined ? undefined : check.size(o.pollEveryMs, 'pollEveryMs');
    return this.#watcher.until(poll, { timeoutMs: check.timeout(o.timeoutMs, -1), signal: check.signal(o.signal), pollEveryMs }, onTimeout);
  }

  /** Detaches: every view this process holds goes, pending waits reject with ERR_STORE_CLOSED. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#native.close();
    this.#watcher.cancelAll(new StoreError('ERR_STORE_CLOSED', `store '${this.name}' was closed`));
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal */
  releaseToken(entry: number, generation: number): void {
    this.#native.release(entry, generation);
  }

  /** @internal Test hook (SHMSTORE_TEST_HOOKS=1): parks inside the store lock until killed. */
  parkInLockForTest(): never {
    return this.#native.parkInLockForTest();
  }

  #wrap(id: ObjectId, whole: Buffer | null): StoredObject | null {
    if (whole === null) return null;
    const out = this.#out;
    return new StoredObject(this, id, whole, out[0], out[2], out[3]);
  }
}
