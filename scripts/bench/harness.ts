// The harness side: spawning children (process.execPath, never 'node'), reading their JSON lines,
// and cleaning up everything the benchmark made (children, stores in /dev/shm, sockets, temp
// files, redis-server) on success, failure, Ctrl-C and exit.
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ObjectStore } from '../../src/index.js';

// ---------------------------------------------------------------------------------------------
// Cleanup

const children = new Set<ChildProcess>();
const stores = new Set<string>();
const files = new Set<string>();
const hooks = new Set<() => void>();
let installed = false;
let counter = 0;

/** A name unique to this harness process: for stores, sockets, stream keys. */
export function uniqueName(kind: string): string {
  counter += 1;
  return `shmstore-bench-${process.pid}-${kind}-${counter}`;
}

export function trackStore(name: string): void {
  stores.add(name);
}

/** Unlinks a store this benchmark created (idempotent). */
export function unlinkStore(name: string): void {
  stores.delete(name);
  try {
    ObjectStore.unlink(name);
  } catch {
    // already gone
  }
}

export function trackFile(path: string): void {
  files.add(path);
}

export function removeFile(path: string): void {
  files.delete(path);
  rmSync(path, { force: true, recursive: true });
}

/** A synchronous cleanup step for exit (e.g. kill redis-server). Returns its remover. */
export function onCleanup(fn: () => void): () => void {
  hooks.add(fn);
  return () => hooks.delete(fn);
}

/** Kills every child, unlinks every store and file: safe to call more than once. */
export function cleanupAll(): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      try {
        c.kill('SIGKILL');
      } catch {
        // gone
      }
    }
  }
  children.clear();
  for (const fn of [...hooks]) {
    try {
      fn();
    } catch {
      // best effort
    }
  }
  hooks.clear();
  for (const s of [...stores]) unlinkStore(s);
  for (const f of [...files]) removeFile(f);
}

const onSignal = (sig: NodeJS.Signals) => {
  process.stderr.write(`\nbench: ${sig}, cleaning up\n`);
  cleanupAll();
  process.exit(sig === 'SIGINT' ? 130 : 143);
};

/** Installs exit/signal handlers (once); returns a function that removes them. */
export function installCleanupHandlers(): () => void {
  if (installed) return () => {};
  installed = true;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', cleanupAll);
  return () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', cleanupAll);
    installed = false;
  };
}

// ---------------------------------------------------------------------------------------------
// Children

export function childScript(name: string): string {
  return fileURLToPath(new URL(`./children/${name}.js`, import.meta.url));
}

export interface ChildLine {
  bench: string;
  [key: string]: unknown;
}

export class Child {
  readonly proc: ChildProcess;
  readonly label: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly lines: ChildLine[] = [];
  #waiters = new Set<() => void>();
  #exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;

  constructor(label: string, script: string, args: string[], execArgv: string[] = []) {
    this.label = label;
    this.proc = spawn(process.execPath, [...execArgv, childScript(script), ...args], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    children.add(this.proc);
    this.proc.stdin!.on('error', () => {}); // a child that died closes its stdin under us
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      let msg: ChildLine | null = null;
      if (line.startsWith('{')) {
        try {
          msg = JSON.parse(line) as ChildLine;
        } catch {
          msg = null;
        }
      }
      if (msg !== null && typeof msg.bench === 'string') {
        this.lines.push(msg);
        this.#wake();
      } else {
        process.stderr.write(`[${label}] ${line}\n`);
      }
    });
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        children.delete(this.proc);
        this.#exit = { code, signal };
        this.#wake();
        resolve(this.#exit);
      });
    });
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /** Resolves with the first line matching `pred` (already received or future); rejects on exit/timeout/error. */
  waitFor(pred: (l: ChildLine) => boolean, timeoutMs: number, what: string): Promise<ChildLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.lines.find(pred);
        if (hit !== undefined) return done(() => resolve(hit));
        const err = this.lines.find((l) => l.bench === 'error');
        if (err !== undefined) return done(() => reject(new Error(`${this.label}: ${String(err.message)}`)));
        if (this.#exit !== null) {
          return done(() =>
            reject(new Error(`${this.label} exited (code ${this.#exit!.code}, signal ${this.#exit!.signal}) before ${what}`)),
          );
        }
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${this.label}: no ${what} after ${timeoutMs} ms`))), timeoutMs);
      const done = (fn: () => void) => {
        clearTimeout(timer);
        this.#waiters.delete(check);
        fn();
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** All lines matching pred, once `count` of them arrived. */
  async waitForCount(pred: (l: ChildLine) => boolean, count: number, timeoutMs: number, what: string): Promise<ChildLine[]> {
    await this.waitFor(() => this.lines.filter(pred).length >= count, timeoutMs, what);
    return this.lines.filter(pred);
  }

  write(line: string): void {
    this.proc.stdin!.write(`${line}\n`);
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }

  /** Closes stdin (the child's lifeline) and waits for the exit, killing it after `graceMs`. */
  async finish(graceMs = 5000): Promise<void> {
    this.proc.stdin!.end();
    const t = setTimeout(() => this.kill(), graceMs);
    await this.exited;
    clearTimeout(t);
  }
}

export function spawnChild(label: string, script: string, config: unknown, execArgv: string[] = []): Child {
  return new Child(label, script, ['--config', JSON.stringify(config)], execArgv);
}
