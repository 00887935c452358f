// Comparing Arrow tables in tests: schemas, batch lengths, null counts and every value.
import assert from 'node:assert/strict';
import { Vector, type Table } from 'apache-arrow';

export function plain(v: unknown): unknown {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return `${v}n`;
  if (v instanceof Vector) return Array.from(v as Iterable<unknown>, plain);
  if (ArrayBuffer.isView(v)) return Array.from(v as unknown as ArrayLike<unknown>, plain);
  if (Array.isArray(v)) return v.map(plain);
  if (typeof v === 'object') {
    const o = v as { toJSON?: () => unknown };
    if (typeof o.toJSON === 'function') return plain(o.toJSON());
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  }
  return v;
}

export function assertTablesEqual(actual: Table, expected: Table, what = 'table'): void {
  const describeSchema = (t: Table) => ({
    fields: t.schema.fields.map((f) => [f.name, String(f.type), f.nullable, [...f.metadata]]),
    metadata: [...t.schema.metadata],
  });
  assert.deepEqual(describeSchema(actual), describeSchema(expected), `${what}: schema`);
  assert.equal(actual.numRows, expected.numRows, `${what}: rows`);
  const lengths = (t: Table) => t.batches.map((b) => b.numRows).filter((n) => n > 0);
  assert.deepEqual(lengths(actual), lengths(expected), `${what}: batch lengths`);
  for (const f of expected.schema.fields) {
    const a = actual.getChild(f.name);
    const e = expected.getChild(f.name);
    assert.equal(a?.nullCount, e?.nullCount, `${what}: nulls of ${f.name}`);
    assert.deepEqual(plain(a), plain(e), `${what}: column ${f.name}`);
  }
}
