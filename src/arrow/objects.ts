// Tables in and out of store objects: one copy on the way in, none on the way out.
import type { RecordBatch, Table } from 'apache-arrow';
import { invalidArgument } from '../errors.js';
import { describe, type ObjectId } from '../object-id.js';
import { ObjectStore, StoredObject } from '../store.js';
import { TableDecoder } from './decoder.js';
import { encodeTable } from './encoder.js';

/**
 * Stores `table` as object `id`, in the Arrow IPC stream format (what tableFromIPC and
 * pyarrow.ipc.open_stream read): encodes it without materialising the stream, creates the
 * object with exactly that size, copies every piece once straight into shared memory, seals.
 * If anything fails after create, the object is aborted.
 */
export function putTable(store: ObjectStore, id: ObjectId, table: Table | RecordBatch, metadata?: Uint8Array): void {
  if (!(store instanceof ObjectStore)) throw invalidArgument(`putTable: expected an ObjectStore, got ${describe(store)}`);
  const encoded = encodeTable(table); // validates table; creates nothing yet
  const buf = store.create(id, encoded.byteLength, metadata);
  try {
    encoded.writeInto(buf);
  } catch (err) {
    store.abort(id);
    throw err;
  }
  store.seal(id);
}

const defaultDecoder = new TableDecoder();

/**
 * The table stored in `obj` (or in these bytes), zero-copy: its columns are views of the
 * object's shared memory, valid until the object is released (afterwards they read as empty,
 * never as freed memory). While the table is reachable its views keep the object referenced,
 * even if `obj` itself is dropped. Uses a shared TableDecoder, so consecutive objects with one
 * schema parse it once; use your own TableDecoder per stream for separate statistics.
 */
export function getTable(obj: StoredObject | Uint8Array): Table {
  if (obj instanceof StoredObject) {
    if (obj.data.byteLength === 0) {
      throw invalidArgument(
        `getTable: object ${obj.id.toHex()} has no data: it was released (its views are detached), its store was closed, or it is empty`,
      );
    }
    return defaultDecoder.decode(obj.data);
  }
  if (obj instanceof Uint8Array) return defaultDecoder.decode(obj);
  throw invalidArgument(`getTable: expected a StoredObject or the bytes of an Arrow IPC stream, got ${describe(obj)}`);
}
