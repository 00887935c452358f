// Option parsing shared by the subcommands: typed numbers with ranges, and errors that name
// the flag (exit code 2, as usage errors conventionally are).
import { parseArgs, type ParseArgsConfig } from 'node:util';

export class UsageError extends Error {
  override name = 'UsageError';
}

export type Flags = Record<string, string | boolean | undefined>;

export function parse(argv: string[], options: NonNullable<ParseArgsConfig['options']>): { flags: Flags; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
    return { flags: values as Flags, positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

export function num(flags: Flags, key: string, fallback: number, opts: { min?: number; max?: number; integer?: boolean } = {}): number {
  const raw = flags[key];
  if (raw === undefined) return fallback;
  const v = Number(raw);
  const { min = -Infinity, max = Infinity, integer = false } = opts;
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    const range = `${integer ? 'an integer' : 'a number'}${min > -Infinity ? ` >= ${min}` : ''}${max < Infinity ? ` <= ${max}` : ''}`;
    throw new UsageError(`--${key} must be ${range}, got ${JSON.stringify(raw)}`);
  }
  return v;
}

export function str<T extends string>(flags: Flags, key: string, fallback: T, allowed?: readonly T[]): T {
  const raw = flags[key];
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || (allowed && !allowed.includes(raw as T))) {
    throw new UsageError(`--${key} must be ${allowed ? allowed.join(' | ') : 'a string'}, got ${JSON.stringify(raw)}`);
  }
  return raw as T;
}

/** Accepts 64M, 512k, 1G (binary units) or plain bytes. */
export function bytes(flags: Flags, key: string, fallback: number): number {
  const raw = flags[key];
  if (raw === undefined) return fallback;
  const m = typeof raw === 'string' ? /^(\d+(?:\.\d+)?)([kKmMgG]?)i?[bB]?$/.exec(raw.trim()) : null;
  if (!m) throw new UsageError(`--${key} must be a size such as 64M, got ${JSON.stringify(raw)}`);
  const unit = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Math.floor(Number(m[1]) * unit);
}
