// encodeTable / TableEncoder / TableDecoder against apache-arrow's own tableToIPC and
// tableFromIPC, without a store: byte identity, schema caching on both sides, every kind of
// column, the compressed fallback, and bad input.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  Bool,
  CompressionType,
  Decimal,
  Dictionary,
  Field,
  Float64,
  Int32,
  Int64,
  List,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Table,
  TimestampMillisecond,
  Utf8,
  compressionRegistry,
  makeData,
  makeVector,
  tableFromArrays,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow';
import { seededRandom } from '../src/cli/dataset.js';
import { assertTablesEqual, plain } from './helpers/arrow.js';
import { StoreError } from '../src/errors.js';
import { TableDecoder } from '../src/arrow/decoder.js';
import { TableEncoder, encodeTable } from '../src/arrow/encoder.js';

// ---- helpers --------------------------------------------------------------------------

const rng = seededRandom; // deterministic test data

const isInvalid = (err: unknown) => err instanceof StoreError && err.code === 'ERR_INVALID_ARGUMENT';

function xyBatch(n: number, seed: number, names: [string, string] = ['x', 'y']): Table {
  const r = rng(seed);
  const x = Float64Array.from({ length: n }, () => r());
  const y = Float64Array.from(x, (v) => 2 + 3 * v);
  return tableFromArrays({ [names[0]]: x, [names[1]]: y });
}

/** A nullable Float64 + Int32 batch: the fixed-width fast path with validity bitmaps. */
function nullableBatch(n: number, seed: number): Table {
  const r = rng(seed);
  return new Table({
    v: vectorFromArray(Array.from({ length: n }, () => (r() < 0.3 ? null : r())), new Float64()),
    k: vectorFromArray(Array.from({ length: n }, (_, i) => (i % 5 === 0 ? null : i - n)), new Int32()),
  });
}

/** Columns of (almost) every kind apache-arrow writes, over 3 batches. */
function kitchenSink(): Table {
  const parts: Table[] = [];
  for (let b = 0; b < 3; b++) {
    const n = 5 + 4 * b;
    const idx = Array.from({ length: n }, (_, i) => i);
    parts.push(
      new Table({
        f64: vectorFromArray(idx.map((i) => i / 3 + b), new Float64()),
        i32: vectorFromArray(idx.map((i) => (i % 4 === 0 ? null : i * b)), new Int32()),
        i64: vectorFromArray(idx.map((i) => BigInt(i) * 10_000_000_000n), new Int64()),
        bool: vectorFromArray(idx.map((i) => (i % 3 === 0 ? null : i % 2 === 0)), new Bool()),
        str: vectorFromArray(idx.map((i) => (i % 5 === 4 ? null : `s${b}-${i}-ü`)), new Utf8()),
        ts: vectorFromArray(idx.map((i) => 1_700_000_000_000 + i), new TimestampMillisecond()),
        dict: vectorFromArray(idx.map((i) => ['red', 'green', 'blue'][i % 3]), new Dictionary(new Utf8(), new Int32())),
        list: vectorFromArray(
          idx.map((i) => (i % 4 === 3 ? null : Array.from({ length: i % 3 }, (_, j) => i + j))),
          new List(new Field('item', new Int32(), true)),
        ),
        struct: vectorFromArray(
          idx.map((i) => ({ a: i, b: `b${i}` })),
          new Struct([new Field('a', new Int32(), true), new Field('b', new Utf8(), true)]),
        ),
      }),
    );
  }
  return parts[0].concat(...parts.slice(1));
}

function withMetadata(table: Table, schemaMeta: [string, string][], fieldMeta: [string, string][]): Table {
  const fields = table.schema.fields.map((f, i) => (i === 0 ? f.clone({ metadata: new Map(fieldMeta) }) : f));
  const schema = new Schema(fields, new Map(schemaMeta));
  return new Table(
    schema,
    table.batches.map((b) => new RecordBatch(schema, b.data)),
  );
}

