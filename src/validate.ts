// Argument checks shared by the public classes: every bad argument is ERR_INVALID_ARGUMENT
// with a message that names it.
import { invalidArgument } from './errors.js';
import { describe } from './object-id.js';

const NO_OPTIONS = Object.freeze({});

export function options<T extends object>(value: unknown, allowed: readonly string[], what: string): Partial<T> {
  if (value === undefined) return NO_OPTIONS; // shared: no allocation on hot paths
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw invalidArgument(`${what} must be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) throw invalidArgument(`${what}: unknown option '${key}' (known: ${allowed.join(', ')})`);
  }
  return value as Partial<T>;
}

export function size(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw invalidArgument(`${what} must be a non-negative integer, got ${describe(value)}`);
  }
  return value;
}

export function intInRange(value: unknown, min: number, max: number, what: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw invalidArgument(`${what} must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

/** -1 (forever), 0 (poll) or a positive number of milliseconds. */
export function timeout(value: unknown, fallback: number, what = 'timeoutMs'): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !(value === -1 || (value >= 0 && Number.isFinite(value)))) {
    throw invalidArgument(`${what} must be -1 (forever), 0 (poll) or a positive number of ms, got ${describe(value)}`);
  }
  return value;
}

export function boolean(value: unknown, what: string): boolean {
  if (typeof value !== 'boolean') throw invalidArgument(`${what} must be true or false, got ${describe(value)}`);
  return value;
}

export function bytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw invalidArgument(`${what} must be a Uint8Array or Buffer, got ${describe(value)}`);
  return value;
}

export function signal(value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw invalidArgument(`signal must be an AbortSignal, got ${describe(value)}`);
  return value;
}

export function name(value: unknown, what = 'store name'): string {
  if (typeof value !== 'string') throw invalidArgument(`${what} must be a string, got ${describe(value)}`);
  return value;
}
