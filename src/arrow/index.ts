// Apache Arrow tables in shared memory: Arrow IPC stream encoding straight into objects, and
// zero-copy decoding out of them.
export { encodeTable, TableEncoder } from './encoder.js';
export type { EncodedTable, TableEncoderStats } from './encoder.js';
export { TableDecoder } from './decoder.js';
export type { TableDecoderStats } from './decoder.js';
export { putTable, getTable } from './objects.js';
