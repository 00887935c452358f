// Micro-benchmark: decoding a small Arrow IPC stream (a 64-row x,y Float64 batch, as the demo
// producer publishes) with apache-arrow's tableFromIPC vs shmstore's TableDecoder, and the
// encoding side (tableToIPC vs encodeTable + writeInto). Median of 5 repeats.
//
//   node dist/scripts/bench-arrow-decode.js [--messages N] [--rows R] [--json]
import { tableFromArrays, tableFromIPC, tableToIPC, type Table } from 'apache-arrow';
// (encoder and decoder directly: they do not need the native addon)
import { TableDecoder } from '../src/arrow/decoder.js';
import { TableEncoder } from '../src/arrow/encoder.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${name} needs a positive integer`);
  return v;
}

const messages = arg('--messages', 20_000);
const rows = arg('--rows', 64);
const json = process.argv.includes('--json');
const repeats = 5;

function batch(seed: number): Table {
  const x = new Float64Array(rows);
  const y = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    x[i] = (seed * rows + i) / 1000;
    y[i] = 2 + 3 * x[i];
  }
  return tableFromArrays({ x, y });
}

// A ring of distinct messages (as a consumer sees them), each in its own 8-aligned buffer.
const encoder = new TableEncoder();
const ring: Uint8Array[] = [];
for (let i = 0; i < 64; i++) {
  const enc = encoder.encode(batch(i));
  const buf = new Uint8Array(enc.byteLength);
  enc.writeInto(buf);
  ring.push(buf);
}
const tables = Array.from({ length: 64 }, (_, i) => batch(i));
const target = new Uint8Array(ring[0].byteLength);

let sink = 0;

function time(fn: (i: number) => void): number {
  const samples: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < messages; i++) fn(i);
    const ns = Number(process.hrtime.bigint() - t0);
    samples.push(ns / 1000 / messages);
  }
  samples.sort((a, b) => a - b);
  return samples[repeats >> 1];
}

const decoder = new TableDecoder();
const cases: Record<string, (i: number) => void> = {
  tableFromIPC: (i) => {
    sink += tableFromIPC(ring[i & 63]).numRows;
  },
  TableDecoder: (i) => {
    sink += decoder.decode(ring[i & 63]).numRows;
  },
  tableToIPC: (i) => {
    sink += tableToIPC(tables[i & 63], 'stream').byteLength;
  },
  'encodeTable+writeInto': (i) => {
    const enc = encoder.encode(tables[i & 63]);
    enc.writeInto(target);
    sink += enc.byteLength;
  },
};

// warm up every path before measuring any
for (const fn of Object.values(cases)) for (let i = 0; i < 2000; i++) fn(i);

const result: Record<string, number> = {};
for (const [name, fn] of Object.entries(cases)) result[name] = time(fn);

const out = {
  rows,
  messages,
  repeats,
  bytesPerMessage: ring[0].byteLength,
  usPerMessage: Object.fromEntries(Object.entries(result).map(([k, v]) => [k, Number(v.toFixed(2))])),
  decodeSpeedup: Number((result.tableFromIPC / result.TableDecoder).toFixed(1)),
  decoderStats: decoder.stats,
  sink,
};
if (json) {
  console.log(JSON.stringify(out));
} else {
  console.log(`Arrow IPC, ${rows} rows x 2 Float64 (${out.bytesPerMessage} B/message), ${messages} messages, median of ${repeats}`);
  for (const [k, v] of Object.entries(out.usPerMessage)) {
    console.log(`  ${k.padEnd(24)} ${v.toFixed(2).padStart(8)} µs/msg  ${(1e6 / v / 1000).toFixed(0).padStart(6)}k msg/s`);
  }
  console.log(`  decode speed-up: ${out.decodeSpeedup}x (schema parsed ${decoder.stats.schemaParses} time(s))`);
}
