// Async waits of one store handle. Each pending wait has a poll() that finishes it when its
// condition holds. The addon's waiter thread calls back on every change of the segment (at most
// one callback in flight), and all pending waits are polled again. Timeouts and AbortSignals
// are plain JS timers and listeners: no native deadline, no libuv pool thread.
import { StoreError } from './errors.js';
import type { NativeStore } from './native.js';

export interface WaitOptions {
  /** Milliseconds; -1 waits forever. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export class ChangeWatcher {
  /** check() polls and returns true once the wait is over; cancel() rejects it. */
  private readonly pending = new Map<() => boolean, (err: StoreError) => void>();
  private watching = false;

  constructor(private readonly native: NativeStore) {}

  /**
   * Resolves with poll()'s value once it is not undefined; with onTimeout() at the timeout;
   * rejects with ERR_ABORTED when the signal aborts.
   */
  until<T>(poll: () => T | undefined, opts: WaitOptions, onTimeout: () => T): Promise<T> {
    const { timeoutMs = -1, signal } = opts;
    if (signal?.aborted) return Promise.reject(aborted(signal));
    const seen = this.native.changeSeq(); // before polling: a change after it wakes us
    const first = poll();
    if (first !== undefined) return Promise.resolve(first);
    if (timeoutMs === 0) return Promise.resolve(onTimeout());

    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        this.remove(check);
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const check = (): boolean => {
        let value: T | undefined;
        try {
          value = poll();
        } catch (err) {
          finish();
          reject(err);
          return true;
        }
        if (value === undefined) return false;
        finish();
        resolve(value);
        return true;
      };
      const onAbort = () => {
        finish();
        reject(aborted(signal));
      };
      if (timeoutMs > 0) {
        timer = setTimeout(() => {
          finish();
          try {
            resolve(onTimeout());
          } catch (err) {
            reject(err);
          }
        }, timeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.add(check, seen, (err) => {
        finish();
        reject(err);
      });
    });
  }

  /** Rejects every pending wait (the store is closing). */
  cancelAll(err: StoreError): void {
    for (const cancel of [...this.pending.values()]) cancel(err);
  }

  private add(check: () => boolean, seen: number, cancel: (err: StoreError) => void): void {
    this.pending.set(check, cancel);
    if (!this.watching) {
      this.native.watch((seq) => this.onChange(seq));
      this.watching = true;
    }
    if (this.pending.size === 1) this.native.setWaiting(true, seen);
  }

  private remove(check: () => boolean): void {
    if (this.pending.delete(check) && this.pending.size === 0) {
      try {
        this.native.setWaiting(false, 0);
      } catch {
        // closed: the waiter is already gone
      }
    }
  }

  private onChange(_seq: number): void {
    for (const check of [...this.pending.keys()]) check();
  }
}

function aborted(signal: AbortSignal | undefined): StoreError {
  return new StoreError('ERR_ABORTED', 'the wait was aborted', { cause: signal?.reason });
}
