// A minimal, bounds-checked reader of the few flatbuffer tables of the Arrow IPC format that
// TableDecoder reads on its fast path (Message, RecordBatch, DictionaryBatch, KeyValue), and
// a structural check of a Schema message before apache-arrow's own decoder sees it.
//
// Why not just apache-arrow's `Message.decode`? Two reasons:
//  - speed: it materialises every int64 through BigInt and builds a Message object and header
//    closures per message, a large share of the per-batch cost for small batches;
//  - safety: flatbuffers' JS accessors never check a vector's length against the buffer, so a
//    corrupted or hostile object (bytes from shared memory are not to be trusted) could make
//    them loop over 2^31 "elements" or recurse without end. Every vector, string and table
//    read here is checked against the metadata's size first, and nesting is bounded.
//
// Layout reminders (flatbuffers): the buffer starts with a uoffset to the root table; a table
// starts with an soffset to its vtable (vtable = table - soffset); a vtable is u16 vtable
// size, u16 table size, then one u16 offset per field (0 = absent). Vectors and strings are a
// u32 count followed by the elements; tables and vectors are referenced by uoffsets relative
// to the referring slot. Everything is little-endian.

export class FlatbufferError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FlatbufferError';
  }
}

const MAX_NESTING = 64;
const TWO_32 = 4294967296;
const utf8 = new TextDecoder('utf-8', { fatal: false });

export class FlatReader {
  readonly bytes: Uint8Array;
  readonly size: number;
  readonly #dv: DataView;

  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
    this.size = bytes.byteLength;
    this.#dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  #need(pos: number, n: number, what: string): void {
    if (!(pos >= 0 && n >= 0 && pos + n <= this.size)) {
      throw new FlatbufferError(`${what} at ${pos} (+${n} bytes) lies outside the ${this.size}-byte metadata`);
    }
  }

  u8(pos: number): number {
    this.#need(pos, 1, 'u8');
    return this.#dv.getUint8(pos);
  }

  i16(pos: number): number {
    this.#need(pos, 2, 'i16');
    return this.#dv.getInt16(pos, true);
  }

  u16(pos: number): number {
    this.#need(pos, 2, 'u16');
    return this.#dv.getUint16(pos, true);
  }

  i32(pos: number): number {
    this.#need(pos, 4, 'i32');
    return this.#dv.getInt32(pos, true);
  }

  u32(pos: number): number {
    this.#need(pos, 4, 'u32');
    return this.#dv.getUint32(pos, true);
  }

  /** An int64 that must be a safe integer (lengths, offsets, counts). */
  i64(pos: number): number {
    this.#need(pos, 8, 'i64');
    const lo = this.#dv.getUint32(pos, true);
    const hi = this.#dv.getInt32(pos + 4, true);
    if (hi > 0x1fffff || hi < -0x200000) throw new FlatbufferError(`int64 at ${pos} is not a safe integer`);
    return hi * TWO_32 + lo;
  }

  /** Validates the table at `pos` (its vtable and its inline area) and returns pos. */
  table(pos: number): number {
    const vt = pos - this.i32(pos);
    const vtSize = this.u16(vt);
    if (vtSize < 4 || (vtSize & 1) !== 0) throw new FlatbufferError(`bad vtable size ${vtSize} at ${vt}`);
    this.#need(vt, vtSize, 'vtable');
    const tableSize = this.u16(vt + 2);
    if (tableSize < 4) throw new FlatbufferError(`bad table size ${tableSize} at ${pos}`);
    this.#need(pos, tableSize, 'table');
    return pos;
  }

  /** The root table. */
  root(): number {
    return this.table(this.u32(0));
  }

  /** Absolute position of field `index` of the (validated) table, or 0 if absent. */
  field(table: number, index: number): number {
    const vt = table - this.i32(table);
    const o = 4 + 2 * index;
    if (o >= this.u16(vt)) return 0;
    const off = this.u16(vt + o);
    if (off === 0) return 0;
    if (off >= this.u16(vt + 2)) throw new FlatbufferError(`field ${index} of the table at ${table} lies outside it`);
    return table + off;
  }

  /** Follows the uoffset stored at `slot`. */
  ref(slot: number): number {
    return slot + this.u32(slot);
  }

  /** The table referenced from `slot`. */
  tableAt(slot: number): number {
    return this.table(this.ref(slot));
  }

  /** The vector referenced from `slot`: [position of element 0, count], bounds-checked. */
  vector(slot: number, elementSize: number): [number, number] {
    const p = this.ref(slot);
    const n = this.u32(p);
    this.#need(p + 4, n * elementSize, 'vector');
    return [p + 4, n];
  }

  string(slot: number): string {
    const [start, n] = this.vector(slot, 1);
    return utf8.decode(this.bytes.subarray(start, start + n));
  }
}

