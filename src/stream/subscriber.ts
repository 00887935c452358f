// Subscriber: reads a stream in order, every message once, as a zero-copy view. Messages the
// store evicted before we got to them are reported exactly (lostBefore), never waited for.
import type { Table } from 'apache-arrow';
import { TableDecoder } from '../arrow/index.js';
import { StoreError } from '../errors.js';
import { addon } from '../native.js';
import type { ObjectId } from '../object-id.js';
import type { ObjectStore, StoredObject } from '../store.js';
import * as check from '../validate.js';
import { Content, END_SEQ, MessageKind, cursorNames, decodeMeta, streamIds } from './protocol.js';

export interface SubscriberOptions {
  /** First seq to read (default 0). */
  fromSeq?: number;
  /** ERR_TIMEOUT when no message arrives for this long; -1 (default) waits forever. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** A run of consecutive seqs the subscriber never saw: [from, to). */
export interface LostRange {
  from: number;
  to: number;
}

/** One message; its data is valid until release() or the subscriber's next message. */
export class StreamMessage implements Disposable {
  readonly seq: number;
  /** Seqs evicted between the previous message and this one. */
  readonly lostBefore: LostRange | null;
  readonly #obj: StoredObject | null;
  #data: Buffer;
  readonly #content: Content;
  readonly #decoder: TableDecoder;

  /** @internal `obj` is null for a small message copied out of the store. */
  constructor(seq: number, data: Buffer, obj: StoredObject | null, content: Content, lostBefore: LostRange | null, decoder: TableDecoder) {
    this.seq = seq;
    this.#data = data;
    this.#obj = obj;
    this.#content = content;
    this.lostBefore = lostBefore;
    this.#decoder = decoder;
  }

  /**
   * The message's bytes: a view of shared memory, or (messages up to 16 KiB) a private copy,
   * which costs less than a view. Empty after release().
   */
  get data(): Buffer {
    return this.#data;
  }

  /** True when the publisher sent an Arrow table or record batch. */
  get isArrow(): boolean {
    return this.#content === Content.Arrow;
  }

  /** The Arrow table, its columns views of data() (no copy; schema parsed once per stream). */
  table(): Table {
    return this.#decoder.decode(this.#data);
  }

