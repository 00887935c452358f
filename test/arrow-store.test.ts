// Arrow tables through a real store: round trips, zero-copy reads, released objects, errors.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test, type TestContext } from 'node:test';
import {
  Float64,
  Table,
  Utf8,
  tableFromArrays,
  tableFromIPC,
  tableToIPC,
  vectorFromArray,
} from 'apache-arrow';
import { ObjectId, ObjectStore, StoreError } from '../src/index.js';
import { TableDecoder, encodeTable, getTable, putTable } from '../src/arrow/index.js';
import { assertTablesEqual, plain } from './helpers/arrow.js';

let storeCount = 0;

function makeStore(t: TestContext): ObjectStore {
  const name = `shmstore-test-arrow-${process.pid}-${storeCount++}`;
  const store = ObjectStore.create(name, { capacity: 8 << 20 });
  t.after(() => {
    try {
      store.close();
    } finally {
      ObjectStore.unlink(name);
    }
  });
  return store;
}

/** Three batches of Float64, Int32, Utf8 and nullable Float64 columns. */
function mixedTable(): Table {
  const parts: Table[] = [];
  for (let b = 0; b < 3; b++) {
    const n = 10 + b * 7;
    parts.push(
      new Table({
        x: vectorFromArray(Float64Array.from({ length: n }, (_, i) => b * 100 + i * 0.25)),
        k: vectorFromArray(Int32Array.from({ length: n }, (_, i) => b * 1000 - i)),
        s: vectorFromArray(Array.from({ length: n }, (_, i) => `row ${b}.${i} é`), new Utf8()),
        maybe: vectorFromArray(
          Array.from({ length: n }, (_, i) => (i % 3 === 0 ? null : i / 7)),
          new Float64(),
        ),
      }),
    );
  }
  const t = parts[0].concat(...parts.slice(1));
  assert.equal(t.batches.length, 3);
  return t;
}

test('putTable / getTable round trip of several batches through a store', (t) => {
  const store = makeStore(t);
  const table = mixedTable();
  const id = ObjectId.random();
  putTable(store, id, table, new Uint8Array([1, 2, 3]));
  const obj = store.get(id);
  assert.ok(obj, 'the object is sealed');
  try {
    assert.deepEqual([...obj.metadata], [1, 2, 3]);
    assert.equal(obj.data.byteLength, encodeTable(table).byteLength);
    assert.ok(Buffer.from(tableToIPC(table, 'stream')).equals(obj.data), 'the object holds the IPC stream bytes');
    const back = getTable(obj);
    assertTablesEqual(back, table);
    assert.equal(back.batches.length, 3);
    assert.equal(back.getChild('maybe')?.nullCount, table.getChild('maybe')?.nullCount);
    assert.equal(back.getChild('maybe')?.get(0), null);
    assertTablesEqual(tableFromIPC(obj.data), table);
  } finally {
    obj.release();
  }
});

test('a RecordBatch, an empty table and a sliced table round trip', (t) => {
  const store = makeStore(t);
  const full = mixedTable();
  const cases: [string, Table, Table][] = [
    ['record batch', new Table(full.batches[1]), new Table(full.batches[1])],
    ['sliced', full.slice(5, 30), full.slice(5, 30)],
    ['empty', full.slice(0, 0), full.slice(0, 0)],
  ];
  for (const [what, input, expected] of cases) {
    const id = ObjectId.random();
    putTable(store, id, what === 'record batch' ? full.batches[1] : input);
    const obj = store.get(id);
    assert.ok(obj, what);
    try {
      assertTablesEqual(getTable(obj), expected);
    } finally {
      obj.release();
    }
  }
});

test('getTable is zero-copy: column values are views of the object memory', (t) => {
  const store = makeStore(t);
  const n = 1000;
  const parts = [0, 1, 2].map((b) =>
    tableFromArrays({
      x: Float64Array.from({ length: n }, (_, i) => b * n + i + 0.5),
      y: Int32Array.from({ length: n }, (_, i) => i - b),
    }),
  );
  const table = parts[0].concat(parts[1], parts[2]);
  const id = ObjectId.random();
  putTable(store, id, table);
  const obj = store.get(id);
  assert.ok(obj);
  try {
    const lo = obj.data.byteOffset;
    const hi = lo + obj.data.byteLength;
    const check = (decoded: Table, how: string) => {
      let chunks = 0;
      for (const name of ['x', 'y']) {
        const column = decoded.getChild(name);
        assert.ok(column, `${how}: column ${name}`);
        for (const data of column.data) {
          const values = data.values as Float64Array | Int32Array;
          assert.equal(values.buffer, obj.data.buffer, `${how}: ${name} values share the object's ArrayBuffer`);
          assert.ok(values.byteOffset >= lo && values.byteOffset + values.byteLength <= hi, `${how}: inside the object`);
          assert.equal(values.byteOffset % 8, 0, `${how}: 8-byte aligned`);
          assert.equal(values.length, n);
          chunks++;
        }
      }
      assert.equal(chunks, 6);
      assert.equal(decoded.getChild('x')?.data[0].values[0], 0.5);
      assert.equal(decoded.getChild('x')?.data[0].values, decoded.getChild('x')?.data[0].values);
    };
    check(getTable(obj), 'getTable');
    check(new TableDecoder().decode(obj.data), 'TableDecoder');
    check(tableFromIPC(obj.data), 'tableFromIPC');
    // The view really is the shared memory: the bytes at the values' offset are the object's.
    const x = getTable(obj).getChild('x')?.data[0].values as Float64Array;
    const fromObject = new Float64Array(obj.data.buffer, x.byteOffset, 1)[0];
    assert.equal(fromObject, 0.5);
  } finally {
    obj.release();
  }
});

