// A store client in its own process, driven by the test over stdin.
//   argv: <storeName>
//   prints {"ready":true,"pid":..,"slot":..} once open (or {"ready":false,"code":..}),
//   then reads one JSON command per line, {id, op, ...args}, and answers each with one line
//   {"id":id,"ok":true,"value":..} or {"id":id,"ok":false,"code":..,"message":..}.
// Synchronous ops (get with a timeout, create with a timeout, park) block this process, which
// is the point; async ones answer when they settle, possibly out of order.
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { StoreError } from '../../src/errors.js';
import { ObjectId } from '../../src/object-id.js';
import { ObjectStore, type StoredObject } from '../../src/store.js';

const storeName = process.argv[2];
const gc = (globalThis as { gc?: () => void }).gc;

function out(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

let store: ObjectStore;
try {
  store = ObjectStore.open(storeName);
} catch (err) {
  out({ ready: false, code: (err as StoreError).code ?? 'ERR_JS', message: (err as Error).message });
  process.exit(0);
}
const self = store.clients().find((c) => c.self);
out({ ready: true, pid: process.pid, slot: self?.slot ?? -1 });

const held = new Map<string, StoredObject[]>();
const creating = new Map<string, Buffer>();
const controllers = new Map<string, AbortController>();

type Cmd = Record<string, any> & { id: number; op: string };

const id = (hex: string) => ObjectId.fromHex(hex);

function describeBytes(b: Buffer): { length: number; hex?: string; sha256: string } {
  return {
    length: b.length,
    hex: b.length <= 256 ? b.toString('hex') : undefined,
    sha256: createHash('sha256').update(b).digest('hex'),
  };
}

function hold(hex: string, obj: StoredObject) {
  const list = held.get(hex) ?? [];
  list.push(obj);
  held.set(hex, list);
  return { data: describeBytes(obj.data), metadata: describeBytes(obj.metadata) };
}

function fill(size: number, c: Cmd): Buffer {
  if (typeof c.dataHex === 'string') return Buffer.from(c.dataHex, 'hex');
  return Buffer.alloc(size, c.fill ?? 0);
}

function meta(c: Cmd): Buffer | undefined {
  return typeof c.metaHex === 'string' ? Buffer.from(c.metaHex, 'hex') : undefined;
}

async function run(c: Cmd): Promise<unknown> {
  switch (c.op) {
    case 'put': {
      const data = fill(c.size, c);
      store.put(id(c.hex), data, meta(c), { keepReference: c.keep === true });
      return null;
    }
    case 'putMany': {
      for (const hex of c.hexes as string[]) store.put(id(hex), Buffer.alloc(c.size ?? 1, c.fill ?? 0));
      return (c.hexes as string[]).length;
    }
    case 'create': {
      const opts = c.timeoutMs === undefined ? undefined : { timeoutMs: c.timeoutMs };
      const buf = store.create(id(c.hex), c.size, meta(c) ?? null, opts);
      buf.fill(c.fill ?? 0);
      creating.set(c.hex, buf);
      return buf.length;
    }
    case 'createAsync': {
      const buf = await store.createAsync(id(c.hex), c.size, { timeoutMs: c.timeoutMs });
      buf.fill(c.fill ?? 0);
      creating.set(c.hex, buf);
      return buf.length;
    }
    case 'seal':
      store.seal(id(c.hex));
      return null;
    case 'abort':
      store.abort(id(c.hex));
      return null;
    case 'delete':
      return store.delete(id(c.hex));
    case 'contains':
      return store.contains(id(c.hex));
    case 'get': {
      const opts = c.timeoutMs === undefined ? undefined : { timeoutMs: c.timeoutMs };
      const obj = store.get(id(c.hex), opts);
      return obj === null ? null : hold(c.hex, obj);
    }
    case 'getAsync': {
      const ac = new AbortController();
      if (c.tag) controllers.set(c.tag, ac);
      const obj = await store.getAsync(id(c.hex), { timeoutMs: c.timeoutMs ?? -1, signal: ac.signal });
      return obj === null ? null : hold(c.hex, obj);
    }
    case 'wait': {
      const ready = await store.wait((c.hexes as string[]).map(id), { numReturns: c.numReturns, timeoutMs: c.timeoutMs ?? -1 });
      return ready.map((x) => x.toHex());
    }
    case 'abortWait':
      controllers.get(c.tag)?.abort();
      return null;
    case 'release': {
      const list = held.get(c.hex) ?? [];
      for (const o of list) o.release();
      held.delete(c.hex);
      return list.length;
    }
    case 'releaseId':
      store.release(id(c.hex));
      held.delete(c.hex);
      return null;
    case 'drop': {
      // Forget our StoredObjects without release(): only the GC can free them now.
      const n = held.get(c.hex)?.length ?? 0;
      held.delete(c.hex);
      return n;
    }
    case 'gcUntilReleased': {
      // gc() and a few turns of the event loop, until no client holds the object.
      if (gc === undefined) throw new Error('run with --expose-gc');
      for (let round = 1; round <= 300; round++) {
        gc();
        await delay(round < 20 ? 2 : 10);
        const info = store.list().find((o) => o.id.toHex() === c.hex);
        if (info === undefined || info.holders === 0) return { rounds: round, state: info?.state ?? 'gone' };
      }
      return { rounds: -1 };
    }
    case 'stats':
      return store.stats();
    case 'list':
      return store.list().map((o) => ({ ...o, id: o.id.toHex() }));
    case 'clients':
      return store.clients();
    case 'forStream':
      return (c.seqs as number[]).map((s) => ObjectId.forStream(c.name, s).toHex());
    case 'later': {
      // Runs `then` after ms: how a blocked parent gets a change from another process.
      await delay(c.ms);
      return run({ ...(c.then as Cmd), id: c.id });
    }
    case 'park':
      store.parkInLockForTest();
      return null; // never
    case 'close':
      store.close();
      return null;
    case 'exit':
      setImmediate(() => process.exit(0));
      return null;
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === '') return;
  const c = JSON.parse(line) as Cmd;
  run(c).then(
    (value) => out({ id: c.id, ok: true, value: value ?? null }),
    (err: unknown) =>
      out({
        id: c.id,
        ok: false,
        code: err instanceof StoreError ? err.code : 'ERR_JS',
        message: err instanceof Error ? err.message : String(err),
      }),
  );
});
// The parent closing our stdin (it died, or is done) ends us.
rl.on('close', () => process.exit(0));
