#!/usr/bin/env node
// The `shmstore` command. Subcommands: demo, produce, consume, create, ls, stat, rm.
import { StoreError } from '../errors.js';
import { ObjectStore } from '../store.js';
import { SGD_REGRESSOR_DEFAULTS, type LearningRate, type LossName, type SGDRegressorOptions } from '../ml/index.js';
import { listStores, removeStore, storeStatus } from './admin.js';
import { UsageError, bytes, num, parse, str, type Flags } from './args.js';
import { consume } from './consume.js';
import { formatReport, runDemo } from './demo.js';
import { produce } from './produce.js';

const HELP = `shmstore: a shared-memory object store for Node.js (Linux)

Usage:
  shmstore demo [options]            store + 1 producer + N consumers (separate processes)
  shmstore produce --store NAME [options]
  shmstore consume --store NAME [options]
  shmstore bench [options]           the benchmark (shmstore bench --help)
  shmstore create NAME [--store-size 64M] [--eviction lru|none] [--max-objects N]
  shmstore ls                        stores in /dev/shm (or $SHMSTORE_SHM_DIR)
  shmstore stat NAME                 usage, counters, attached clients
  shmstore rm NAME                   unlink a store (attached processes go on)

Data (demo, produce):
  --rows N          rows in all (default 200000)      --batch N     rows per message (1000)
  --a0 X --a1 X     the line y = a0 + a1*x (2, -3)    --noise X     noise std dev (0.5)
  --seed N          generator seed (42)
Streams (demo, produce, consume):
  --stream NAME     stream name (demo)                --retention   lossless | evict (lossless)
  --timeout MS      give up after MS without progress (30000)
Demo:
  --consumers N     consumer processes (3)            --store-size  store capacity (64M)
  --slow MS         make the last consumer sleep MS per message (0)
Produce:
  --subscribers N   wait for N subscribers before publishing (0)
Consume (SGDRegressor, scikit-learn's names in camelCase; defaults are scikit-learn's):
  --loss squared_error|huber|epsilon_insensitive|squared_epsilon_insensitive
  --penalty l2|l1|elasticnet|none   --alpha X   --l1-ratio X   --epsilon X
  --learning-rate invscaling|constant|optimal|adaptive   --eta0 X   --power-t X
  --average N       average after N samples (0 = off)
  --shuffle true|false  shuffle each batch (true)   --random-state N  seed of the shuffle
                    (the demo passes --random-state=0 unless given: consumers then agree exactly)
  --delay MS        sleep MS per message (a slow consumer)
Output:
  --json            machine-readable output (JSON lines for produce/consume)
  -h, --help        this text
`;

const MODEL_FLAGS = ['loss', 'penalty', 'alpha', 'l1-ratio', 'epsilon', 'learning-rate', 'eta0', 'power-t', 'average', 'shuffle', 'random-state'] as const;

const OPTIONS = {
  store: { type: 'string' },
  stream: { type: 'string' },
  rows: { type: 'string' },
  batch: { type: 'string' },
  a0: { type: 'string' },
  a1: { type: 'string' },
  noise: { type: 'string' },
  seed: { type: 'string' },
  retention: { type: 'string' },
  timeout: { type: 'string' },
  consumers: { type: 'string' },
  'store-size': { type: 'string' },
  slow: { type: 'string' },
  subscribers: { type: 'string' },
  eviction: { type: 'string' },
  'max-objects': { type: 'string' },
  delay: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  ...Object.fromEntries(MODEL_FLAGS.map((f) => [f, { type: 'string' }])),
} as const;

function modelOptions(flags: Flags): SGDRegressorOptions {
  const penalty = str(flags, 'penalty', 'l2', ['l2', 'l1', 'elasticnet', 'none']);
  const average = num(flags, 'average', 0, { min: 0, integer: true });
  return {
    loss: str<LossName>(flags, 'loss', SGD_REGRESSOR_DEFAULTS.loss as LossName, ['squared_error', 'huber', 'epsilon_insensitive', 'squared_epsilon_insensitive']),
    penalty: penalty === 'none' ? null : penalty,
    alpha: num(flags, 'alpha', SGD_REGRESSOR_DEFAULTS.alpha, { min: 0 }),
    l1Ratio: num(flags, 'l1-ratio', SGD_REGRESSOR_DEFAULTS.l1Ratio, { min: 0, max: 1 }),
    epsilon: num(flags, 'epsilon', SGD_REGRESSOR_DEFAULTS.epsilon, { min: 0 }),
    learningRate: str<LearningRate>(flags, 'learning-rate', SGD_REGRESSOR_DEFAULTS.learningRate as LearningRate, ['invscaling', 'constant', 'optimal', 'adaptive']),
    eta0: num(flags, 'eta0', SGD_REGRESSOR_DEFAULTS.eta0, { min: 0 }),
    powerT: num(flags, 'power-t', SGD_REGRESSOR_DEFAULTS.powerT),
    average: average === 0 ? false : average,
    shuffle: str(flags, 'shuffle', 'true', ['true', 'false']) === 'true',
    ...(flags['random-state'] === undefined ? {} : { randomState: num(flags, 'random-state', 0, { min: 0, integer: true }) }),
  };
}

function requireStore(flags: Flags): string {
  const s = flags.store;
  if (typeof s !== 'string' || s === '') throw new UsageError('--store NAME is required');
  return s;
}