function decimalTable(scale: number): Table {
  const words = new Uint32Array(4 * 3);
  words[0] = 12345;
  words[4] = 678;
  words[8] = 9;
  const type = new Decimal(scale, 10, 128);
  return new Table({ d: makeVector(makeData({ type, length: 3, data: words })) });
}

// ---- encoding ---------------------------------------------------------------------------

test('encodeTable writes exactly the bytes of tableToIPC(table, "stream")', () => {
  const cases: [string, Table | RecordBatch][] = [
    ['x,y Float64', xyBatch(64, 1)],
    ['nullable', nullableBatch(100, 2)],
    ['kitchen sink (3 batches, dictionary, nested, strings)', kitchenSink()],
    ['sliced', kitchenSink().slice(3, 14)],
    ['empty', xyBatch(64, 3).slice(0, 0)],
    ['metadata', withMetadata(xyBatch(8, 4), [['origin', 'test'], ['n', '8']], [['unit', 'm']])],
    ['decimal', decimalTable(2)],
    ['record batch', kitchenSink().batches[2]],
  ];
  for (const [what, table] of cases) {
    const enc = encodeTable(table);
    const expected = tableToIPC(table instanceof RecordBatch ? new Table(table) : table, 'stream');
    assert.equal(enc.byteLength, expected.byteLength, `${what}: byteLength`);
    assert.equal(enc.byteLength % 8, 0, `${what}: 8-byte multiple`);
    const bytes = enc.toUint8Array();
    assert.ok(Buffer.from(bytes).equals(expected), `${what}: identical bytes`);
    // writeInto a larger target writes the prefix and nothing else
    const big = new Uint8Array(enc.byteLength + 16).fill(0xee);
    enc.writeInto(big);
    assert.ok(Buffer.from(big.subarray(0, enc.byteLength)).equals(expected), `${what}: writeInto`);
    assert.ok(big.subarray(enc.byteLength).every((b) => b === 0xee), `${what}: nothing past byteLength`);
    assertTablesEqual(tableFromIPC(bytes), table instanceof RecordBatch ? new Table(table) : table, what);
  }
});

test('encodeTable refers to the column buffers instead of copying them', () => {
  const table = xyBatch(64, 5);
  const enc = encodeTable(table);
  const x = table.getChild('x')?.data[0].values as Float64Array;
  x[0] = 42.5; // after encoding, before writing: the write sees the column's memory
  const back = tableFromIPC(enc.toUint8Array());
  assert.equal(back.getChild('x')?.get(0), 42.5);
});

test('writeInto: bad targets are ERR_INVALID_ARGUMENT', () => {
  const enc = encodeTable(xyBatch(16, 6));
  assert.throws(() => enc.writeInto(new Uint8Array(enc.byteLength - 1)), isInvalid);
  assert.throws(() => enc.writeInto(new Uint8Array(0)), isInvalid);
  assert.throws(() => enc.writeInto('nope' as unknown as Uint8Array), isInvalid);
  assert.throws(() => enc.writeInto(new ArrayBuffer(4096) as unknown as Uint8Array), isInvalid);
});

test('encodeTable rejects what is not a Table or RecordBatch', () => {
  for (const bad of [null, undefined, 0, 'x', {}, [], new Uint8Array(16), { schema: {}, batches: [] }, xyBatch(4, 1).getChild('x')]) {
    assert.throws(() => encodeTable(bad as unknown as Table), isInvalid, String(bad));
  }
});

