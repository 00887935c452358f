// The raw group: store operations on 64-byte objects in one process (children/raw.ts).
import { ObjectStore } from '../../../src/index.js';
import { summarize, type Summary } from '../common.js';
import { spawnChild, trackStore, uniqueName, unlinkStore } from '../harness.js';

export interface RawResult {
  objects: number;
  repeats: number;
  /** Cycles per second, one entry per repeat. */
  perSecond: Record<'cycle' | 'cycleDelete' | 'put' | 'copy' | 'bulkDelete', number[]>;
  opsPerSecond: Record<string, number[]>;
  summary: Record<string, Summary>;
  opsSummary: Record<string, Summary>;
}

export async function runRaw(opts: { objects: number; repeats: number; execArgv: string[] }): Promise<RawResult> {
  const name = uniqueName('raw');
  trackStore(name);
  // Every object of a pass is alive at once (the "cycle" line deletes them afterwards).
  const store = ObjectStore.create(name, {
    capacity: opts.objects * 64 + 1024 * 1024,
    maxObjects: opts.objects + 1024,
    maxClients: 4,
    eviction: 'none',
  });
  try {
    const child = spawnChild('raw', 'raw', { store: name, objects: opts.objects, repeats: opts.repeats }, opts.execArgv);
    try {
      const line = await child.waitFor((l) => l.bench === 'result', 300_000, 'a raw result');
      await child.finish();
      const perSecond = line.perSecond as RawResult['perSecond'];
      const opsPerSecond = line.opsPerSecond as Record<string, number[]>;
      return {
        objects: opts.objects,
        repeats: opts.repeats,
        perSecond,
        opsPerSecond,
        summary: Object.fromEntries(Object.entries(perSecond).map(([k, v]) => [k, summarize(v)])),
        opsSummary: Object.fromEntries(Object.entries(opsPerSecond).map(([k, v]) => [k, summarize(v)])),
      };
    } finally {
      child.kill();
    }
  } finally {
    store.close();
    unlinkStore(name);
  }
}
