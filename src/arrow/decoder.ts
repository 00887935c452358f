// Zero-copy decoding of Arrow IPC streams, with each schema parsed once, not once per message.
//
// apache-arrow's tableFromIPC costs 20-30 µs per small message, nearly all of it fixed
// overhead: the reader machinery, decoding the schema flatbuffer into Fields and DataTypes
// again, Message.decode's BigInt-heavy header decoding, and RecordBatch's constructor
// rebuilding the schema per batch. In a stream (one schema, many small batches) only the
// record batch headers change. So TableDecoder:
//  - keeps copies of the last few schema messages' bytes with the Schema parsed from each; a
//    stream that starts with the same bytes (a memcmp of a few hundred bytes) reuses it;
//  - reads record batch and dictionary batch headers with its own bounds-checked flatbuffer
//    reader (flatbuf.ts): no BigInt, no trust in lengths read from shared memory;
//  - builds fixed-width columns (ints, floats, bools, dates, times, timestamps, durations,
//    decimals, intervals, fixed-size binary; with or without validity bitmaps) directly as
//    Data over views of the input, and every other column (strings, binary, lists, structs,
//    unions, maps, dictionaries, views) with apache-arrow's own VectorLoader — the code
//    tableFromIPC runs — over the same views, so all types decode as apache-arrow decodes them
//    and the values stay views of the input memory (zero-copy);
//  - falls back to tableFromIPC for compressed bodies (it owns the codec registry).
import { Data, Message, RecordBatch, Schema, Struct, Table, Type, Vector, tableFromIPC } from 'apache-arrow';
import type { DataType, Field } from 'apache-arrow';
import type { BufferRegion, FieldNode } from 'apache-arrow/ipc/metadata/message';
import { VectorLoader } from 'apache-arrow/visitor/vectorloader';
import { StoreError, invalidArgument } from '../errors.js';
import { describe } from '../object-id.js';
import {
  FlatReader,
  FlatbufferError,
  HeaderType,
  checkSchema,
  readDictionaryBatch,
  readMessage,
  readRecordBatch,
  type BatchInfo,
} from './flatbuf.js';

export interface TableDecoderStats {
  /** Streams decoded (fallbacks included). */
  decodes: number;
  /** Schema messages parsed (the rest reused the cached Schema). */
  schemaParses: number;
  /** Streams handed to tableFromIPC (compressed bodies). */
  fallbacks: number;
  /** Record batches decoded on the fast path. */
  batches: number;
}

const HEADER_NAMES = ['None', 'Schema', 'DictionaryBatch', 'RecordBatch', 'Tensor', 'SparseTensor'];

function headerName(type: number): string {
  return HEADER_NAMES[type] ?? `message type ${type}`;
}

function bad(message: string): FlatbufferError {
  return new FlatbufferError(message);
}

/** The Arrow stream framing of the message at pos: [metaStart, metaLength], or null at the end. */
function readFrame(dv: DataView, pos: number, n: number): [number, number] | null {
  if (pos === n) return null; // the stream ends without an end-of-stream marker: allowed
  if (pos + 4 > n) throw bad(`truncated stream: ${n - pos} stray bytes at ${pos}`);
  let len = dv.getInt32(pos, true);
  pos += 4;
  if (len === -1) {
    // continuation marker (format >= 0.15); a pre-0.15 stream has the length right away
    if (pos + 4 > n) throw bad(`truncated stream: a message prefix at ${pos - 4} is cut off`);
    len = dv.getInt32(pos, true);
    pos += 4;
  }
  if (len === 0) return null; // end-of-stream marker
  if (len < 0 || pos + len > n) {
    throw bad(`bad message at ${pos - 8}: metadata of ${len} bytes does not fit in the ${n}-byte stream`);
  }
  return [pos, len];
}

type ViewConstructor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): ArrayBufferView;
  readonly BYTES_PER_ELEMENT: number;
};

/** How to build one top-level column without the generic loader. */
interface FixedColumn {
  type: DataType;
  ArrayType: ViewConstructor;
}

// Types whose column is exactly a validity bitmap and one values buffer of a fixed-width
// element type (what VectorLoader does for them is makeData({ type, length, nullCount,
// nullBitmap, data })): built here as a Data straight away, without visitor dispatch.
const FIXED_WIDTH = new Set<number>([
  Type.Int,
  Type.Float,
  Type.Bool,
  Type.Decimal,
  Type.Date,
  Type.Time,
  Type.Timestamp,
  Type.Duration,
  Type.Interval,
  Type.FixedSizeBinary,
]);