test('TableEncoder caches the schema message, strictly', () => {
  const enc = new TableEncoder();
  for (let i = 0; i < 50; i++) {
    const t = xyBatch(10 + i, 100 + i); // a new Schema object every time, same content
    assert.ok(Buffer.from(enc.encode(t).toUint8Array()).equals(tableToIPC(t, 'stream')));
  }
  assert.deepEqual(enc.stats, { encodes: 50, schemaEncodes: 1, layoutHits: 0 });
  // Each of these differs from the previous one in what the schema message encodes; some of
  // the differences are invisible to apache-arrow's compareSchemas (metadata, Decimal scale).
  const changes: Table[] = [
    xyBatch(4, 1, ['x', 'z']),
    withMetadata(xyBatch(4, 1, ['x', 'z']), [['a', '1']], []),
    withMetadata(xyBatch(4, 1, ['x', 'z']), [['a', '2']], []),
    withMetadata(xyBatch(4, 1, ['x', 'z']), [['a', '2']], [['f', '1']]),
    decimalTable(2),
    decimalTable(3),
    nullableBatch(8, 1),
  ];
  let expected = 1;
  for (const t of changes) {
    const bytes = enc.encode(t).toUint8Array();
    expected++;
    assert.equal(enc.stats.schemaEncodes, expected);
    assert.ok(Buffer.from(bytes).equals(tableToIPC(t, 'stream')), 'bytes after a schema change');
    assertTablesEqual(tableFromIPC(bytes), t);
  }
  // back to the same schema: cached again
  enc.encode(nullableBatch(9, 2));
  assert.equal(enc.stats.schemaEncodes, expected);
});

test('batches of the previous shape reuse its message layout, byte for byte', () => {
  const enc = new TableEncoder();
  const check = (t: Table) => assert.ok(Buffer.from(enc.encode(t).toUint8Array()).equals(tableToIPC(t, 'stream')));
  for (let i = 0; i < 20; i++) check(xyBatch(64, i)); // same shape, new values every time
  assert.equal(enc.stats.layoutHits, 19);
  check(xyBatch(65, 99)); // another row count: the writer again
  assert.equal(enc.stats.layoutHits, 19);
  check(xyBatch(65, 100));
  assert.equal(enc.stats.layoutHits, 20);
  check(xyBatch(65, 101, ['x', 'z'])); // another schema
  check(nullableBatch(65, 1)); // nulls: never from a layout
  check(nullableBatch(65, 2));
  assert.equal(enc.stats.layoutHits, 20);
  const sliced = xyBatch(200, 5).slice(10, 75); // an offset into the columns
  check(sliced);
  check(xyBatch(200, 6).slice(20, 85));
});

// ---- decoding ---------------------------------------------------------------------------

test('TableDecoder equals tableFromIPC on many batches and parses the schema once', () => {
  const dec = new TableDecoder();
  const enc = new TableEncoder();
  const r = rng(7);
  for (let i = 0; i < 300; i++) {
    // (an empty batch is a slice: tableFromArrays of empty arrays makes the fields nullable)
    const t = i % 50 === 0 ? xyBatch(5, i).slice(0, 0) : xyBatch(1 + Math.floor(r() * 200), i);
    const bytes = enc.encode(t).toUint8Array();
    assertTablesEqual(dec.decode(bytes), tableFromIPC(bytes), `batch ${i}`);
  }
  assert.equal(dec.stats.schemaParses, 1);
  assert.equal(dec.stats.decodes, 300);
  assert.equal(dec.stats.fallbacks, 0);
  // nullable fixed-width columns, several batches per message
  const dec2 = new TableDecoder();
  for (let i = 0; i < 50; i++) {
    const t = nullableBatch(1 + i * 3, i).concat(nullableBatch(7, 1000 + i));
    const bytes = encodeTable(t).toUint8Array();
    const got = dec2.decode(bytes);
    assert.equal(got.batches.length, 2);
    assertTablesEqual(got, tableFromIPC(bytes), `nullable ${i}`);
    assertTablesEqual(got, t, `nullable ${i} vs input`);
  }
  assert.equal(dec2.stats.schemaParses, 1);
});

