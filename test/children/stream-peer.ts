// A stream endpoint in its own process, for the stream tests.
//   publish <store> <stream> <count> <retention> [subscribers]
//     message seq carries 16 bytes: seq (f64) and value(seq) (f64); prints {"published":n}
//   subscribe <store> <stream> <delayEvery> <delayMs> ['seqs']
//     prints {"ready":true}, then at the end {"received","inOrder","checksum","lost":[...],"seqs"?}
import { ObjectStore } from '../../src/store.js';
import { Publisher, Subscriber } from '../../src/stream/index.js';
import { messageValue } from '../helpers/stream.js';

const [role, storeName, stream, ...rest] = process.argv.slice(2);
const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);

function busyWait(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

async function publish(count: number, retention: 'evict' | 'lossless', subscribers: number): Promise<void> {
  using store = ObjectStore.open(storeName);
  const pub = new Publisher(store, stream, { retention, timeoutMs: 20_000 });
  if (subscribers > 0) await pub.waitForSubscribers(subscribers, { timeoutMs: 20_000 });
  const buf = new Float64Array(2);
  const bytes = new Uint8Array(buf.buffer);
  for (let seq = 0; seq < count; seq++) {
    buf[0] = seq;
    buf[1] = messageValue(seq);
    await pub.publish(bytes);
  }
  await pub.end();
  out({ published: count });
  if (retention === 'lossless') await pub.drain();
}

async function subscribe(delayEvery: number, delayMs: number, listSeqs: boolean): Promise<void> {
  using store = ObjectStore.open(storeName);
  using sub = new Subscriber(store, stream, { timeoutMs: 20_000 });
  out({ ready: true });
  let expected = 0;
  let inOrder = true;
  let checksum = 0;
  const seqs: number[] = [];
  for await (const msg of sub) {
    const v = new Float64Array(msg.data.buffer, msg.data.byteOffset, 2);
    if (msg.lostBefore) expected = msg.lostBefore.to;
    if (v[0] !== msg.seq || msg.seq !== expected) inOrder = false;
    expected = msg.seq + 1;
    checksum += v[1];
    if (listSeqs) seqs.push(msg.seq);
    if (delayEvery > 0 && sub.received % delayEvery === 0) busyWait(delayMs);
  }
  out({ received: sub.received, inOrder, checksum, lost: sub.lost, ...(listSeqs ? { seqs } : {}) });
}

if (role === 'publish') {
  await publish(Number(rest[0]), rest[1] as 'evict' | 'lossless', Number(rest[2] ?? 0));
} else if (role === 'subscribe') {
  await subscribe(Number(rest[0]), Number(rest[1]), rest[2] === 'seqs');
} else {
  throw new Error(`unknown role ${role}`);
}
