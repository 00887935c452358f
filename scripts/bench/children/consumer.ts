// Child entry: one consumer of one transport run. The transport's `consumer` connects or
// subscribes, warms up, says ready, then reads every message (decode + sum of every y) and
// returns its tally.
//   node consumer.js --config <RunConfig JSON with index>
import { childMain, lifeline, readConfig, resetCpu, send, type RunConfig } from '../common.js';
import type { TransportModule } from '../transports/types.js';

childMain(async () => {
  const cfg = readConfig<RunConfig & { index: number }>();
  // Forked by the producer (fork IPC): the IPC channel is the lifeline; else stdin is.
  if (process.send === undefined) lifeline();
  else process.on('disconnect', () => process.exit(70));
  const mod = (await import(`../transports/${cfg.transport}.js`)) as TransportModule;
  if (mod.consumer === undefined) throw new Error(`transport ${cfg.transport} has no consumer process`);
  const result = await mod.consumer({
    cfg,
    index: cfg.index,
    ready: () => {
      resetCpu();
      if (process.send !== undefined) process.send({ ready: true, index: cfg.index });
      else send({ bench: 'ready', role: 'consumer', index: cfg.index, pid: process.pid });
    },
  });
  send(result);
});