test('TableDecoder re-parses when the schema changes mid-stream', () => {
  const dec = new TableDecoder();
  const a = (i: number) => xyBatch(10, i, ['x', 'y']);
  const b = (i: number) => xyBatch(10, i, ['x', 'z']); // same size of schema message, other bytes
  const c = (i: number) => nullableBatch(10, i);
  const seq = [a, a, b, b, b, a, c, c, a, b];
  const seen = new Set<unknown>();
  seq.forEach((make, i) => {
    const t = make(i);
    const bytes = encodeTable(t).toUint8Array();
    const got = dec.decode(bytes);
    assertTablesEqual(got, tableFromIPC(bytes), `message ${i}`);
    assertTablesEqual(got, t, `message ${i} vs input`);
    assert.deepEqual(got.schema.names, t.schema.names);
    seen.add(make);
    // a schema seen before is still cached (up to 4 of them): parsed once each
    assert.equal(dec.stats.schemaParses, seen.size, `parses after message ${i}`);
  });
  assert.equal(dec.stats.schemaParses, 3);
  // More distinct schemas in rotation than the cache holds: every one is parsed again.
  const names = ['p', 'q', 'r', 's', 't', 'u'];
  let parses = dec.stats.schemaParses;
  for (let round = 0; round < 2; round++) {
    for (const name of names) {
      const t = xyBatch(3, round, ['x', name]);
      const got = dec.decode(encodeTable(t).toUint8Array());
      assert.deepEqual(got.schema.names, ['x', name]);
      assertTablesEqual(got, t);
      assert.equal(dec.stats.schemaParses, ++parses);
    }
  }
  // schemas that differ only in metadata are different schema messages too
  const m1 = withMetadata(a(1), [['k', 'v1']], []);
  const m2 = withMetadata(a(1), [['k', 'v2']], []);
  assert.equal(dec.decode(encodeTable(m1).toUint8Array()).schema.metadata.get('k'), 'v1');
  assert.equal(dec.decode(encodeTable(m2).toUint8Array()).schema.metadata.get('k'), 'v2');
  assert.equal(dec.decode(encodeTable(m1).toUint8Array()).schema.metadata.get('k'), 'v1');
  assert.equal(dec.stats.schemaParses, parses + 2);
  dec.reset();
  dec.decode(encodeTable(m2).toUint8Array());
  assert.equal(dec.stats.schemaParses, parses + 3);
});

test('TableDecoder reads dictionaries, nested, strings, 64-bit and temporal columns', () => {
  const dec = new TableDecoder();
  const t = kitchenSink();
  for (let i = 0; i < 3; i++) {
    const bytes = encodeTable(t).toUint8Array();
    const got = dec.decode(bytes);
    assertTablesEqual(got, tableFromIPC(bytes), 'kitchen sink vs tableFromIPC');
    assertTablesEqual(got, t, 'kitchen sink vs input');
    assert.equal(got.getChild('dict')?.get(1), 'green');
    assert.deepEqual(plain(got.getChild('list')?.get(2)), [2, 3]);
  }
  assert.equal(dec.stats.schemaParses, 1);
  assert.equal(dec.stats.fallbacks, 0);
  for (const [what, table] of [
    ['sliced', t.slice(2, 17)],
    ['metadata', withMetadata(xyBatch(3, 3), [['a', 'b']], [['c', 'd']])],
    ['decimal', decimalTable(4)],
    ['empty', t.slice(0, 0)],
  ] as const) {
    const bytes = encodeTable(table).toUint8Array();
    assertTablesEqual(dec.decode(bytes), tableFromIPC(bytes), what);
  }
  // record batch custom metadata survives too
  const rb = new RecordBatch(t.schema, t.batches[0].data, new Map([['batch', '0']]));
  const bytes = encodeTable(rb).toUint8Array();
  assert.equal(dec.decode(bytes).batches[0].metadata.get('batch'), '0');
  assert.equal(tableFromIPC(bytes).batches[0].metadata.get('batch'), '0');
});