  release(): void {
    this.#obj?.release();
    this.#data = EMPTY;
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

const EMPTY = Buffer.alloc(0);
// Messages up to this size are copied out (with their metadata) instead of viewed in place:
// the addon's in-lock (usually lock-free) read path, which a larger target would leave.
const COPY_LIMIT = addon.limits.copyInLockMax;
// The copies are carved from slabs of this size, 8-byte aligned (Arrow columns are typed
// arrays over them): one allocation per dozens of messages. A slab lives while any message
// carved from it is referenced.
const SLAB_SIZE = 256 << 10;

// A lossless subscriber stores its cursor (which may wake the producer) after this many
// messages or bytes, whichever comes first (and at most an eighth of the store's objects or
// capacity, so that a full store frees up well before a slow reader catches up), and before
// it waits.
const CURSOR_EVERY = 256;
const CURSOR_BYTES = 1 << 20;
const CURSOR_STORE_SHARE = 8;

export class Subscriber implements AsyncIterable<StreamMessage>, AsyncIterator<StreamMessage>, Disposable {
  readonly stream: string;
  readonly #store: ObjectStore;
  readonly #id: (seq: number) => ObjectId;
  readonly #cursors: ReturnType<typeof cursorNames>;
  readonly #timeoutMs: number;
  readonly #signal: AbortSignal | undefined;
  readonly #decoder = new TableDecoder();
  readonly #lost: LostRange[] = [];
  #next: number;
  #current: StreamMessage | null = null;
  #lossless = false;
  #storedCursor: number;
  #unstoredBytes = 0; // of messages read since the last cursor store
  #done = false;
  #lostCount = 0;
  #received = 0;
  #count: number | null = null;
  readonly #cursorEvery: number;
  readonly #cursorBytes: number;
  #slab = EMPTY; // allocated at the first small message
  #slabUsed = 0;
  #lastWasLarge = false;

  constructor(store: ObjectStore, stream: string, options?: SubscriberOptions) {
    const o = check.options<SubscriberOptions>(options, ['fromSeq', 'timeoutMs', 'signal'], 'Subscriber options');
    this.#store = store;
    this.stream = check.name(stream, 'stream name');
    this.#id = streamIds(stream);
    this.#cursors = cursorNames(stream);
    this.#next = o.fromSeq === undefined ? 0 : check.size(o.fromSeq, 'fromSeq');
    this.#timeoutMs = check.timeout(o.timeoutMs, -1);
    this.#signal = check.signal(o.signal);
    const { maxObjects, capacity } = store.stats();
    this.#cursorEvery = Math.max(1, Math.min(CURSOR_EVERY, Math.floor(maxObjects / CURSOR_STORE_SHARE)));
    this.#cursorBytes = Math.min(CURSOR_BYTES, Math.floor(capacity / CURSOR_STORE_SHARE));
    // Registering holds back a lossless producer from the first message on.
    this.#storedCursor = this.#next;
    store.setCursor(this.#cursors.sub, this.#next);
  }

  /** The seq the next message will have at the earliest. */
  get nextSeq(): number {
    return this.#next;
  }

  get received(): number {
    return this.#received;
  }

  get lostCount(): number {
    return this.#lostCount;
  }

  /** Every run of seqs lost so far. */
  get lost(): readonly LostRange[] {
    return this.#lost;
  }

  [Symbol.asyncIterator](): AsyncIterator<StreamMessage> {
    return this;
  }

  async next(): Promise<IteratorResult<StreamMessage>> {
    this.#current?.release();
    this.#current = null;
    if (this.#done) return { done: true, value: undefined };
    let msg = this.#poll();
    if (msg === undefined) {
      this.#storeCursor();
      msg = await this.#store.waitFor(() => this.#poll(), { timeoutMs: this.#timeoutMs, signal: this.#signal }, () => {
        throw new StoreError('ERR_TIMEOUT', `no message on '${this.stream}' at seq ${this.#next} for ${this.#timeoutMs} ms`);
      });
    }
    if (msg === null) {
      this.close();
      return { done: true, value: undefined };
    }
    this.#current = msg;
    return { done: false, value: msg };
  }

  async return(): Promise<IteratorResult<StreamMessage>> {
    this.close();
    return { done: true, value: undefined };
  }

  /** Releases the current message and leaves the stream (a lossless producer stops waiting for us). */
  close(): void {
    this.#current?.release();
    this.#current = null;
    if (this.#done) return;
    this.#done = true;
    if (!this.#store.closed) this.#store.clearCursor(this.#cursors.sub);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The next message; null at the end of the stream; undefined while it is not there yet. */
  #poll(): StreamMessage | null | undefined {
    let lostFrom = -1; // first seq lost since the previous message, if any
    for (;;) {
      const seq = this.#next;
      if (this.#count !== null && seq >= this.#count) return null;
      let got = this.#fetch(seq);
      let count: number | null = null;
      let head = 0;
      if (got === null) {
        // Missing. Read how far the producer got, then look again: a message below that mark
        // was sealed before we looked the second time, so if it is still missing it was
        // evicted (reading the mark first would misreport one sealed in between as lost).
        count = this.#endCount();
        head = Math.max(count ?? 0, ...this.#store.cursorValues(this.#cursors.head));
        got = this.#fetch(seq);
      }
      if (got !== null) {
        const meta = decodeMeta(got.metadata);
        if (meta === null || meta.kind !== MessageKind.Data) {
          got.obj?.release();
          throw new StoreError('ERR_BAD_SEGMENT', `object at seq ${seq} of '${this.stream}' is not a stream message`);
        }
        this.#lossless = meta.lossless;
        this.#next = seq + 1;
        this.#received += 1;
        this.#unstoredBytes += got.data.byteLength;
        if (this.#lossless && (this.#next - this.#storedCursor >= this.#cursorEvery || this.#unstoredBytes >= this.#cursorBytes)) {
          this.#storeCursor(seq);
        }
        const lostBefore = lostFrom < 0 ? null : { from: lostFrom, to: seq };
        return new StreamMessage(seq, got.data, got.obj, meta.content, lostBefore, this.#decoder);
      }
      if (seq >= head) return count === null ? undefined : null;
      let to = seq + 1;
      while (to < head && !this.#store.contains(this.#id(to))) to++;
      this.#lost.push({ from: seq, to });
      this.#lostCount += to - seq;
      if (lostFrom < 0) lostFrom = seq;
      this.#next = to;
    }
  }

  /**
   * Message seq: a small one copied out (a private Buffer, the object not held), a large one
   * as a view (held until release). null if it is not in the store.
   */
  #fetch(seq: number): { data: Buffer; metadata: Uint8Array; obj: StoredObject | null } | null {
    const id = this.#id(seq);
    if (this.#lastWasLarge) {
      // Large messages come in runs: go straight for the view (one trip through the lock).
      const obj = this.#store.get(id);
      if (obj === null) return null;
      if (obj.data.length + obj.metadata.length > COPY_LIMIT) return { data: obj.data, metadata: obj.metadata, obj };
      this.#lastWasLarge = false;
      obj.release(); // small after all: copy it like any small one
    }
    if (this.#slab.length - this.#slabUsed < COPY_LIMIT) {
      this.#slab = Buffer.allocUnsafeSlow(SLAB_SIZE);
      this.#slabUsed = 0;
    }
    const at = this.#slabUsed;
    const sizes = this.#store.readWithMetadata(id, this.#slab.subarray(at, at + COPY_LIMIT));
    if (sizes === null) return null;
    const [dataSize, metadataSize] = sizes;
    if (dataSize + metadataSize <= COPY_LIMIT) {
      this.#slabUsed = at + ((dataSize + metadataSize + 7) & ~7);
      const slab = this.#slab;
      return { data: slab.subarray(at, at + dataSize), metadata: slab.subarray(at + dataSize, at + dataSize + metadataSize), obj: null };
    }
    this.#lastWasLarge = true;
    const obj = this.#store.get(id);
    return obj === null ? null : { data: obj.data, metadata: obj.metadata, obj };
  }

  /** The stream's message count once the producer has ended it, else null. */
  #endCount(): number | null {
    if (this.#count !== null) return this.#count;
    const end = this.#store.get(this.#id(END_SEQ));
    if (end === null) return null;
    try {
      const meta = decodeMeta(end.metadata);
      if (meta?.kind !== MessageKind.End || end.data.length !== 8) {
        throw new StoreError('ERR_BAD_SEGMENT', `the end marker of '${this.stream}' is malformed`);
      }
      this.#count = end.data.readDoubleLE(0);
    } finally {
      end.release();
    }
    return this.#count;
  }

  /** Lossless: tell the producer everything below `upTo` may go (default: all we passed). */
  #storeCursor(upTo = this.#next): void {
    if (!this.#lossless || upTo === this.#storedCursor) return;
    this.#storedCursor = upTo;
    this.#unstoredBytes = 0;
    this.#store.setCursor(this.#cursors.sub, upTo);
  }
}
