// Child processes of the store tests: real separate Node processes (process.execPath, never
// 'node') running compiled scripts from dist/test/children/, with line-based stdout.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { TestContext } from 'node:test';
import { StoreError, type StoreErrorCode } from '../../src/errors.js';

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface SpawnOptions {
  env?: Record<string, string>;
  /** Node flags before the script, e.g. ['--expose-gc']. */
  execArgv?: string[];
}

export function childScript(name: string): string {
  return fileURLToPath(new URL(`../children/${name}.js`, import.meta.url));
}

export class ChildHandle {
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  #lines: string[] = [];
  #consumed = 0; // lines before this index were handed out by next()
  #stderr = '';
  #partial = '';
  #exit: Exit | null = null;
  #wakers = new Set<() => void>();

  constructor(script: string, args: readonly string[], options: SpawnOptions = {}) {
    this.child = spawn(process.execPath, [...(options.execArgv ?? []), childScript(script), ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    this.child.stdout!.setEncoding('utf8');
    this.child.stdout!.on('data', (chunk: string) => {
      const parts = (this.#partial + chunk).split('\n');
      this.#partial = parts.pop()!;
      this.#lines.push(...parts);
      this.#wake();
    });
    this.child.stderr!.setEncoding('utf8');
    this.child.stderr!.on('data', (chunk: string) => {
      this.#stderr += chunk;
    });
    this.child.stdin!.on('error', () => {}); // a killed child closes its stdin under us
    this.exited = new Promise<Exit>((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.#exit = { code, signal };
        this.#wake();
        resolve(this.#exit);
      });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  get stderr(): string {
    return this.#stderr;
  }

  get lines(): readonly string[] {
    return this.#lines;
  }

  get exitStatus(): Exit | null {
    return this.#exit;
  }

  #wake(): void {
    for (const w of [...this.#wakers]) w();
  }

  /** Resolves with the first line (of all received so far or later) that pred accepts. */
  waitForLine(match: string | ((line: string) => boolean), timeoutMs = 15000): Promise<string> {
    const pred = typeof match === 'string' ? (l: string) => l === match : match;
    return new Promise<string>((resolve, reject) => {
      let scanned = 0;
      const done = (fn: () => void) => {
        this.#wakers.delete(look);
        clearTimeout(timer);
        fn();
      };
      const look = () => {
        for (; scanned < this.#lines.length; scanned++) {
          const line = this.#lines[scanned];
          if (pred(line)) return done(() => resolve(line));
        }
        if (this.#exit !== null) {
          done(() => reject(new Error(`child ${this.pid} exited (${JSON.stringify(this.#exit)}) before the line ` +
            `${String(match)}; stdout: ${JSON.stringify(this.#lines.slice(-10))}; stderr: ${this.#stderr.slice(-2000)}`)));
        }
      };
      const timer = setTimeout(() => done(() => reject(new Error(
        `timed out after ${timeoutMs} ms waiting for ${String(match)} from child ${this.pid}; ` +
          `stdout: ${JSON.stringify(this.#lines.slice(-10))}; stderr: ${this.#stderr.slice(-2000)}`))), timeoutMs);
      this.#wakers.add(look);
      look();
    });
  }

  /** Async iterator over stdout lines, in order, from the start. */
  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    for (;;) {
      if (this.#consumed < this.#lines.length) {
        yield this.#lines[this.#consumed++];
        continue;
      }
      if (this.#exit !== null) return;
      await new Promise<void>((r) => {
        const w = () => {
          this.#wakers.delete(w);
          r();
        };
        this.#wakers.add(w);
      });
    }
  }

  write(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  /** Sends the signal (SIGKILL by default) unless the child is gone; resolves when it has exited. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> {
    if (this.#exit === null) this.child.kill(signal);
    return this.exited;
  }
}

/** Spawns a child script; it is killed (SIGKILL) when the test ends, whatever happens. */
export function spawnChild(t: TestContext | null, script: string, args: readonly string[] = [], options: SpawnOptions = {}): ChildHandle {
  const h = new ChildHandle(script, args, options);
  t?.after(async () => {
    await h.kill();
  });
  return h;
}

/** A failure reported by the agent: the StoreError code it got, or 'ERR_JS' for anything else. */
export class AgentError extends Error {
  constructor(readonly code: StoreErrorCode | 'ERR_JS' | string, message: string) {
    super(message);
  }
}

/**
 * A child running test/children/agent.ts on one store: send it a command, get its JSON answer.
 * Commands run in order; async ones (getAsync, wait, later...) answer when they finish.
 */
export class Agent {
  readonly handle: ChildHandle;
  info: { pid: number; slot: number } = { pid: 0, slot: -1 };
  #next = 1;

  private constructor(handle: ChildHandle) {
    this.handle = handle;
  }

  static async start(t: TestContext | null, storeName: string, options: SpawnOptions = {}): Promise<Agent> {
    const a = new Agent(spawnChild(t, 'agent', [storeName], options));
    const first = await a.handle.waitForLine((l) => l.startsWith('{"ready"'));
    const msg = JSON.parse(first) as { ready: boolean; pid: number; slot: number; code?: string; message?: string };
    if (!msg.ready) throw new AgentError(msg.code ?? 'ERR_JS', `agent could not open '${storeName}': ${msg.message}`);
    a.info = { pid: msg.pid, slot: msg.slot };
    return a;
  }

  /** Sends a command; the returned promise gives its value (or rejects with AgentError). */
  call<T = any>(op: string, args: Record<string, unknown> = {}, timeoutMs = 15000): Promise<T> {
    const id = this.#next++;
    this.handle.write(JSON.stringify({ id, op, ...args }));
    return this.handle
      .waitForLine((l) => l.startsWith(`{"id":${id},`), timeoutMs)
      .then((line) => {
        const r = JSON.parse(line) as { ok: boolean; value?: T; code?: string; message?: string };
        if (!r.ok) throw new AgentError(r.code ?? 'ERR_JS', r.message ?? 'failed');
        return r.value as T;
      });
  }

  /** call() that must fail with a StoreError code. */
  async callFails(op: string, args: Record<string, unknown>, code: StoreErrorCode): Promise<void> {
    try {
      await this.call(op, args);
    } catch (err) {
      if (err instanceof AgentError && err.code === code) return;
      throw new Error(`agent ${op}: expected ${code}, got ${err instanceof AgentError ? err.code : String(err)}: ${(err as Error).message}`);
    }
    throw new Error(`agent ${op}: expected ${code}, but it succeeded`);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<Exit> {
    return this.handle.kill(signal);
  }
}

export function isStoreError(err: unknown, code: StoreErrorCode): boolean {
  return err instanceof StoreError && err.code === code;
}