/** Children of `shmstore demo` exit when the demo dies (its ipc channel closes). */
function followParent(): void {
  if (typeof process.send !== 'function') return;
  process.channel?.unref();
  process.on('disconnect', () => process.exit(1));
}

/** A progress reporter that prints at most every 100 ms. */
function reporter(json: boolean, label: string): (count: number) => void {
  let last = 0;
  return (count) => {
    const now = performance.now();
    if (now - last < 100) return;
    last = now;
    if (json) process.stdout.write(`${JSON.stringify({ event: 'progress', count })}\n`);
    else if (process.stderr.isTTY) process.stderr.write(`\r${label}: ${count} messages`);
  };
}

/** `shmstore bench`: the benchmark parses its own options; it ships in dist/scripts/bench. */
async function runBench(argv: string[]): Promise<number> {
  const bench = (await import(new URL('../../scripts/bench/main.js', import.meta.url).href)) as {
    runBenchCli(argv: string[]): Promise<number>;
  };
  return bench.runBenchCli(argv);
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    process.stdout.write(HELP);
    return command === undefined ? 2 : 0;
  }
  if (command === 'bench') return runBench(rest);
  const { flags, positionals } = parse(rest, OPTIONS);
  if (flags.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const json = flags.json === true;
  const timeoutMs = num(flags, 'timeout', 30_000, { min: -1 });
  const retention = str(flags, 'retention', 'lossless', ['lossless', 'evict']);
  const data = () => ({
    rows: num(flags, 'rows', 200_000, { min: 1, integer: true }),
    batch: num(flags, 'batch', 1000, { min: 1, integer: true }),
    a0: num(flags, 'a0', 2),
    a1: num(flags, 'a1', -3),
    noise: num(flags, 'noise', 0.5, { min: 0 }),
    seed: num(flags, 'seed', 42, { integer: true }),
  });

  switch (command) {
    case 'demo': {
      modelOptions(flags); // validate here, before any process starts
      if (flags['random-state'] === undefined) flags['random-state'] = '0';
      const modelArgs = MODEL_FLAGS.flatMap((f) => (typeof flags[f] === 'string' ? [`--${f}=${flags[f] as string}`] : []));
      const report = await runDemo(
        {
          stream: str(flags, 'stream', 'demo'),
          ...data(),
          consumers: num(flags, 'consumers', 3, { min: 1, max: 100, integer: true }),
          retention,
          storeBytes: bytes(flags, 'store-size', 64 << 20),
          slowMs: num(flags, 'slow', 0, { min: 0 }),
          timeoutMs,
          modelArgs,
        },
        { tty: !json && process.stdout.isTTY === true },
      );
      process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
      return report.failures.length === 0 ? 0 : 1;
    }
    case 'produce': {
      followParent();
      const result = await produce(
        { store: requireStore(flags), stream: str(flags, 'stream', 'demo'), ...data(), retention, timeoutMs,
          subscribers: num(flags, 'subscribers', 0, { min: 0, integer: true }) },
        reporter(json, 'produced'),
      );
      process.stdout.write(json ? `${JSON.stringify({ event: 'result', result })}\n` : `\n${JSON.stringify(result, null, 2)}\n`);
      return 0;
    }
    case 'consume': {
      followParent();
      const result = await consume(
        { store: requireStore(flags), stream: str(flags, 'stream', 'demo'), timeoutMs,
          delayMs: num(flags, 'delay', 0, { min: 0 }), model: modelOptions(flags) },
        reporter(json, 'consumed'),
      );
      process.stdout.write(json ? `${JSON.stringify({ event: 'result', result })}\n` : `\n${JSON.stringify(result, null, 2)}\n`);
      return 0;
    }
    case 'create': {
      const name = positionals[0];
      if (name === undefined) throw new UsageError('usage: shmstore create NAME [--store-size 64M]');
      ObjectStore.create(name, {
        capacity: bytes(flags, 'store-size', 64 << 20),
        eviction: str<'lru' | 'none'>(flags, 'eviction', 'lru', ['lru', 'none']),
        maxObjects: num(flags, 'max-objects', 4096, { min: 1, integer: true }),
      }).close();
      process.stdout.write(json ? `${JSON.stringify({ created: name })}\n` : `created ${ObjectStore.pathOf(name)}\n`);
      return 0;
    }
    case 'ls': {
      const stores = listStores();
      if (json) process.stdout.write(`${JSON.stringify(stores)}\n`);
      else for (const s of stores) process.stdout.write(`${s.name}\t${s.bytes}\t${s.mode}\n`);
      return 0;
    }
    case 'stat': {
      const name = positionals[0] ?? flags.store;
      if (typeof name !== 'string') throw new UsageError('usage: shmstore stat NAME');
      const status = storeStatus(name);
      process.stdout.write(`${JSON.stringify(status, null, json ? 0 : 2)}\n`);
      return 0;
    }
    case 'rm': {
      if (positionals.length === 0) throw new UsageError('usage: shmstore rm NAME...');
      for (const name of positionals) removeStore(name);
      return 0;
    }
    default:
      throw new UsageError(`unknown command '${command}' (try --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`shmstore: ${err.message}\n`);
      process.exitCode = 2;
    } else if (err instanceof StoreError) {
      process.stderr.write(`shmstore: ${err.code}: ${err.message}\n`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`shmstore: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
