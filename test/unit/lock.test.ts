import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { lockVm } from '../../src/backup/lock.js';
import { scratchDirectory } from './scratch.js';

const LOCK_MODULE = fileURLToPath(new URL('../../src/backup/lock.js', import.meta.url));
const UUID = '4f5a8b2c-0000-4000-8000-000000000001';
const scratch = scratchDirectory('zc-lock-');

/**
 * Starts `count` processes that race for one VM's lock at the same instant; returns what each got (with
 * `wait`, `acquired FROM TO`: when it held the lock).
 */
async function race(directory: string, count: number, wait = false): Promise<string[]> {
  const start = Date.now() + 1500;
  const script = `
    const { lockVm } = await import(${JSON.stringify(LOCK_MODULE)});
    await new Promise((r) => setTimeout(r, ${start} - Date.now()));
    try {
      const lock = await lockVm(${JSON.stringify(directory)}, ${JSON.stringify(UUID)}, { wait: ${wait}, pollMs: 50 });
      const from = Date.now();
      await new Promise((r) => setTimeout(r, ${wait ? 300 : 800}));
      const to = Date.now();
      lock.release();
      console.log(${wait} ? 'acquired ' + from + ' ' + to : 'acquired');
    } catch (error) {
      console.log(error.name === 'LockedError' ? 'refused' : 'error ' + error.message);
    }`;
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<string>((resolve) => {
          const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
            stdio: ['ignore', 'pipe', 'inherit'],
          });
          let out = '';
          child.stdout.on('data', (chunk: Buffer) => {
            out += chunk;
          });
          child.on('exit', () => resolve(out.trim()));
        }),
    ),
  );
}

/** Real processes on this machine: the lock is a file shared by separate zonecopy runs. */
describe('the per-VM lock', () => {
  it('of runs starting at once, exactly one gets it and the others are refused', async () => {
    for (let round = 0; round < 3; round++) {
      const directory = scratch();
      const outcomes = await race(directory, 6);
      assert.equal(outcomes.filter((o) => o === 'acquired').length, 1, outcomes.join(', '));
      assert.equal(outcomes.filter((o) => o === 'refused').length, 5, outcomes.join(', '));
      assert.deepEqual(readdirSync(directory), [], 'the lock and its drafts are gone after release');
    }
  });

  it('a run that finds the lock held is refused naming the holder and --wait; with --wait each run gets it in turn', async () => {
    const directory = scratch();
    const held = await lockVm(directory, UUID, { wait: false });
    await assert.rejects(lockVm(directory, UUID, { wait: false }), (error: Error) => {
      assert.equal(error.name, 'LockedError');
      assert.match(
        error.message,
        new RegExp(
          `^another zonecopy run \\(pid ${process.pid}, since \\S+\\) is backing up VM ${UUID}; not starting a second one\\. Use --wait`,
        ),
      );
      return true;
    });
    // the waiting runs start 1.5 s from now; the first run keeps the lock a while after that
    const waiting = race(directory, 3, true);
    await new Promise((r) => setTimeout(r, 2000));
    const released = Date.now();
    held.release();
    const spans = (await waiting).map((o) => o.split(' '));
    assert.deepEqual(
      spans.map((s) => s[0]),
      ['acquired', 'acquired', 'acquired'],
      spans.join(' | '),
    );
    const sorted = spans.map((s) => [Number(s[1]), Number(s[2])] as const).sort((a, b) => a[0] - b[0]);
    assert.ok(sorted[0]![0] >= released, 'no waiting run got the lock while the first held it');
    for (let i = 1; i < sorted.length; i++)
      assert.ok(sorted[i]![0] >= sorted[i - 1]![1], `the lock was held twice at once: ${JSON.stringify(sorted)}`);
    assert.deepEqual(readdirSync(directory), []);
  });

  it('a lock left by a dead process is taken over by exactly one of the runs that find it', async () => {
    for (let round = 0; round < 3; round++) {
      const directory = scratch();
      const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).stdout.trim();
      writeFileSync(join(directory, `${UUID}.lock`), `${dead}\n2026-01-01T00:00:00.000Z\n`);
      const outcomes = await race(directory, 6);
      assert.equal(outcomes.filter((o) => o === 'acquired').length, 1, outcomes.join(', '));
      assert.deepEqual(readdirSync(directory), []);
    }
  });

  it('a takeover interrupted by a killed run (its breaker left behind) does not keep the lock stale forever', async () => {
    const directory = scratch();
    const dead = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(join(directory, `${UUID}.lock`), `${dead}\n2026-01-01T00:00:00.000Z\n`);
    const breaker = join(directory, `${UUID}.lock.break`);
    writeFileSync(breaker, `${dead}\n`);
    const minuteAgo = new Date(Date.now() - 60_000);
    utimesSync(breaker, minuteAgo, minuteAgo);
    const outcomes = await race(directory, 3);
    assert.equal(outcomes.filter((o) => o === 'acquired').length, 1, outcomes.join(', '));
    assert.deepEqual(readdirSync(directory), []);
  });
});