/** The fast plan for a schema whose top-level columns are all fixed-width, else null. */
function planFixed(fields: readonly Field[]): FixedColumn[] | null {
  const plan: FixedColumn[] = [];
  for (const f of fields) {
    const type = f.type as DataType;
    if (!FIXED_WIDTH.has(type.typeId)) return null;
    const ArrayType = (type as unknown as { ArrayType: ViewConstructor }).ArrayType;
    if (typeof ArrayType !== 'function' || !(ArrayType.BYTES_PER_ELEMENT > 0)) return null;
    plan.push({ type, ArrayType });
  }
  return plan;
}

// The validity bitmap of a column without nulls: empty, so never written (apache-arrow's
// setValid allocates a new bitmap when the one it has is too short); shared by every Data.
const NO_BITMAP = new Uint8Array(0);

// RecordBatch's constructor runs ensureSameLengthData, which rebuilds the schema for every
// batch (Schema.assign: a new Schema, every Field cloned, metadata maps merged) and the struct
// Data through makeData — half of what is left of the per-batch cost once the schema is
// cached. When every column already has the batch's length that work changes nothing, so we
// build the RecordBatch as that constructor leaves it: { schema, data, _metadata } on
// RecordBatch.prototype. Table's constructor unwraps its arguments and compares every
// batch's schema with the table's (compareSchemas walks every field); our batches all carry
// the one cached Schema, so we build it as left too: { schema, batches, _offsets }, the
// offsets the running row counts. Both shapes are checked once against real constructor
// calls at load; if a future apache-arrow differs, we use the constructors. (Columns whose
// length differs from the batch's are refused before this, as Arrow C++ refuses them.)
const [directBatches, directTables] = ((): [boolean, boolean] => {
  /** `probe` is a plain instance of `proto` with exactly these own keys, in this order. */
  const shaped = (probe: object, proto: object, keys: readonly string[]): boolean => {
    const own = Object.keys(probe);
    return Object.getPrototypeOf(probe) === proto && own.length === keys.length && own.every((k, i) => k === keys[i]);
  };
  try {
    const schema = new Schema([]);
    const data = new Data(new Struct([]), 0, 0, 0, [undefined, undefined, new Uint8Array(0)] as never, []) as Data<Struct>;
    const batch = new RecordBatch(schema, data);
    const batches = shaped(batch, RecordBatch.prototype, ['schema', 'data', '_metadata']) && batch['_metadata'] instanceof Map;
    const table = new Table(schema, [batch]);
    const tables = batches && shaped(table, Table.prototype, ['schema', 'batches', '_offsets']) && table['_offsets'] instanceof Uint32Array;
    return [batches, tables];
  } catch {
    return [false, false];
  }
})();

function makeBatch(schema: Schema, data: Data<Struct>, metadata: Map<string, string> | undefined): RecordBatch {
  if (directBatches) {
    // every column has the batch's length (checked by the caller)
    if (data.children.length === schema.fields.length) {
      const batch = Object.create(RecordBatch.prototype) as Record<string, unknown>;
      batch.schema = schema;
      batch.data = data;
      batch._metadata = metadata ?? new Map<string, string>();
      return batch as unknown as RecordBatch;
    }
  }
  return new RecordBatch(schema, data, metadata);
}

function makeTable(schema: Schema, batches: RecordBatch[]): Table {
  if (!directTables) return batches.length === 0 ? new Table(schema) : new Table(schema, batches);
  const offsets = new Uint32Array(batches.length + 1);
  for (let i = 0; i < batches.length; i++) offsets[i + 1] = offsets[i] + batches[i].numRows;
  const table = Object.create(Table.prototype) as Record<string, unknown>;
  table.schema = schema;
  table.batches = batches;
  table._offsets = offsets;
  return table as unknown as Table;
}

function checkBuffers(h: BatchInfo, bodyLength: number): void {
  for (const b of h.buffers) {
    if (b.offset + b.length > bodyLength) {
      throw bad(`buffer [${b.offset}, +${b.length}) lies outside the ${bodyLength}-byte message body`);
    }
  }
}

