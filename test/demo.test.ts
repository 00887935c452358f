// `shmstore demo` end to end: separate processes, coefficients near the truth, clean exit;
// and Ctrl-C stops every child and unlinks the segment.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { DemoReport } from '../src/cli/demo.js';

const CLI = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

function run(args: string[], onSpawn?: (pid: number) => void): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d));
    p.stderr.on('data', (d: Buffer) => (stderr += d));
    p.on('error', reject);
    p.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
    onSpawn?.(p.pid!);
  });
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const childrenOf = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

/** A demo with a slow consumer, once its 4 child processes run. */
async function slowDemoRunning() {
  let demoPid = 0;
  const kids = new Set<number>();
  const done = run(['demo', '--json', '--rows', '100000', '--batch', '100', '--slow', '20'], (pid) => {
    demoPid = pid;
  });
  for (let i = 0; i < 200 && kids.size < 4; i++) {
    await new Promise((r) => setTimeout(r, 50));
    for (const k of childrenOf(demoPid)) kids.add(k);
  }
  assert.equal(kids.size, 4, 'the demo started 4 processes');
  return { demoPid, kids, done };
}

test('the demo trains 3 consumer processes to the truth', { timeout: 120_000 }, async () => {
  const { code, stdout, stderr } = await run(['demo', '--json', '--rows', '40000', '--batch', '500', '--consumers', '3']);
  assert.equal(code, 0, stderr);
  const report = JSON.parse(stdout) as DemoReport;
  assert.deepEqual(report.failures, []);
  assert.equal(report.consumers.length, 3);
  const pids = new Set([...report.consumers.map((c) => c.pid), report.producer!.pid, process.pid]);
  assert.equal(pids.size, 5, 'producer, consumers and this test are distinct processes');
  // Tolerance: noise 0.5 over 40k rows puts least squares within ~0.01 of the truth; SGD's
  // final steps (eta ~ 0.01 / t^0.25) add a few thousandths.
  for (const c of report.consumers) {
    assert.equal(c.messages, 80);
    assert.equal(c.lost, 0);
    assert.ok(Math.abs(c.a0 - 2) < 0.05, `a0 ${c.a0}`);
    assert.ok(Math.abs(c.a1 + 3) < 0.05, `a1 ${c.a1}`);
    assert.equal(c.checksum, report.consumers[0].checksum);
  }
  assert.ok(Math.abs(report.leastSquares!.a0 - 2) < 0.02 && Math.abs(report.leastSquares!.a1 + 3) < 0.02);
  assert.equal(existsSync(`/dev/shm/${report.store}`), false, 'the demo unlinked its store');
});

test('Ctrl-C stops every child and unlinks the segment', { timeout: 60_000 }, async () => {
  const { demoPid, kids, done } = await slowDemoRunning();
  process.kill(demoPid, 'SIGINT');
  const { code } = await done;
  assert.notEqual(code, 0);
  for (const k of kids) assert.equal(alive(k), false, `child ${k} is gone`);
  assert.equal(existsSync(`/dev/shm/shmstore-demo-${demoPid}`), false);
});

test('a crashed child stops the others and the segment is unlinked', { timeout: 60_000 }, async () => {
  const { demoPid, kids, done } = await slowDemoRunning();
  process.kill([...kids][0], 'SIGKILL'); // the first consumer
  const { code, stdout } = await done;
  assert.equal(code, 1);
  const report = JSON.parse(stdout) as DemoReport;
  assert.ok(report.failures.some((f) => /exited with/.test(f)), JSON.stringify(report.failures));
  for (const k of kids) assert.equal(alive(k), false, `child ${k} is gone`);
  assert.equal(existsSync(`/dev/shm/shmstore-demo-${demoPid}`), false);
});

test('bad options are usage errors (exit 2) and start nothing', async () => {
  const r = await run(['demo', '--consumers', '0']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--consumers/);
  const u = await run(['frobnicate']);
  assert.equal(u.code, 2);
});
