// Arrow IPC stream encoding without building the stream in memory first.
//
// How: apache-arrow's own RecordBatchStreamWriter does the work (schema message, dictionary
// batches, record batch messages with their flatbuffer headers and 8-byte padded bodies, the
// end-of-stream marker), driven synchronously over a Table. We subclass it and override its
// protected `_write(chunk)` hook (declared in writer.d.ts) so that, instead of queueing chunks
// into its AsyncByteQueue sink and concatenating them, it only records each chunk *by
// reference*: the small framing/flatbuffer/padding pieces the writer just made, and the
// column buffers themselves (VectorAssembler hands them over as views of the columns'
// memory). The result knows its exact byteLength, so the caller can allocate the object in
// shared memory with that size and copy each piece once, straight into it.
//
// Why this and not Message.encode + our own body layout: the writer is the code path of
// tableToIPC, so the bytes are the same as apache-arrow's (and pyarrow reads them), for every
// type it supports (dictionaries, nested, views, custom metadata) — we reimplement nothing.
// The cost is a dependency on two protected members (`_write`, `_writeSchema`) and the
// protected `_started`/`_position` fields, all part of the published typings; the tests compare
// our bytes with tableToIPC's, so a change in apache-arrow shows up there.
//
// Alignment: every message's metadata is padded to a multiple of 8 and every body buffer is
// padded to 8 (the writer does both), so every buffer starts at a multiple of 8 from the start
// of the stream; store objects start 64-byte aligned, so the columns read back from them are
// aligned typed-array views (zero-copy) for every element width.
//
// Columns over released memory (views of an object that was released read as empty while the
// Data keeps its length) would encode into a corrupt stream: encode refuses them, and
// writeInto re-checks the pieces' total size.
//
// Schema caching: `_writeSchema` is overridden to emit the framed schema message from a cache
// when the schema equals the previous one (strict comparison: names, types with all their
// parameters, nullability, and metadata), so consecutive batches of one stream do not pay
// for building the schema flatbuffer every time.
import { Data, DataType, Field, Message, RecordBatch, RecordBatchStreamWriter, Schema, Table } from 'apache-arrow';
import type { ArrayBufferViewInput } from 'apache-arrow/util/buffer';
import { StoreError, invalidArgument } from '../errors.js';
import { describe } from '../object-id.js';

/** An Arrow IPC stream, not yet materialised: its size, and a way to write it once. */
export interface EncodedTable {
  /** Exact size of the stream in bytes (a multiple of 8). */
  readonly byteLength: number;
  /**
   * Writes the stream to target[0, byteLength). Column buffers are copied straight from the
   * table's memory; the table's columns must not change between encoding and writing.
   */
  writeInto(target: Uint8Array): void;
  /** The stream in a new Uint8Array (for tests and callers that do want a copy). */
  toUint8Array(): Uint8Array;
}

export interface TableEncoderStats {
  /** Tables encoded. */
  encodes: number;
  /** Schema messages built (the rest came from the cache). */
  schemaEncodes: number;
  /** Tables encoded from the previous table's message layout (see TableEncoder). */
  layoutHits: number;
}

class EncodedStream implements EncodedTable {
  readonly byteLength: number;
  readonly #pieces: readonly Uint8Array[];

  constructor(pieces: readonly Uint8Array[], byteLength: number) {
    this.#pieces = pieces;
    this.byteLength = byteLength;
  }

  /** The stream's bytes as pieces (views of the table's buffers), checked against byteLength. */
  pieces(): readonly Uint8Array[] {
    let total = 0;
    for (const p of this.#pieces) total += p.byteLength;
    if (total !== this.byteLength) {
      throw new StoreError(
        'ERR_INVALID_ARGUMENT',
        `the table's buffers changed since it was encoded (${total} bytes now, ${this.byteLength} then): ` +
          'a column is probably a view of an object that was released',
      );
    }
    return this.#pieces;
  }

  writeInto(target: Uint8Array): void {
    if (!(target instanceof Uint8Array)) {
      throw invalidArgument(`writeInto: target must be a Uint8Array or Buffer, got ${describe(target)}`);
    }
    if (target.byteLength < this.byteLength) {
      throw invalidArgument(
        `writeInto: target has ${target.byteLength} bytes, the Arrow stream needs ${this.byteLength}` +
          (target.byteLength === 0 ? ' (a detached view of a sealed or released object reads as 0 bytes)' : ''),
      );
    }
    let offset = 0;
    for (const p of this.pieces()) {
      target.set(p, offset);
      offset += p.byteLength;
    }
  }

  toUint8Array(): Uint8Array {
    const out = new Uint8Array(this.byteLength);
    this.writeInto(out);
    return out;
  }
}

/**
 * @internal The pieces of an encoded table (views of its buffers; they add up to byteLength),
 * for a gather write such as ObjectStore.put.
 */
export function piecesOf(table: EncodedTable): readonly Uint8Array[] {
  return table instanceof EncodedStream ? table.pieces() : [table.toUint8Array()];
}

/** Collects the writer's output as a list of views instead of a byte queue. */
class PieceWriter extends RecordBatchStreamWriter {
  readonly pieces: Uint8Array[] = [];
  byteLength = 0;
  readonly #schemaMessage: (schema: Schema) => Uint8Array;