/** A parsed schema and what the fast path derives from it, keyed by its message's bytes. */
interface SchemaEntry {
  /** A copy of the stream's bytes up to the end of the schema message's metadata. */
  bytes: Buffer;
  bodyLength: number;
  schema: Schema;
  struct: Struct;
  fixed: FixedColumn[] | null;
}

/** Schemas kept per decoder: enough for a few streams interleaved in one process. */
const SCHEMA_CACHE_SIZE = 4;

/**
 * Decodes Arrow IPC streams into Tables whose buffers are views of the input bytes
 * (zero-copy), parsing each distinct schema once: it keeps the last few schema messages'
 * bytes and their parsed Schemas, and a stream that starts with the same bytes reuses it.
 * Tables decoded with one cached schema share its Schema object.
 */
export class TableDecoder {
  /** Most recently used first. */
  readonly #cache: SchemaEntry[] = [];
  readonly #stats: TableDecoderStats = { decodes: 0, schemaParses: 0, fallbacks: 0, batches: 0 };

  /**
   * The table in `bytes` (an Arrow IPC stream). Its columns are views of `bytes`: they are
   * valid as long as that memory is (for a StoredObject, until it is released). Bad input is
   * a StoreError ERR_INVALID_ARGUMENT.
   */
  decode(bytes: Uint8Array): Table {
    if (!(bytes instanceof Uint8Array)) {
      throw invalidArgument(`expected the bytes of an Arrow IPC stream (Uint8Array or Buffer), got ${describe(bytes)}`);
    }
    if (bytes.byteLength === 0) {
      throw invalidArgument(
        'not an Arrow IPC stream: 0 bytes (a released object, or one of a closed store, reads as 0 bytes: its views are detached)',
      );
    }
    try {
      return this.#decode(bytes);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      const why = err instanceof Error ? err.message : String(err);
      throw new StoreError('ERR_INVALID_ARGUMENT', `not a readable Arrow IPC stream: ${why}`, { cause: err });
    }
  }

  get stats(): Readonly<TableDecoderStats> {
    return { ...this.#stats };
  }

  /** Forgets the cached schemas. */
  reset(): void {
    this.#cache.length = 0;
  }

  /** The cached entry for the schema message that ends at schemaEnd, or a newly parsed one. */
  #schemaEntry(bytes: Uint8Array, metaStart: number, schemaEnd: number): SchemaEntry {
    const cache = this.#cache;
    for (let i = 0; i < cache.length; i++) {
      const e = cache[i];
      if (e.bytes.byteLength === schemaEnd && e.bytes.equals(bytes.subarray(0, schemaEnd))) {
        if (i > 0) {
          cache.splice(i, 1);
          cache.unshift(e);
        }
        return e;
      }
    }
    const meta = bytes.subarray(metaStart, schemaEnd);
    const r = new FlatReader(meta);
    const info = readMessage(r);
    if (info.headerType !== HeaderType.Schema || info.header === 0) {
      throw bad(`the first message is a ${headerName(info.headerType)}, not a Schema`);
    }
    checkSchema(r, info.header); // bounds and nesting, before apache-arrow follows any offset
    const message = Message.decode(meta);
    if (!message.isSchema()) throw bad('the first message is not a Schema');
    const schema = message.header() as Schema;
    const entry: SchemaEntry = {
      bytes: Buffer.from(bytes.subarray(0, schemaEnd)), // a copy: the input may go away
      bodyLength: info.bodyLength,
      schema,
      struct: new Struct(schema.fields),
      fixed: planFixed(schema.fields),
    };
    this.#stats.schemaParses++;
    cache.unshift(entry);
    if (cache.length > SCHEMA_CACHE_SIZE) cache.length = SCHEMA_CACHE_SIZE;
    return entry;
  }