test('TableDecoder falls back to tableFromIPC for compressed bodies', () => {
  // A stand-in ZSTD codec whose "compression" never pays off, so the writer stores every
  // buffer uncompressed (length -1) in a compressed-format stream and decode is never called.
  const magic = [0x28, 0xb5, 0x2f, 0xfd];
  compressionRegistry.set(CompressionType.ZSTD, {
    encode(data: Uint8Array): Uint8Array {
      const out = new Uint8Array(data.byteLength + 8);
      out.set(magic);
      out.set(data, 8);
      return out;
    },
    decode(): Uint8Array {
      throw new Error('the test codec cannot decompress');
    },
  });
  try {
    const dec = new TableDecoder();
    const t = xyBatch(32, 9).concat(xyBatch(5, 10));
    const bytes = tableToIPC(t, 'stream', CompressionType.ZSTD);
    assert.ok(!Buffer.from(bytes).equals(tableToIPC(t, 'stream')), 'the stream is in the compressed format');
    assertTablesEqual(dec.decode(bytes), t);
    assert.equal(dec.stats.fallbacks, 1);
  } finally {
    compressionRegistry.set(CompressionType.ZSTD, null as never);
  }
});

test('TableDecoder reads misaligned input (copying the body) and the pre-0.15 framing', () => {
  const stream = encodeTable(nullableBatch(40, 11)).toUint8Array();
  const shifted = new Uint8Array(stream.byteLength + 4).subarray(4);
  shifted.set(stream);
  const dec = new TableDecoder();
  const got = dec.decode(shifted);
  assertTablesEqual(got, tableFromIPC(stream));
  assert.notEqual((got.getChild('v')?.data[0].values as Float64Array).buffer, shifted.buffer, 'copied, not misaligned');
  const legacy = RecordBatchStreamWriter.writeAll(kitchenSink(), { writeLegacyIpcFormat: true }).toUint8Array(true);
  assertTablesEqual(dec.decode(legacy), kitchenSink(), 'legacy framing');
});

test('a stream that ends without the end-of-stream marker, or holds only a schema', () => {
  const dec = new TableDecoder();
  const full = encodeTable(xyBatch(12, 12)).toUint8Array();
  const noEos = full.subarray(0, full.byteLength - 8);
  assertTablesEqual(dec.decode(noEos), tableFromIPC(noEos));
  const schemaOnly = encodeTable(xyBatch(12, 12).slice(0, 0)).toUint8Array();
  const got = dec.decode(schemaOnly);
  assert.equal(got.numRows, 0);
  assert.deepEqual(got.schema.names, ['x', 'y']);
});

test('bad input is ERR_INVALID_ARGUMENT, never another error or a crash', () => {
  const dec = new TableDecoder();
  for (const bad of [null, undefined, 42, 'bytes', [1, 2, 3], new ArrayBuffer(64), new Float64Array(8), {}]) {
    assert.throws(() => dec.decode(bad as unknown as Uint8Array), isInvalid, String(bad));
  }
  const good = encodeTable(kitchenSink()).toUint8Array();
  const eos = Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0);
  const cases: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['end-of-stream only', eos],
    ['text', new TextEncoder().encode('definitely not an arrow stream, but quite long enough')],
    ['zeros', new Uint8Array(256)],
    ['huge metadata length', Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4)],
    ['negative metadata length', Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0x80)],
    ['3 bytes', Uint8Array.of(1, 2, 3)],
    ['no schema (record batch first)', afterSchema(encodeTable(xyBatch(8, 1)).toUint8Array())],
    ['no schema (dictionary batch first)', afterSchema(good)],
    ['schema only, twice', concat(afterEos(encodeTable(xyBatch(0, 1)).toUint8Array()), encodeTable(xyBatch(0, 1)).toUint8Array())],
  ];
  const r = rng(99);
  for (let i = 0; i < 20; i++) cases.push([`random ${i}`, Uint8Array.from({ length: 8 + Math.floor(r() * 500) }, () => Math.floor(r() * 256))]);
  for (let i = 0; i < 20; i++) {
    const g = Uint8Array.from({ length: 64 + Math.floor(r() * 200) }, () => Math.floor(r() * 256));
    g.set([0xff, 0xff, 0xff, 0xff]); // a continuation marker, then garbage
    cases.push([`random after marker ${i}`, g]);
  }
  for (const [what, bytes] of cases) {
    assert.throws(() => dec.decode(bytes), isInvalid, what);
  }
});

