// Publisher: one producer of a stream. Messages are immutable store objects under consecutive
// ids; the producer never waits on consumers in 'evict' retention. In 'lossless' it keeps a
// reference to every message (so nothing can evict it) until every live subscriber has passed
// it, then releases and deletes it, and waits (up to timeoutMs) while the store is full.
import type { RecordBatch, Table } from 'apache-arrow';
import { TableEncoder, type EncodedTable } from '../arrow/index.js';
import { piecesOf } from '../arrow/encoder.js';
import { StoreError, invalidArgument } from '../errors.js';
import { addon } from '../native.js';
import type { ObjectId } from '../object-id.js';
import type { ObjectStore } from '../store.js';
import * as check from '../validate.js';
import { Content, END_SEQ, MessageKind, cursorNames, encodeMeta, streamIds, type Retention } from './protocol.js';

export interface PublisherOptions {
  /** 'evict' (default): never wait, the store evicts old messages. 'lossless': see above. */
  retention?: Retention;
  /** lossless: how long publish() waits for room, -1 forever (default 30000 ms). */
  timeoutMs?: number;
  /** First seq to publish (default 0), e.g. to resume a stream. */
  startSeq?: number;
}

type Payload = Uint8Array | Table | RecordBatch;

/** A message ready to store: its bytes, or a large Arrow table's encoded stream. */
interface Message {
  meta: Uint8Array;
  data: Uint8Array | EncodedTable;
  byteLength: number;
  /** Keep a reference whatever the retention (the end marker). */
  pin: boolean;
}

const PIN = { keepReference: true };

// Arrow messages up to this size are assembled in a reused buffer before put(), which copies
// them under the lock in one trip.
const STAGE_LIMIT = addon.limits.copyInLockMax;

// lossless: how often (in seqs) a publish deletes what every subscriber has passed; also
// whenever the store is full.
const DELETE_EVERY = 64;
// ... or bytes: large messages are deleted soon, so the next ones reuse memory still in cache.
const DELETE_BYTES = 1 << 20;

export class Publisher {
  readonly stream: string;
  readonly retention: Retention;
  readonly #store: ObjectStore;
  readonly #id: (seq: number) => ObjectId;
  readonly #cursors: ReturnType<typeof cursorNames>;
  readonly #timeoutMs: number;
  readonly #dataMeta: { bytes: Uint8Array; arrow: Uint8Array };
  #next: number;
  #deletedUpTo: number;
  #ended = false;
  #tail: Promise<void> = Promise.resolve();
  #queued = 0;
  #waitedMs = 0;
  #undeletedBytes = 0; // published since the last #deletePassed
  readonly #endMeta: Uint8Array;
  readonly #sealOptions: { keepReference: boolean };
  readonly #encoder = new TableEncoder(); // keeps the schema message between batches
  #stage = Buffer.alloc(0);

  constructor(store: ObjectStore, stream: string, options?: PublisherOptions) {
    const o = check.options<PublisherOptions>(options, ['retention', 'timeoutMs', 'startSeq'], 'Publisher options');
    const retention = o.retention ?? 'evict';
    if (retention !== 'evict' && retention !== 'lossless') {
      throw invalidArgument(`retention must be 'evict' or 'lossless', got ${String(retention)}`);
    }
    this.#store = store;
    this.stream = check.name(stream, 'stream name');
    this.retention = retention;
    this.#id = streamIds(stream);
    this.#cursors = cursorNames(stream);
    this.#timeoutMs = check.timeout(o.timeoutMs, 30_000);
    this.#next = o.startSeq === undefined ? 0 : check.size(o.startSeq, 'startSeq');
    this.#deletedUpTo = this.#next;
    this.#dataMeta = {
      bytes: encodeMeta(MessageKind.Data, Content.Bytes, retention),
      arrow: encodeMeta(MessageKind.Data, Content.Arrow, retention),
    };
    this.#sealOptions = { keepReference: retention === 'lossless' };
    this.#endMeta = encodeMeta(MessageKind.End, Content.Bytes, retention);
    store.setCursor(this.#cursors.head, this.#next);
  }