test('getTable on a released object fails cleanly; its old tables read as empty', (t) => {
  const store = makeStore(t);
  const id = ObjectId.random();
  putTable(store, id, tableFromArrays({ x: Float64Array.of(1, 2, 3) }));
  const obj = store.get(id);
  assert.ok(obj);
  const before = getTable(obj);
  assert.equal(before.getChild('x')?.get(2), 3);
  obj.release();
  assert.equal(obj.data.byteLength, 0, 'released views are detached');
  assert.throws(
    () => getTable(obj),
    (err: unknown) => err instanceof StoreError && err.code === 'ERR_INVALID_ARGUMENT' && /released/.test(err.message),
  );
  assert.throws(() => new TableDecoder().decode(obj.data), (err: unknown) => err instanceof StoreError && err.code === 'ERR_INVALID_ARGUMENT');
  // the table decoded before the release no longer reaches the memory (detached, not unmapped)
  assert.equal((before.getChild('x')?.data[0].values as Float64Array).length, 0);
  // a second get of the object works again
  const again = store.get(id);
  assert.ok(again);
  try {
    assert.deepEqual(plain(getTable(again).getChild('x')), [1, 2, 3]);
  } finally {
    again.release();
  }
});

test('putTable: bad arguments are ERR_INVALID_ARGUMENT and leave no object behind', (t) => {
  const store = makeStore(t);
  const id = ObjectId.random();
  const isInvalid = (err: unknown) => err instanceof StoreError && err.code === 'ERR_INVALID_ARGUMENT';
  for (const bad of [null, undefined, 42, 'table', {}, [1, 2], new Uint8Array(8)]) {
    assert.throws(() => putTable(store, id, bad as unknown as Table), isInvalid, String(bad));
  }
  assert.throws(() => putTable({} as ObjectStore, id, tableFromArrays({ x: Float64Array.of(1) })), isInvalid);
  assert.throws(() => putTable(store, 'nope' as unknown as ObjectId, tableFromArrays({ x: Float64Array.of(1) })), isInvalid);
  assert.equal(store.list().length, 0);
  // getTable: not an object, not bytes, garbage bytes
  for (const bad of [null, undefined, 42, 'bytes', {}, store, new ArrayBuffer(64)]) {
    assert.throws(() => getTable(bad as unknown as Uint8Array), isInvalid, String(bad));
  }
  assert.throws(() => getTable(Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9)), isInvalid);
  store.put(id, new TextEncoder().encode('not an arrow stream at all, just text'));
  const text = store.get(id);
  assert.ok(text);
  try {
    assert.throws(() => getTable(text), isInvalid);
  } finally {
    text.release();
  }
  store.delete(id);
  // an id that exists: ERR_OBJECT_EXISTS, the first object intact
  putTable(store, id, tableFromArrays({ x: Float64Array.of(1) }));
  assert.throws(
    () => putTable(store, id, tableFromArrays({ x: Float64Array.of(2) })),
    (err: unknown) => err instanceof StoreError && err.code === 'ERR_OBJECT_EXISTS',
  );
  const obj = store.get(id);
  assert.ok(obj);
  try {
    assert.equal(getTable(obj).getChild('x')?.get(0), 1);
  } finally {
    obj.release();
  }
});