test('buffers that point outside their message body are refused (no reads past the object)', () => {
  const stream = encodeTable(xyBatch(64, 13)).toUint8Array();
  // The record batch header's buffers, as int64 (offset, length) pairs in a 1024-byte body:
  // x validity (0, 0), x values (0, 512), y validity (512, 0), y values (512, 512).
  const dv = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
  const expected = [0, 0, 0, 512, 512, 0, 512, 512];
  let at = -1;
  for (let p = 0; p + 64 <= stream.byteLength && at < 0; p += 4) {
    if (expected.every((v, i) => dv.getUint32(p + 8 * i, true) === v && dv.getUint32(p + 8 * i + 4, true) === 0)) at = p + 48;
  }
  assert.ok(at > 0, 'found the buffer entry of y values');
  // Inside a larger ArrayBuffer (as an object inside the segment is), with secrets after it.
  const memory = new Uint8Array(stream.byteLength + 4096).fill(0x5a);
  const view = memory.subarray(0, stream.byteLength);
  view.set(stream);
  const vdv = new DataView(memory.buffer, 0, view.byteLength);
  assertTablesEqual(new TableDecoder().decode(view), xyBatch(64, 13));
  for (const offset of [1024, 1000, 520 + 8]) {
    vdv.setUint32(at, offset, true);
    assert.throws(() => new TableDecoder().decode(view), isInvalid, `offset ${offset}`);
  }
});

/** The stream without its schema message (our schema messages have no body). */
function afterSchema(bytes: Uint8Array): Uint8Array {
  const len = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getInt32(4, true);
  return bytes.subarray(8 + len);
}

/** The stream without its end-of-stream marker. */
function afterEos(bytes: Uint8Array): Uint8Array {
  return bytes.subarray(0, bytes.byteLength - 8);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a);
  out.set(b, a.byteLength);
  return out;
}

test('truncated and corrupted streams: a table or ERR_INVALID_ARGUMENT, nothing else', () => {
  const dec = new TableDecoder();
  const good = encodeTable(kitchenSink()).toUint8Array();
  // every truncation
  for (let len = 1; len < good.byteLength; len += len < 600 ? 1 : 7) {
    const cut = good.slice(0, len);
    try {
      const t = dec.decode(cut);
      assert.ok(t instanceof Table);
    } catch (err) {
      assert.ok(isInvalid(err), `truncation at ${len}: ${String(err)}`);
    }
  }
  // random corruption of 1 to 4 bytes, in the headers more often than not
  const r = rng(2024);
  let tables = 0;
  let errors = 0;
  for (let i = 0; i < 3000; i++) {
    const bad = good.slice();
    const flips = 1 + Math.floor(r() * 4);
    for (let j = 0; j < flips; j++) {
      const pos = r() < 0.7 ? Math.floor(r() * Math.min(1200, bad.byteLength)) : Math.floor(r() * bad.byteLength);
      bad[pos] = r() < 0.5 ? bad[pos] ^ (1 << Math.floor(r() * 8)) : Math.floor(r() * 256);
    }
    try {
      const t = dec.decode(bad);
      assert.ok(t instanceof Table);
      tables++;
    } catch (err) {
      if (!isInvalid(err)) assert.fail(`corruption ${i}: ${err instanceof Error ? err.stack : String(err)}`);
      errors++;
    }
  }
  assert.ok(errors > 100 && tables > 100, `both outcomes happen (tables ${tables}, errors ${errors})`);
});