  /** The seq the next publish gets (= messages published so far, from startSeq). */
  get nextSeq(): number {
    return this.#next;
  }

  /** Subscribers attached to this stream now. */
  subscriberCount(): number {
    return this.#store.cursorValues(this.#cursors.sub).length;
  }

  /** Resolves once `count` subscribers are attached (so a lossless stream holds every message for them). */
  waitForSubscribers(count: number, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<void> {
    check.size(count, 'count');
    const o = check.options<{ timeoutMs: number; signal: AbortSignal }>(options, ['timeoutMs', 'signal'], 'waitForSubscribers options');
    return this.#store.waitFor(
      () => (this.subscriberCount() >= count ? true : undefined),
      { timeoutMs: o.timeoutMs ?? -1, signal: o.signal },
      () => {
        throw new StoreError('ERR_TIMEOUT', `only ${this.subscriberCount()} of ${count} subscribers attached to '${this.stream}'`);
      },
    ).then(() => undefined);
  }

  /** Milliseconds publish() and end() spent waiting for room (lossless retention). */
  get waitedMs(): number {
    return this.#waitedMs;
  }

  /**
   * Publishes bytes or an Arrow table/record batch; resolves with its seq. Waits only in
   * lossless retention while the store is full (ERR_STORE_FULL after timeoutMs). Calls are
   * queued: messages get their seqs in the order publish() was called.
   */
  publish(payload: Payload): Promise<number> {
    return this.#enqueue(async () => {
      const msg = this.#prepare(payload);
      await this.#store_(msg, this.#next);
      return this.#commit(msg);
    });
  }

  /** publish() that never waits: ERR_STORE_FULL when there is no room now. */
  publishSync(payload: Payload): number {
    if (this.#queued > 0) throw invalidArgument(`a publish() on '${this.stream}' is still waiting for room: await it first`);
    const msg = this.#prepare(payload);
    if (!this.#tryStore(msg, this.#next)) throw this.#full(msg);
    return this.#commit(msg);
  }

  /**
   * Closes the stream: subscribers finish after the last message instead of waiting. Resolves
   * with the message count. The end marker is pinned while this process lives.
   */
  end(): Promise<number> {
    return this.#enqueue(async () => {
      if (this.#ended) return this.#next;
      const count = new Float64Array([this.#next]);
      await this.#store_({ meta: this.#endMeta, data: new Uint8Array(count.buffer), byteLength: 8, pin: true }, END_SEQ);
      this.#ended = true;
      return this.#next;
    });
  }

  /**
   * Lossless: resolves once every live subscriber has passed every message (each then is
   * deleted), so the producer can exit without its messages becoming evictable. ERR_TIMEOUT
   * after timeoutMs (default: the publisher's).
   */
  drain(options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<void> {
    const o = check.options<{ timeoutMs: number; signal: AbortSignal }>(options, ['timeoutMs', 'signal'], 'drain options');
    const timeoutMs = check.timeout(o.timeoutMs, this.#timeoutMs);
    return this.#enqueue(() =>
      this.#store.waitFor(
        () => {
          this.#deletePassed();
          return this.#store.cursorValues(this.#cursors.sub).every((c) => c >= this.#next) ? true : undefined;
        },
        { timeoutMs, signal: o.signal, pollEveryMs: 50 },
        () => {
          throw new StoreError('ERR_TIMEOUT', `subscribers of '${this.stream}' did not read every message within ${timeoutMs} ms`);
        },
      ).then(() => undefined),
    );
  }

  #enqueue<T>(job: () => Promise<T>): Promise<T> {
    this.#queued++;
    const result = this.#tail.then(job).finally(() => this.#queued--);
    this.#tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  /** Stores msg at seq, waiting for room in lossless retention. */
  async #store_(msg: Message, seq: number): Promise<void> {
    if (this.#tryStore(msg, seq)) return;
    // Polled too: a subscriber that dies holding messages back changes nothing in the store
    // until someone notices (a failed allocation reclaims dead clients).
    const began = performance.now();
    try {
      await this.#store.waitFor(() => (this.#tryStore(msg, seq) ? true : undefined), { timeoutMs: this.#timeoutMs, pollEveryMs: 50 }, () => {
        if (this.#tryStore(msg, seq)) return true; // a last try
        throw this.#full(msg);
      });
    } finally {
      this.#waitedMs += performance.now() - began;
    }
  }

  #prepare(payload: Payload): Message {
    if (this.#ended) throw new StoreError('ERR_INVALID_ARGUMENT', `stream '${this.stream}' has ended`);
    if (payload instanceof Uint8Array) return { meta: this.#dataMeta.bytes, data: payload, byteLength: payload.byteLength, pin: false };
    let table: EncodedTable;
    try {
      table = this.#encoder.encode(payload);
    } catch (err) {
      throw invalidArgument(`publish takes bytes or an Arrow Table/RecordBatch: ${(err as Error).message}`);
    }
    if (table.byteLength > STAGE_LIMIT) {
      // One copy, column buffers -> shared memory, gathered by put.
      return { meta: this.#dataMeta.arrow, data: table, byteLength: table.byteLength, pin: false };
    }
    // Small: handing put one buffer costs less than handing it each piece.
    if (this.#stage.length < table.byteLength) this.#stage = Buffer.allocUnsafe(STAGE_LIMIT);
    const bytes = this.#stage.subarray(0, table.byteLength);
    table.writeInto(bytes);
    return { meta: this.#dataMeta.arrow, data: bytes, byteLength: table.byteLength, pin: false };
  }

  /** Stores msg at seq; false while a lossless store is full. */
  #tryStore(msg: Message, seq: number): boolean {
    const lossless = this.retention === 'lossless';
    // Subscribers store their cursors every few hundred messages: looking at them on every
    // publish would mostly find nothing new.
    if (lossless && (seq % DELETE_EVERY === 0 || this.#undeletedBytes >= DELETE_BYTES)) this.#deletePassed();
    if (this.#storeMessage(msg, seq, true)) return true;
    if (lossless) {
      this.#deletePassed();
      return this.#storeMessage(msg, seq, true);
    }
    // The store may have eviction 'none': make room ourselves, the producer never waits.
    this.#store.evict(msg.byteLength + msg.meta.length);
    this.#storeMessage(msg, seq);
    return true;
  }

  /** Creates, fills and seals msg's object. No room: false (ifRoom), else ERR_STORE_FULL. */
  #storeMessage(msg: Message, seq: number, ifRoom = false): boolean {
    // The pieces are taken (and checked against the encoded size) at each attempt: a column
    // that is a view of a released object reads as empty by now, and must not make a short
    // message.
    const data = msg.data instanceof Uint8Array ? msg.data : piecesOf(msg.data);
    const options = msg.pin ? PIN : this.#sealOptions;
    if (ifRoom) return this.#store.tryPut(this.#id(seq), data, msg.meta, options);
    this.#store.put(this.#id(seq), data, msg.meta, options);
    return true;
  }

  #full(msg: Message): StoreError {
    return new StoreError('ERR_STORE_FULL', `no room in the store for the next message of '${this.stream}' (${msg.byteLength} bytes)`);
  }

  #commit(msg: Message): number {
    const seq = this.#next++;
    this.#undeletedBytes += msg.byteLength;
    // After the seal: a subscriber that finds seq missing while head > seq knows it was lost.
    // No wake-up needed, the seal already woke everyone.
    this.#store.setCursor(this.#cursors.head, this.#next, { notify: false });
    return seq;
  }

  /** lossless: drop every message that all live subscribers have passed. */
  #deletePassed(): void {
    const cursors = this.#store.cursorValues(this.#cursors.sub);
    const passed = cursors.length === 0 ? this.#next : Math.min(this.#next, ...cursors);
    for (let seq = this.#deletedUpTo; seq < passed; seq++) {
      const id = this.#id(seq);
      this.#store.release(id); // our pin since publish
      try {
        this.#store.delete(id); // freed now, or by the last subscriber still reading it
      } catch (err) {
        if (!(err instanceof StoreError) || err.code !== 'ERR_OBJECT_NOT_FOUND') throw err;
      }
    }
    if (passed > this.#deletedUpTo) this.#deletedUpTo = passed;
    this.#undeletedBytes = 0;
  }
}
