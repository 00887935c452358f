// Async waits of one store handle. Each pending wait has a poll() that finishes it when its
// condition holds. The process's waiter thread (in the addon) calls back on every change of the
// segment (at most one callback in flight per handle), and all pending waits are polled again.
// Timeouts and AbortSignals are plain JS timers and listeners: no native deadline, no libuv
// pool thread.
import { StoreError } from './errors.js';
import type { NativeStore } from './native.js';

export interface WaitOptions {
  /** Milliseconds; -1 waits forever. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface PollOptions extends WaitOptions {
  /**
   * Also poll this often (ms). For conditions that can change without a store change: a
   * process that dies bumps nothing, and only a poll (which reclaims it) notices.
   */
  pollEveryMs?: number;
}

export class ChangeWatcher {
  /** check() polls and returns true once the wait is over; cancel() rejects it. */
  private readonly pending = new Map<() => boolean, (err: StoreError) => void>();
  private watching = false;
  private idleTimer: NodeJS.Timeout | undefined;

  constructor(private readonly native: NativeStore) {}

  /**
   * Resolves with poll()'s value once it is not undefined; with onTimeout() at the timeout;
   * rejects with ERR_ABORTED when the signal aborts.
   */
  until<T>(poll: () => T | undefined, opts: PollOptions, onTimeout: () => T): Promise<T> {
    const { timeoutMs = -1, signal, pollEveryMs } = opts;
    if (signal?.aborted) return Promise.reject(aborted(signal));
    const seen = this.native.changeSeq(); // before polling: a change after it wakes us
    const first = poll();
    if (first !== undefined) return Promise.resolve(first);
    if (timeoutMs === 0) return Promise.resolve(onTimeout());

    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let ticker: NodeJS.Timeout | undefined;
      const finish = () => {
        this.remove(check);
        if (timer !== undefined) clearTimeout(timer);
        if (ticker !== undefined) clearInterval(ticker);
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
        const expire = () => {
          finish();
          try {
            resolve(onTimeout());
          } catch (err) {
            reject(err);
          }
        };
        // setTimeout fires after 1 ms for delays past 2^31-1 ms: re-arm until the deadline.
        const deadline = performance.now() + timeoutMs;
        const arm = () => {
          const left = deadline - performance.now();
          timer = left > MAX_TIMER_MS ? setTimeout(arm, MAX_TIMER_MS) : setTimeout(expire, Math.max(0, left));
        };
        arm();
      }
      if (pollEveryMs !== undefined && pollEveryMs > 0) ticker = setInterval(check, pollEveryMs);
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
    if (this.idleTimer !== undefined) {
      // Still active from the previous wait: no toggle (each costs syscalls and a thread hop).
      // Its thread reports every change after the one JS last saw, so nothing is missed.
      clearTimeout(this.idleTimer);
      this.idleTimer = undefined;
    } else if (this.pending.size === 1) {
      this.native.startWaiting(seen);
    }
  }

  private remove(check: () => boolean): void {
    if (this.pending.delete(check) && this.pending.size === 0 && this.idleTimer === undefined) {
      // A stream reader waits again right after each message: stay active a moment. The
      // waiter keeps the process alive meanwhile, so the timer need not.
      this.idleTimer = setTimeout(() => {
        this.idleTimer = undefined;
        if (this.pending.size > 0) return;
        // Unregister: the thread-safe function holds onChange, and through it this store,
        // which could then never be collected (nor its client slot freed) if the app drops it.
        this.watching = false;
        try {
          this.native.unwatch();
        } catch {
          // closed: the waiter is already gone
        }
      }, IDLE_MS);
      this.idleTimer.unref();
    }
  }

  private onChange(_seq: number): void {
    for (const check of [...this.pending.keys()]) check();
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long a handle stays registered with the waiter thread after its last pending wait ends. */
const IDLE_MS = 20;

function aborted(signal: AbortSignal | undefined): StoreError {
  return new StoreError('ERR_ABORTED', 'the wait was aborted', { cause: signal?.reason });
}
