// Publisher: one producer of a stream. Messages are immutable store objects under consecutive
// ids; the producer never waits on consumers in 'evict' retention. In 'lossless' it keeps a
// reference to every message (so nothing can evict it) until every live subscriber has passed
// it, then releases and deletes it, and waits (up to timeoutMs) while the store is full.
import type { RecordBatch, Table } from 'apache-arrow';
import { TableEncoder, type EncodedTable } from '../arrow/index.js';
import { StoreError, invalidArgument } from '../errors.js';
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
  readonly #sealOptions: { keepReference: boolean };
  readonly #encoder = new TableEncoder(); // keeps the schema message between batches

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

  /**
   * Publishes bytes or an Arrow table/record batch; resolves with its seq. Waits only in
   * lossless retention while the store is full (ERR_STORE_FULL after timeoutMs).
   */
  async publish(payload: Payload): Promise<number> {
    const msg = this.#prepare(payload);
    // Polled too: a subscriber that dies holding messages back changes nothing in the store
    // until someone notices (a failed allocation reclaims dead clients).
    const buf = this.#tryCreate(msg) ??
      (await this.#store.waitFor(() => this.#tryCreate(msg), { timeoutMs: this.#timeoutMs, pollEveryMs: 50 }, () => this.#create(msg)));
    return this.#commit(buf, msg);
  }

  /** publish() that never waits: ERR_STORE_FULL when there is no room now. */
  publishSync(payload: Payload): number {
    const msg = this.#prepare(payload);
    return this.#commit(this.#tryCreate(msg) ?? this.#create(msg), msg);
  }

  /** Closes the stream: subscribers finish after the last message instead of waiting. Returns the count. */
  end(): number {
    if (this.#ended) return this.#next;
    const count = new Float64Array([this.#next]);
    this.#store.put(this.#id(END_SEQ), new Uint8Array(count.buffer), encodeMeta(MessageKind.End, Content.Bytes, this.retention));
    this.#ended = true;
    return this.#next;
  }

  #prepare(payload: Payload): { size: number; meta: Uint8Array; write: (buf: Buffer) => void } {
    if (this.#ended) throw new StoreError('ERR_INVALID_ARGUMENT', `stream '${this.stream}' has ended`);
    if (payload instanceof Uint8Array) {
      return { size: payload.length, meta: this.#dataMeta.bytes, write: (buf) => buf.set(payload) };
    }
    let enc: EncodedTable;
    try {
      enc = this.#encoder.encode(payload);
    } catch (err) {
      throw invalidArgument(`publish takes bytes or an Arrow Table/RecordBatch: ${(err as Error).message}`);
    }
    return { size: enc.byteLength, meta: this.#dataMeta.arrow, write: (buf) => enc.writeInto(buf) };
  }

  /** The object for the next message, or undefined while the store is full. */
  #tryCreate(msg: { size: number; meta: Uint8Array }): Buffer | undefined {
    if (this.retention === 'lossless') this.#deletePassed();
    try {
      return this.#create(msg);
    } catch (err) {
      if (!(err instanceof StoreError) || err.code !== 'ERR_STORE_FULL') throw err;
    }
    if (this.retention === 'evict') {
      // The store may have eviction 'none': make room ourselves, the producer never waits.
      this.#store.evict(msg.size + msg.meta.length);
      return this.#create(msg);
    }
    return undefined;
  }

  #create(msg: { size: number; meta: Uint8Array }): Buffer {
    return this.#store.create(this.#id(this.#next), msg.size, msg.meta);
  }

  #commit(buf: Buffer, msg: { write: (buf: Buffer) => void }): number {
    const seq = this.#next;
    const id = this.#id(seq);
    try {
      msg.write(buf);
    } catch (err) {
      this.#store.abort(id);
      throw err;
    }
    this.#store.seal(id, this.#sealOptions);
    this.#next = seq + 1;
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
  }
}