// Field indexes of the tables read here (format/Message.fbs, format/Schema.fbs).
const MESSAGE_VERSION = 0;
const MESSAGE_HEADER_TYPE = 1;
const MESSAGE_HEADER = 2;
const MESSAGE_BODY_LENGTH = 3;
const MESSAGE_CUSTOM_METADATA = 4;

const BATCH_LENGTH = 0;
const BATCH_NODES = 1;
const BATCH_BUFFERS = 2;
const BATCH_COMPRESSION = 3;
const BATCH_VARIADIC_COUNTS = 4;

const DICT_ID = 0;
const DICT_DATA = 1;
const DICT_IS_DELTA = 2;

/** Values of Message.header_type (MessageHeader in format/Message.fbs). */
export const HeaderType = {
  None: 0,
  Schema: 1,
  DictionaryBatch: 2,
  RecordBatch: 3,
  Tensor: 4,
  SparseTensor: 5,
} as const;

export interface MessageInfo {
  version: number;
  headerType: number;
  /** Position of the header table, 0 if absent. */
  header: number;
  bodyLength: number;
  /** Message custom metadata, undefined when there is none. */
  metadata: Map<string, string> | undefined;
}

export interface NodeInfo {
  length: number;
  nullCount: number;
}

export interface BufferInfo {
  offset: number;
  length: number;
}

export interface BatchInfo {
  length: number;
  nodes: NodeInfo[];
  buffers: BufferInfo[];
  compressed: boolean;
  variadicBufferCounts: number[];
}

export interface DictionaryInfo {
  id: number;
  isDelta: boolean;
  data: BatchInfo;
}

export function readMessage(r: FlatReader): MessageInfo {
  const root = r.root();
  let p = r.field(root, MESSAGE_VERSION);
  const version = p === 0 ? 0 : r.i16(p);
  p = r.field(root, MESSAGE_HEADER_TYPE);
  const headerType = p === 0 ? HeaderType.None : r.u8(p);
  p = r.field(root, MESSAGE_HEADER);
  const header = p === 0 ? 0 : r.tableAt(p);
  p = r.field(root, MESSAGE_BODY_LENGTH);
  const bodyLength = p === 0 ? 0 : r.i64(p);
  if (bodyLength < 0) throw new FlatbufferError(`negative body length ${bodyLength}`);
  p = r.field(root, MESSAGE_CUSTOM_METADATA);
  const metadata = p === 0 ? undefined : readKeyValues(r, p);
  return { version, headerType, header, bodyLength, metadata };
}

function readKeyValues(r: FlatReader, slot: number): Map<string, string> | undefined {
  const [start, n] = r.vector(slot, 4);
  if (n === 0) return undefined;
  const out = new Map<string, string>();
  for (let i = 0; i < n; i++) {
    const kv = r.tableAt(start + 4 * i);
    const k = r.field(kv, 0);
    const v = r.field(kv, 1);
    out.set(k === 0 ? '' : r.string(k), v === 0 ? '' : r.string(v));
  }
  return out;
}