test('putTable aborts the object when writing fails; released columns are refused', (t) => {
  const store = makeStore(t);
  const id = ObjectId.random();
  const src = ObjectId.random();
  putTable(store, src, tableFromArrays({ x: Float64Array.from({ length: 64 }, (_, i) => i) }));
  const isReleasedError = (err: unknown) =>
    err instanceof StoreError && err.code === 'ERR_INVALID_ARGUMENT' && /released/.test(err.message);

  // Encoding a table whose columns are views of a released object is refused up front.
  const obj1 = store.get(src);
  assert.ok(obj1);
  const view1 = getTable(obj1);
  obj1.release();
  assert.throws(() => encodeTable(view1), isReleasedError);
  assert.throws(() => putTable(store, id, view1), isReleasedError);
  assert.equal(store.contains(id), false);

  // Memory that goes away between encodeTable and writeInto: writeInto refuses.
  const obj2 = store.get(src);
  assert.ok(obj2);
  const encoded = encodeTable(getTable(obj2));
  obj2.release();
  assert.throws(() => encoded.writeInto(new Uint8Array(encoded.byteLength)), isReleasedError);

  // The same inside putTable (the source released right after create): the object is aborted.
  const obj3 = store.get(src);
  assert.ok(obj3);
  const view3 = getTable(obj3);
  const create = store.create.bind(store);
  store.create = (...args: Parameters<ObjectStore['create']>) => {
    const buf = create(...args);
    obj3.release();
    return buf;
  };
  try {
    assert.throws(() => putTable(store, id, view3), isReleasedError);
  } finally {
    store.create = create;
  }
  assert.equal(store.contains(id), false);
  assert.deepEqual(
    store.list().map((o) => o.id.toHex()),
    [src.toHex()],
    'no object left behind, not even an unsealed one',
  );
  // and the id is free again
  putTable(store, id, tableFromArrays({ x: Float64Array.of(7) }));
  assert.equal(store.contains(id), true);
});

test('another process reads the table zero-copy from the store', (t) => {
  const store = makeStore(t);
  const id = ObjectId.random();
  const n = 256;
  putTable(
    store,
    id,
    tableFromArrays({ x: Float64Array.from({ length: n }, (_, i) => i), y: Int32Array.from({ length: n }, (_, i) => 2 * i) }),
  );
  const arrowUrl = new URL('../src/arrow/index.js', import.meta.url).href;
  const indexUrl = new URL('../src/index.js', import.meta.url).href;
  const script = `
    const { ObjectStore, ObjectId } = await import(${JSON.stringify(indexUrl)});
    const { getTable } = await import(${JSON.stringify(arrowUrl)});
    const store = ObjectStore.open(${JSON.stringify(store.name)});
    const obj = store.get(ObjectId.fromHex(${JSON.stringify(id.toHex())}));
    const table = getTable(obj);
    const x = table.getChild('x').data[0].values;
    let sx = 0, sy = 0;
    for (const v of table.getChild('x')) sx += v;
    for (const v of table.getChild('y')) sy += v;
    console.log(JSON.stringify({ rows: table.numRows, sx, sy, shared: x.buffer === obj.data.buffer }));
    obj.release();
    store.close();
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { rows: n, sx: (n * (n - 1)) / 2, sy: n * (n - 1), shared: true });
});

test('a table keeps its object alive: no release under the table after GC', (t) => {
  const store = makeStore(t);
  const id = ObjectId.random();
  const n = 512;
  putTable(store, id, tableFromArrays({ x: Float64Array.from({ length: n }, (_, i) => i) }));
  const arrowUrl = new URL('../src/arrow/index.js', import.meta.url).href;
  const indexUrl = new URL('../src/index.js', import.meta.url).href;
  // The StoredObject is dropped right away; only the table's column views remain.
  const script = `
    const { ObjectStore, ObjectId } = await import(${JSON.stringify(indexUrl)});
    const { getTable } = await import(${JSON.stringify(arrowUrl)});
    const store = ObjectStore.open(${JSON.stringify(store.name)});
    const id = ObjectId.fromHex(${JSON.stringify(id.toHex())});
    let table = getTable(store.get(id));
    const settle = async () => { for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); } };
    await settle();
    let sum = 0;
    for (const v of table.getChild('x')) sum += v;
    const heldWithTable = store.list()[0].holders;
    table = null;
    await settle();
    const heldAfter = store.list()[0].holders;
    console.log(JSON.stringify({ sum, heldWithTable, heldAfter }));
    store.close();
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { sum: (n * (n - 1)) / 2, heldWithTable: 1, heldAfter: 0 });
});

const hasPyarrow = spawnSync('python3', ['-c', 'import pyarrow'], { encoding: 'utf8' }).status === 0;

test('pyarrow reads the stream', { skip: hasPyarrow ? false : 'pyarrow is not installed' }, () => {
  const bytes = encodeTable(mixedTable()).toUint8Array();
  const py = `
import sys, json, pyarrow.ipc as ipc
t = ipc.open_stream(sys.stdin.buffer.read()).read_all()
print(json.dumps({"rows": t.num_rows, "names": t.column_names, "k0": t.column("k")[0].as_py(), "s1": t.column("s")[1].as_py()}))
`;
  const r = spawnSync('python3', ['-c', py], { input: bytes, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), { rows: 10 + 17 + 24, names: ['x', 'k', 's', 'maybe'], k0: 0, s1: 'row 0.1 é' });
});
