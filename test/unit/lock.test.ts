import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { scratchDirectory } from './scratch.js';

const LOCK_MODULE = fileURLToPath(new URL('../../src/backup/lock.js', import.meta.url));
const UUID = '4f5a8b2c-0000-4000-8000-000000000001';
const scratch = scratchDirectory('zc-lock-');

/** Starts `count` processes that race for one VM's lock at the same instant; returns what each got. */
async function race(directory: string, count: number): Promise<string[]> {
  const start = Date.now() + 1500;
  const script = `
    const { lockVm } = await import(${JSON.stringify(LOCK_MODULE)});
    await new Promise((r) => setTimeout(r, ${start} - Date.now()));
    try {
      const lock = await lockVm(${JSON.stringify(directory)}, ${JSON.stringify(UUID)}, { wait: false });
      await new Promise((r) => setTimeout(r, 800));
      lock.release();
      console.log('acquired');
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
