import { createHash, randomBytes } from 'node:crypto';
import { invalidArgument } from './errors.js';

const ID_SIZE = 20;
const HEX_RE = /^[0-9a-fA-F]{40}$/;
const streamPrefixes = new Map<string, Uint8Array>();

/** A 20-byte object id, as in Plasma. Immutable. */
export class ObjectId {
  static readonly SIZE = ID_SIZE;
  /** The raw bytes (do not modify). */
  readonly bytes: Uint8Array;

  private constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }

  static random(): ObjectId {
    return new ObjectId(new Uint8Array(randomBytes(ID_SIZE)));
  }

  static fromHex(hex: string): ObjectId {
    if (typeof hex !== 'string' || !HEX_RE.test(hex)) {
      throw invalidArgument(`an object id is 40 hex digits, got ${describe(hex)}`);
    }
    return new ObjectId(new Uint8Array(Buffer.from(hex, 'hex')));
  }

  static fromBytes(bytes: Uint8Array): ObjectId {
    if (!(bytes instanceof Uint8Array) || bytes.length !== ID_SIZE) {
      throw invalidArgument(`an object id is ${ID_SIZE} bytes, got ${describe(bytes)}`);
    }
    return new ObjectId(new Uint8Array(bytes));
  }

  /**
   * The id of message `seq` of stream `streamName`, the same in every process: the first 12
   * bytes of SHA-256("shmstore/stream/" + name), then seq as a 64-bit big-endian integer
   * (docs/FORMAT.md, "Stream ids").
   */
  static forStream(streamName: string, seq: number): ObjectId {
    if (typeof streamName !== 'string' || streamName.length === 0) {
      throw invalidArgument('a stream name must be a non-empty string');
    }
    if (!Number.isSafeInteger(seq) || seq < 0) {
      throw invalidArgument(`a stream seq must be a non-negative safe integer, got ${describe(seq)}`);
    }
    let prefix = streamPrefixes.get(streamName);
    if (prefix === undefined) {
      prefix = createHash('sha256').update(`shmstore/stream/${streamName}`).digest().subarray(0, 12);
      if (streamPrefixes.size > 1024) streamPrefixes.clear();
      streamPrefixes.set(streamName, prefix);
    }
    const bytes = new Uint8Array(ID_SIZE);
    bytes.set(prefix, 0);
    // seq as a big-endian u64 (a safe integer: the high word fits in 21 bits); no BigInt, it
    // is on every message's path.
    const hi = Math.floor(seq / 0x1_0000_0000);
    const lo = seq >>> 0;
    bytes[12] = hi >>> 24;
    bytes[13] = (hi >>> 16) & 255;
    bytes[14] = (hi >>> 8) & 255;
    bytes[15] = hi & 255;
    bytes[16] = lo >>> 24;
    bytes[17] = (lo >>> 16) & 255;
    bytes[18] = (lo >>> 8) & 255;
    bytes[19] = lo & 255;
    return new ObjectId(bytes);
  }

  toHex(): string {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset, ID_SIZE).toString('hex');
  }

  toString(): string {
    return this.toHex();
  }

  toJSON(): string {
    return this.toHex();
  }

  equals(other: ObjectId): boolean {
    // instanceof alone is not enough: Object.create(ObjectId.prototype) has no bytes.
    if (!(other instanceof ObjectId) || !(other.bytes instanceof Uint8Array)) return false;
    for (let i = 0; i < ID_SIZE; i++) if (this.bytes[i] !== other.bytes[i]) return false;
    return true;
  }
}

/** The id's bytes, for the addon; anything else is ERR_INVALID_ARGUMENT. */
export function idBytes(id: unknown): Uint8Array {
  if (id instanceof ObjectId) return id.bytes;
  throw invalidArgument(`expected an ObjectId, got ${describe(id)}`);
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 60 ? `${v.slice(0, 60)}…` : v)}`;
  if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean') return `${typeof v} ${String(v)}`;
  if (v instanceof Uint8Array) return `${v.constructor.name}(${v.length})`;
  if (typeof v === 'object') return (v as object).constructor?.name ?? 'object';
  return typeof v;
}