  constructor(schemaMessage: (schema: Schema) => Uint8Array) {
    super({ autoDestroy: true, writeLegacyIpcFormat: false, compressionType: null });
    this.#schemaMessage = schemaMessage;
  }

  protected override _write(chunk: ArrayBufferViewInput): this {
    if (!this._started) return this;
    if (!ArrayBuffer.isView(chunk)) {
      throw new TypeError(`unexpected chunk from the Arrow writer: ${describe(chunk)}`);
    }
    const bytes =
      chunk.constructor === Uint8Array
        ? (chunk as Uint8Array)
        : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (bytes.byteLength > 0) {
      this.pieces.push(bytes);
      this.byteLength += bytes.byteLength;
      this._position += bytes.byteLength;
    }
    return this;
  }

  protected override _writeSchema(schema: Schema): this {
    return this._write(this.#schemaMessage(schema));
  }
}

/** The framed schema message exactly as RecordBatchWriter._writeMessage writes it. */
function frameSchemaMessage(schema: Schema): Uint8Array {
  const flatbuffer = Message.encode(Message.from(schema));
  const aligned = (flatbuffer.byteLength + 8 + 7) & ~7;
  const out = new Uint8Array(aligned);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, -1, true); // continuation marker
  dv.setInt32(4, aligned - 8, true); // metadata size, padding included
  out.set(flatbuffer, 8);
  return out;
}

/**
 * The pieces of a stream of one record batch whose columns are all fixed-width numbers with no
 * nulls. For such a batch the messages depend only on the schema and the row count, so the
 * next batch of the same shape is encoded by swapping in its column buffers.
 */
interface Layout {
  schema: Schema;
  numRows: number;
  pieces: readonly Uint8Array[];
  /** pieces[columnPieces[i]] is column i's values. */
  columnPieces: readonly number[];
  byteLength: number;
}

/** Column i's values as bytes, if every column is a null-free Int or Float; else null. */
function plainColumns(t: Table): Uint8Array[] | null {
  if (t.batches.length !== 1) return null;
  const children = t.batches[0].data.children;
  const out: Uint8Array[] = [];
  for (const d of children) {
    if (d.nullCount !== 0 || !(DataType.isFloat(d.type) || DataType.isInt(d.type))) return null;
    const v = d.values as unknown;
    // Anything unusual (a released column among them) takes the writer's path, which checks.
    if (!ArrayBuffer.isView(v) || isDetached(v) || !('BYTES_PER_ELEMENT' in v)) return null;
    const stride = (v.BYTES_PER_ELEMENT as number) * (d.stride ?? 1);
    out.push(new Uint8Array(v.buffer, v.byteOffset + d.offset * stride, d.length * stride));
  }
  return out;
}

/**
 * Encodes tables into Arrow IPC streams (see encodeTable), caching the schema message between
 * calls: reuse one encoder for a stream of batches that share a schema. Batches of plain
 * numeric columns that keep the previous one's shape skip apache-arrow's writer altogether
 * (the cost of a small batch is otherwise almost all flatbuffer building).
 */
export class TableEncoder {
  #schema: Schema | null = null;
  #message: Uint8Array | null = null;
  #layout: Layout | null = null;
  readonly #stats: TableEncoderStats = { encodes: 0, schemaEncodes: 0, layoutHits: 0 };

