// Shared helpers of the store tests: unique names, stores that clean up after themselves,
// StoreError assertions and a few facts about the segment layout.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { TestContext } from 'node:test';
import { inspect } from 'node:util';
import { StoreError, type StoreErrorCode } from '../../src/errors.js';
import { ObjectId } from '../../src/object-id.js';
import { ObjectStore, type StoreCreateOptions, type StoreOpenOptions } from '../../src/store.js';

let counter = 0;
const made = new Set<string>();

// Safety net: whatever a failed test left behind goes when this test process exits, also
// when it is stopped by a signal (a cancelled or timed-out run).
function removeLeftovers(): void {
  for (const name of made) {
    try {
      rmSync(`/dev/shm/${name}`, { force: true });
    } catch {
      // nothing to do
    }
  }
}
process.on('exit', removeLeftovers);
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(signal, () => {
    removeLeftovers();
    process.kill(process.pid, signal); // the default action, now that the handler is gone
  });
}

/** 'shmstore-test-<pid>-<n>': unique per test process and call. */
export function uniqueName(tag = ''): string {
  const name = `shmstore-test-${process.pid}-${counter++}${tag ? `-${tag}` : ''}`;
  made.add(name);
  return name;
}

/** Removes the segment of `name`; a missing one is fine. */
export function unlinkQuietly(name: string): void {
  try {
    ObjectStore.unlink(name);
  } catch (err) {
    if (!(err instanceof StoreError && err.code === 'ERR_STORE_NOT_FOUND')) throw err;
  }
}

/** Closes quietly (a test may have closed it already). */
export function closeQuietly(store: ObjectStore | undefined | null): void {
  try {
    store?.close();
  } catch {
    // already gone
  }
}

/** Registers cleanup of a name (unlink at the end of the test). */
export function cleanupName(t: TestContext, name: string): void {
  t.after(() => unlinkQuietly(name));
}

export const SMALL: StoreCreateOptions = { capacity: 1 << 20, maxObjects: 256, maxClients: 16 };

/** A fresh store that is closed and unlinked when the test ends, even if it fails. */
export function tempStore(
  t: TestContext,
  options: Partial<StoreCreateOptions> = {},
  tag = '',
): { store: ObjectStore; name: string } {
  const name = uniqueName(tag);
  cleanupName(t, name);
  const store = ObjectStore.create(name, { ...SMALL, ...options } as StoreCreateOptions);
  t.after(() => closeQuietly(store));
  return { store, name };
}

/** Another handle on `name`, closed at the end of the test. */
export function openStore(t: TestContext, name: string, options?: StoreOpenOptions): ObjectStore {
  const s = ObjectStore.open(name, options);
  t.after(() => closeQuietly(s));
  return s;
}

function isCode(err: unknown, code: StoreErrorCode | readonly StoreErrorCode[]): boolean {
  const codes = typeof code === 'string' ? [code] : code;
  return err instanceof StoreError && codes.includes(err.code);
}

/** fn() must throw a StoreError with `code` (or one of the codes). */
export function throwsCode(fn: () => unknown, code: StoreErrorCode | readonly StoreErrorCode[], what = ''): StoreError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown !== undefined, `${what}: expected ${String(code)}, but nothing was thrown`);
  assert.ok(isCode(thrown, code), `${what}: expected StoreError ${String(code)}, got ${describeError(thrown)}`);
  return thrown as StoreError;
}

/** The promise must reject with a StoreError with `code`. */
export async function rejectsCode(
  p: Promise<unknown>,
  code: StoreErrorCode | readonly StoreErrorCode[],
  what = '',
): Promise<StoreError> {
  assert.ok(p instanceof Promise, `${what}: expected a promise`);
  let thrown: unknown;
  let resolved = false;
  try {
    await p;
    resolved = true;
  } catch (err) {
    thrown = err;
  }
  assert.ok(!resolved, `${what}: expected rejection with ${String(code)}, but it resolved`);
  assert.ok(isCode(thrown, code), `${what}: expected StoreError ${String(code)}, got ${describeError(thrown)}`);
  return thrown as StoreError;
}

export function describeError(err: unknown): string {
  if (err instanceof StoreError) return `StoreError ${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.constructor.name}: ${err.message}`;
  return inspect(err, { depth: 1, breakLength: Infinity }).slice(0, 200);
}

/** Bytes an object occupies in the data region: data + metadata rounded up to 64 (at least 64). */
export function allocSize(dataSize: number, metadataSize = 0): number {
  return Math.max(64, Math.ceil((dataSize + metadataSize) / 64) * 64);
}

/** What usedBytes must be: the sum over every live (created, sealed or deleting) object. */
export function expectedUsedBytes(store: ObjectStore): number {
  return store.list().reduce((sum, o) => sum + allocSize(o.size, o.metadataSize), 0);
}

/** A buffer of `size` bytes: byte i is (seed + i * 31) & 255. */
export function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (seed + i * 31) & 255;
  return b;
}

export function ids(n: number): ObjectId[] {
  return Array.from({ length: n }, () => ObjectId.random());
}

export function hexes(list: readonly ObjectId[]): string[] {
  return list.map((id) => id.toHex()).sort();
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls cond() (every 10 ms) until it is true or `ms` pass; returns its last value. */
export async function eventually(cond: () => boolean, ms = 5000): Promise<boolean> {
  const until = Date.now() + ms;
  for (;;) {
    if (cond()) return true;
    if (Date.now() > until) return false;
    await sleep(10);
  }
}

/**
 * Byte offsets of SegmentHeader fields (native/core/layout.h). The tests that use them also
 * check them against stats(), so a layout change fails loudly instead of corrupting the wrong bytes.
 */
export const HEADER = {
  magic: 0,
  layoutVersion: 8,
  headerSize: 12,
  segmentSize: 16,
  capacity: 24,
  maxObjects: 32,
  maxClients: 36,
  indexSlots: 40,
  notifyCapacity: 44,
  clientsOffset: 48,
  objectsOffset: 56,
  indexOffset: 64,
  entryFreeOffset: 72,
  extentsOffset: 80,
  notifyOffset: 88,
  dataOffset: 96,
  eviction: 104,
  usedBytes: 320,
  objects: 328,
  sealed: 332,
  deleting: 336,
  entryFreeCount: 340,
  extentCount: 344,
  clients: 348,
} as const;
