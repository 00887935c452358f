// A view whose ArrayBuffer is transferred away (ArrayBuffer.prototype.transfer, Node >= 22)
// cannot be detached any more: the object must stay held, and the mapping mapped, until the
// new buffer is collected.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ObjectId } from '../src/object-id.js';
import { eventually, tempStore, throwsCode } from './helpers/store.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const canTransfer = typeof (ArrayBuffer.prototype as { transfer?: unknown }).transfer === 'function';
const transfer = (b: Buffer): ArrayBuffer => (b.buffer as ArrayBuffer & { transfer(): ArrayBuffer }).transfer();

async function collect(cond: () => boolean): Promise<boolean> {
  return eventually(() => {
    gc();
    return cond();
  }, 5000);
}

test('a transferred view keeps its object held until the new buffer is collected', { skip: !canTransfer }, async (t) => {
  const { store } = tempStore(t, { capacity: 64 * 4, maxObjects: 16 });
  const id = ObjectId.random();
  store.put(id, Buffer.from('still mine'));
  const obj = store.get(id)!;
  let moved: ArrayBuffer | null = transfer(obj.data);
  obj.release();
  assert.equal(store.list()[0].holders, 1, 'still held: the moved buffer reaches it');
  assert.equal(store.evict(1 << 20), 0);
  store.delete(id);
  assert.equal(Buffer.from(moved).toString(), 'still mine', 'the bytes were not reused');
  moved = null;
  assert.ok(await collect(() => store.stats().usedBytes === 0), 'freed once the moved buffer is gone');
});

test('abort refuses an object whose writable view was transferred; close keeps the mapping for it', { skip: !canTransfer }, async (t) => {
  const { store } = tempStore(t, { capacity: 64 * 4, maxObjects: 16 });
  const id = ObjectId.random();
  let moved: ArrayBuffer | null = transfer(store.create(id, 8));
  throwsCode(() => store.abort(id), 'ERR_OBJECT_IN_USE');
  const other = ObjectId.random();
  store.put(other, Buffer.from('x'));
  const view = store.get(other)!;
  let moved2: ArrayBuffer | null = transfer(view.data);
  store.close();
  new Uint8Array(moved).fill(7); // still mapped: no crash
  assert.equal(Buffer.from(moved2).toString(), 'x');
  moved = null;
  moved2 = null;
  for (let i = 0; i < 5; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
});
