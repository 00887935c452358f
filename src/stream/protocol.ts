// How a stream lives in a store (docs/FORMAT.md, "Streams"): message `seq` of stream `s` is
// the object ObjectId.forStream(s, seq); its 4 metadata bytes say what it is. The end marker
// is the object at END_SEQ, its data the message count (f64), so it outlives the producer.
// Cursors (per-client counters that die with their client):
//   <prefix>.head  the publisher's next seq (every seq below it was sealed)
//   <prefix>.sub   each subscriber's next seq (lossless: everything below may be deleted)
import { ObjectId } from '../object-id.js';

export const enum MessageKind {
  Data = 0,
  End = 1,
}

export const enum Content {
  Bytes = 0,
  Arrow = 1,
}

export type Retention = 'evict' | 'lossless';

const MAGIC = 0x53; // 'S'

export function encodeMeta(kind: MessageKind, content: Content, retention: Retention): Uint8Array {
  return Uint8Array.of(MAGIC, kind, content, retention === 'lossless' ? 1 : 0);
}

export interface MessageMeta {
  kind: MessageKind;
  content: Content;
  lossless: boolean;
}

/** null when the object is not a stream message (a foreign object under a stream id). */
export function decodeMeta(meta: Uint8Array): MessageMeta | null {
  if (meta.length !== 4 || meta[0] !== MAGIC || meta[1] > 1 || meta[2] > 1) return null;
  return { kind: meta[1] as MessageKind, content: meta[2] as Content, lossless: meta[3] === 1 };
}

/** The end marker's seq: never a message's. */
export const END_SEQ = Number.MAX_SAFE_INTEGER;

export function cursorNames(stream: string) {
  const prefix = `shmstore.stream.${stream}`;
  return { head: `${prefix}.head`, sub: `${prefix}.sub` };
}

/** Ids of consecutive seqs, without re-hashing the stream name each time. */
export function streamIds(stream: string): (seq: number) => ObjectId {
  ObjectId.forStream(stream, 0); // validates the name and warms the prefix cache
  return (seq) => ObjectId.forStream(stream, seq);
}