export function readRecordBatch(r: FlatReader, table: number): BatchInfo {
  let p = r.field(table, BATCH_LENGTH);
  const length = p === 0 ? 0 : r.i64(p);
  const nodes: NodeInfo[] = [];
  p = r.field(table, BATCH_NODES);
  if (p !== 0) {
    const [start, n] = r.vector(p, 16);
    for (let i = 0, q = start; i < n; i++, q += 16) {
      const len = r.i64(q);
      const nulls = r.i64(q + 8);
      if (len < 0 || nulls < 0 || nulls > len) throw new FlatbufferError(`bad field node ${i}: length ${len}, null count ${nulls}`);
      nodes.push({ length: len, nullCount: nulls });
    }
  }
  const buffers: BufferInfo[] = [];
  p = r.field(table, BATCH_BUFFERS);
  if (p !== 0) {
    const [start, n] = r.vector(p, 16);
    for (let i = 0, q = start; i < n; i++, q += 16) {
      const offset = r.i64(q);
      const len = r.i64(q + 8);
      if (offset < 0 || len < 0) throw new FlatbufferError(`bad buffer ${i}: offset ${offset}, length ${len}`);
      buffers.push({ offset, length: len });
    }
  }
  const compressed = r.field(table, BATCH_COMPRESSION) !== 0;
  const variadicBufferCounts: number[] = [];
  p = r.field(table, BATCH_VARIADIC_COUNTS);
  if (p !== 0) {
    const [start, n] = r.vector(p, 8);
    for (let i = 0; i < n; i++) variadicBufferCounts.push(r.i64(start + 8 * i));
  }
  if (length < 0) throw new FlatbufferError(`negative record batch length ${length}`);
  return { length, nodes, buffers, compressed, variadicBufferCounts };
}

export function readDictionaryBatch(r: FlatReader, table: number): DictionaryInfo {
  let p = r.field(table, DICT_ID);
  const id = p === 0 ? 0 : r.i64(p);
  p = r.field(table, DICT_DATA);
  if (p === 0) throw new FlatbufferError('dictionary batch without data');
  const data = readRecordBatch(r, r.tableAt(p));
  p = r.field(table, DICT_IS_DELTA);
  const isDelta = p !== 0 && r.u8(p) !== 0;
  return { id, isDelta, data };
}

// Schema: endianness(0) fields(1) custom_metadata(2) features(3).
// Field: name(0) nullable(1) type_type(2) type(3) dictionary(4) children(5) custom_metadata(6).
// DictionaryEncoding: id(0) indexType(1) isOrdered(2) dictionaryKind(3).
const TYPE_TIMESTAMP = 10;
const TYPE_UNION = 14;

/**
 * Checks that every table, vector and string the apache-arrow schema decoder will follow lies
 * inside the metadata and that fields nest at most 64 deep. Throws FlatbufferError if not.
 */
export function checkSchema(r: FlatReader, schema: number): void {
  let p = r.field(schema, 1);
  if (p !== 0) checkFields(r, p, 0);
  p = r.field(schema, 2);
  if (p !== 0) readKeyValues(r, p);
  p = r.field(schema, 3);
  if (p !== 0) r.vector(p, 8);
}

function checkFields(r: FlatReader, slot: number, depth: number): void {
  if (depth > MAX_NESTING) throw new FlatbufferError(`fields nest more than ${MAX_NESTING} deep`);
  const [start, n] = r.vector(slot, 4);
  for (let i = 0; i < n; i++) {
    const f = r.tableAt(start + 4 * i);
    let p = r.field(f, 0);
    if (p !== 0) r.string(p);
    p = r.field(f, 2);
    const typeType = p === 0 ? 0 : r.u8(p);
    p = r.field(f, 3);
    if (p !== 0) {
      const t = r.tableAt(p);
      if (typeType === TYPE_TIMESTAMP) {
        const tz = r.field(t, 1);
        if (tz !== 0) r.string(tz);
      } else if (typeType === TYPE_UNION) {
        const ids = r.field(t, 1);
        if (ids !== 0) r.vector(ids, 4);
      }
    }
    p = r.field(f, 4);
    if (p !== 0) {
      const d = r.tableAt(p);
      const idx = r.field(d, 1);
      if (idx !== 0) r.tableAt(idx);
    }
    p = r.field(f, 5);
    if (p !== 0) checkFields(r, p, depth + 1);
    p = r.field(f, 6);
    if (p !== 0) readKeyValues(r, p);
  }
}