  /** Gathers the stream's pieces (by reference) and its exact size; copies nothing. */
  encode(table: Table | RecordBatch): EncodedTable {
    let t: Table;
    if (table instanceof Table) t = table;
    else if (table instanceof RecordBatch) t = new Table(table.schema, [table]);
    else {
      throw invalidArgument(
        `expected an apache-arrow Table or RecordBatch, got ${describe(table)}` +
          ' (it must come from the same apache-arrow module that shmstore imports)',
      );
    }
    const columns = plainColumns(t);
    const fast = columns === null ? null : this.#fromLayout(t, columns);
    if (fast !== null) return fast;
    checkAttached(t);
    const writer = new PieceWriter((schema) => this.#schemaMessageFor(schema));
    try {
      writer.writeAll(t);
    } catch (err) {
      if (err instanceof StoreError) throw err;
      const why = err instanceof Error ? err.message : String(err);
      throw new StoreError('ERR_INVALID_ARGUMENT', `cannot encode the table as an Arrow IPC stream: ${why}`, { cause: err });
    }
    this.#stats.encodes++;
    this.#layout = columns === null ? null : layoutOf(t, columns, writer.pieces, writer.byteLength);
    return new EncodedStream(writer.pieces, writer.byteLength);
  }

  #fromLayout(t: Table, columns: Uint8Array[]): EncodedTable | null {
    const l = this.#layout;
    if (l === null || t.numRows !== l.numRows || t.numRows === 0 || columns.length !== l.columnPieces.length) return null;
    if (!sameSchema(t.schema, l.schema)) return null;
    const pieces = l.pieces.slice();
    for (let i = 0; i < columns.length; i++) {
      // A detached (released) column reads as 0 bytes: no match, and the writer path refuses it.
      if (columns[i].byteLength !== pieces[l.columnPieces[i]].byteLength) return null;
      pieces[l.columnPieces[i]] = columns[i];
    }
    this.#stats.encodes++;
    this.#stats.layoutHits++;
    return new EncodedStream(pieces, l.byteLength);
  }

  get stats(): Readonly<TableEncoderStats> {
    return { ...this.#stats };
  }

  #schemaMessageFor(schema: Schema): Uint8Array {
    if (this.#message !== null && this.#schema !== null && sameSchema(schema, this.#schema)) {
      this.#schema = schema; // the next identical object hits the identity check
      return this.#message;
    }
    const message = frameSchemaMessage(schema);
    this.#stats.schemaEncodes++;
    this.#schema = schema;
    this.#message = message;
    return message;
  }
}

/** Where the writer put each column's values, if it put every one as a piece of its own. */
function layoutOf(t: Table, columns: Uint8Array[], pieces: readonly Uint8Array[], byteLength: number): Layout | null {
  const columnPieces: number[] = [];
  for (const c of columns) {
    if (c.byteLength === 0) return null;
    const at = pieces.findIndex(
      (p, i) => p.buffer === c.buffer && p.byteOffset === c.byteOffset && p.byteLength === c.byteLength && !columnPieces.includes(i),
    );
    if (at < 0) return null;
    columnPieces.push(at);
  }
  return { schema: t.schema, numRows: t.numRows, pieces, columnPieces, byteLength };
}

const defaultEncoder = new TableEncoder();

/**
 * The Arrow IPC stream of `table` (schema message, dictionary and record batch messages,
 * end-of-stream marker), as pieces: `byteLength` is its exact size, `writeInto` copies it once
 * into the target. The bytes equal tableToIPC(table, 'stream')'s. Uses a shared TableEncoder,
 * so consecutive tables with one schema reuse its encoded schema message.
 */
export function encodeTable(table: Table | RecordBatch): EncodedTable {
  return defaultEncoder.encode(table);
}

// ---- columns over released memory -------------------------------------------------------
// A table decoded from a store object is a set of views of its memory; once the object is
// released those views are detached and read as empty, while the Data still claims its old
// length. Encoding that would produce a corrupt stream, so it is refused. (A detached
// ArrayBuffer has byteLength 0 and cannot even be sliced: that tells it apart from an
// empty one.)

const hasDetachedGetter = 'detached' in ArrayBuffer.prototype; // Node >= 22

function isDetached(view: ArrayBufferView | undefined | null): boolean {
  if (view == null || view.byteLength !== 0) return false;
  const ab = view.buffer;
  if (ab.byteLength !== 0 || !(ab instanceof ArrayBuffer)) return false;
  if (hasDetachedGetter) return (ab as ArrayBuffer & { detached: boolean }).detached;
  try {
    ab.slice(0, 0);
    return false;
  } catch {
    return true;
  }
}

function checkData(data: Data | undefined, name: string, depth: number): void {
  if (data == null || depth > 64) return;
  const d = data as Data & { variadicBuffers?: ReadonlyArray<Uint8Array> };
  // Only an empty buffer can be a detached one, and only a column with values needs them;
  // the validity bitmap is written only when there are nulls.
  if (
    (d.length > 0 &&
      (isDetached(d.values as ArrayBufferView | undefined) ||
        isDetached(d.valueOffsets as ArrayBufferView | undefined) ||
        isDetached(d.typeIds as ArrayBufferView | undefined) ||
        (d.nullCount > 0 && isDetached(d.nullBitmap as ArrayBufferView | undefined)))) ||
    (d.variadicBuffers !== undefined && d.variadicBuffers.length > 0 && d.variadicBuffers.some((b) => isDetached(b)))
  ) {
    throw new StoreError(
      'ERR_INVALID_ARGUMENT',
      `column '${name}' is a view of memory that was released (its buffers are detached): ` +
        'encode tables before releasing the objects they were read from',
    );
  }
  const children = d.children;
  if (children !== undefined) for (let i = 0; i < children.length; i++) checkData(children[i], name, depth + 1);
  if (d.dictionary) for (const chunk of d.dictionary.data) checkData(chunk, name, depth + 1);
}

function checkAttached(table: Table): void {
  const fields = table.schema.fields;
  for (const batch of table.batches) {
    const children = batch.data?.children ?? [];
    for (let i = 0; i < children.length; i++) checkData(children[i], fields[i]?.name ?? String(i), 0);
  }
}

// ---- strict schema equality -------------------------------------------------------------
// apache-arrow's compareSchemas ignores metadata and some type parameters (Decimal's scale
// and precision, for one), so it cannot decide whether a cached schema message is still the
// right one. This compares everything the schema message encodes.

function sameSchema(a: Schema, b: Schema): boolean {
  if (a === b) return true;
  return a.metadataVersion === b.metadataVersion && sameMap(a.metadata, b.metadata) && sameFields(a.fields, b.fields, 0);
}

function sameFields(a: readonly Field[], b: readonly Field[], depth: number): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!sameField(a[i], b[i], depth)) return false;
  return true;
}

