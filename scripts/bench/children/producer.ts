// Child entry: the producer of one transport run. Makes the distinct batches (not measured),
// hands over to the transport's `producer`, and reports { t0, tDone, expectedChecksum, ... }.
//   node producer.js --config <RunConfig JSON>
import { childMain, cpuMs, lifeline, osCounters, makeBatches, readConfig, resetCpu, send, type RunConfig } from '../common.js';
import type { TransportModule } from '../transports/types.js';

childMain(async () => {
  const cfg = readConfig<RunConfig>();
  const life = lifeline();
  const mod = (await import(`../transports/${cfg.transport}.js`)) as TransportModule;
  const batches = makeBatches(cfg.rows);
  const out = await mod.producer({
    cfg,
    batches,
    ready: (extra) => send({ bench: 'ready', role: 'producer', pid: process.pid, ...extra }),
    go: async () => {
      await life.go();
      resetCpu();
    },
  });
  send({ bench: 'result', role: 'producer', pid: process.pid, cpuMs: cpuMs(), ...osCounters(), ...out });
});