  #decode(bytes: Uint8Array): Table {
    const n = bytes.byteLength;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, n);

    // 1. The schema message: reuse the parsed Schema if its bytes are cached.
    let frame = readFrame(dv, 0, n);
    if (frame === null) throw bad('the stream has no schema message');
    const schemaEnd = frame[0] + frame[1];
    const { schema, struct, fixed, bodyLength } = this.#schemaEntry(bytes, frame[0], schemaEnd);
    let pos = schemaEnd + bodyLength;
    if (pos > n) throw bad('truncated stream: the schema message body is cut off');

    // 2. Dictionary and record batch messages, up to the end-of-stream marker.
    const batches: RecordBatch[] = [];
    let dictionaries: Map<number, Vector> | null = null;
    for (;;) {
      frame = readFrame(dv, pos, n);
      if (frame === null) break;
      const metaEnd = frame[0] + frame[1];
      const r = new FlatReader(bytes.subarray(frame[0], metaEnd));
      const info = readMessage(r);
      const bodyEnd = metaEnd + info.bodyLength;
      if (bodyEnd > n) throw bad(`truncated stream: a ${info.bodyLength}-byte message body at ${metaEnd} is cut off`);
      let body = bytes.subarray(metaEnd, bodyEnd);
      // Typed arrays need aligned offsets; apache-arrow's reader copies a misaligned body too.
      // Streams written by encodeTable into store objects are always aligned.
      if (body.byteOffset % 8 !== 0) body = body.slice();
      pos = bodyEnd;

      if (info.headerType === HeaderType.RecordBatch && info.header !== 0) {
        const h = readRecordBatch(r, info.header);
        if (h.compressed) return this.#fallback(bytes);
        checkBuffers(h, body.byteLength);
        let children: Data[];
        if (fixed !== null && h.nodes.length === fixed.length && h.buffers.length === 2 * fixed.length) {
          children = loadFixed(body, h, fixed);
        } else {
          dictionaries ??= new Map();
          children = load(body, h, dictionaries, schema, schema.fields);
        }
        for (let i = 0; i < children.length; i++) {
          if (children[i].length !== h.length) {
            throw bad(`column ${i} has ${children[i].length} values in a record batch of ${h.length} rows`);
          }
        }
        const data = new Data(struct, 0, h.length, 0, [undefined, undefined, NO_BITMAP], children) as Data<Struct>;
        batches.push(makeBatch(schema, data, info.metadata));
      } else if (info.headerType === HeaderType.DictionaryBatch && info.header !== 0) {
        const d = readDictionaryBatch(r, info.header);
        if (d.data.compressed) return this.#fallback(bytes);
        checkBuffers(d.data, body.byteLength);
        const type = schema.dictionaries.get(d.id);
        if (type === undefined) throw bad(`dictionary batch for unknown dictionary id ${d.id}`);
        dictionaries ??= new Map();
        const data = load(body, d.data, dictionaries, schema, [type]);
        const previous = dictionaries.get(d.id);
        const vector = previous !== undefined && d.isDelta ? previous.concat(new Vector(data)) : new Vector(data);
        dictionaries.set(d.id, vector.memoize());
      } else {
        throw bad(`unexpected ${headerName(info.headerType)} message in the stream`);
      }
    }
    this.#stats.decodes++;
    this.#stats.batches += batches.length;
    return makeTable(schema, batches);
  }

  #fallback(bytes: Uint8Array): Table {
    this.#stats.fallbacks++;
    this.#stats.decodes++;
    return tableFromIPC(bytes);
  }
}

/** Any columns, through apache-arrow's VectorLoader (what tableFromIPC uses). */
function load(
  body: Uint8Array,
  h: BatchInfo,
  dictionaries: Map<number, Vector>,
  schema: Schema,
  types: (DataType | Field)[],
): Data[] {
  const loader = new VectorLoader(
    body,
    h.nodes as FieldNode[],
    h.buffers as BufferRegion[],
    dictionaries,
    schema.metadataVersion,
    h.variadicBufferCounts,
  );
  return loader.visitMany(types);
}

/** The columns of a batch of fixed-width columns: zero-copy views of body. */
function loadFixed(body: Uint8Array, h: BatchInfo, plan: FixedColumn[]): Data[] {
  const children = new Array<Data>(plan.length);
  const ab = body.buffer;
  const base = body.byteOffset;
  for (let i = 0; i < plan.length; i++) {
    const { type, ArrayType } = plan[i];
    const node = h.nodes[i];
    const validity = h.buffers[2 * i];
    const data = h.buffers[2 * i + 1];
    const nullBitmap =
      node.nullCount > 0 && validity.length > 0
        ? new Uint8Array(ab, base + validity.offset, validity.length)
        : NO_BITMAP;
    const bpe = ArrayType.BYTES_PER_ELEMENT;
    const values = new ArrayType(ab, base + data.offset, Math.floor(data.length / bpe));
    children[i] = new Data(type, 0, node.length, node.nullCount, [undefined, values, nullBitmap] as never);
  }
  return children;
}