function sameField(a: Field, b: Field, depth: number): boolean {
  if (a === b) return true;
  return a.name === b.name && a.nullable === b.nullable && sameMap(a.metadata, b.metadata) && sameType(a.type, b.type, depth + 1);
}

function sameType(a: DataType, b: DataType, depth: number): boolean {
  if (a === b) return true;
  if (depth > 64 || a.typeId !== b.typeId) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  const ra = a as unknown as Record<string, unknown>;
  const rb = b as unknown as Record<string, unknown>;
  for (const k of ka) if (!(k in rb) || !sameValue(ra[k], rb[k], depth)) return false;
  return true;
}

function sameValue(x: unknown, y: unknown, depth: number): boolean {
  if (x === y) return true;
  if (x instanceof Field) return y instanceof Field && sameField(x, y, depth);
  if (x instanceof DataType) return y instanceof DataType && sameType(x, y, depth);
  if (Array.isArray(x) || ArrayBuffer.isView(x)) {
    const xs = x as ArrayLike<unknown>;
    const ys = y as ArrayLike<unknown>;
    if (!(Array.isArray(y) || ArrayBuffer.isView(y)) || xs.length !== ys.length) return false;
    for (let i = 0; i < xs.length; i++) if (!sameValue(xs[i], ys[i], depth + 1)) return false;
    return true;
  }
  if (x !== null && typeof x === 'object' && y !== null && typeof y === 'object') {
    if (depth > 64 || Object.getPrototypeOf(x) !== Object.getPrototypeOf(y)) return false;
    const rx = x as Record<string, unknown>;
    const ry = y as Record<string, unknown>;
    const kx = Object.keys(rx);
    if (kx.length !== Object.keys(ry).length) return false;
    for (const k of kx) if (!(k in ry) || !sameValue(rx[k], ry[k], depth + 1)) return false;
    return true;
  }
  return false; // NaN never appears in a type's parameters
}

/** Equal entries in the same order (the order is encoded). */
function sameMap(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  if (a.size === 0) return true;
  const ib = b.entries();
  for (const [k, v] of a) {
    const e = ib.next().value as [string, string];
    if (e[0] !== k || e[1] !== v) return false;
  }
  return true;
}
