export { ObjectStore, StoredObject } from './store.js';
export type {
  ClientInfo,
  CreateObjectOptions,
  Eviction,
  GetOptions,
  ObjectInfo,
  StoreCreateOptions,
  StoreEvent,
  StoreOpenOptions,
  StoreStats,
} from './store.js';
export type { PollOptions, WaitOptions } from './change-watcher.js';
export { ObjectId } from './object-id.js';
export { StoreError, STORE_ERROR_CODES } from './errors.js';
export type { StoreErrorCode } from './errors.js';
export * from './stream/index.js';
export * from './arrow/index.js';
export * from './ml/index.js';
