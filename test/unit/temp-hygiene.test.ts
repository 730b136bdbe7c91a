import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const UNIT = fileURLToPath(new URL('.', import.meta.url));
/** Not run again: this file itself, and lock.test, which waits out 14 s of timed races and makes its directories with scratch.ts too. */
const NOT_RUN = ['temp-hygiene.test.js', 'lock.test.js'];

/** `node --test` on `files` with its own temp folder; without NODE_TEST_CONTEXT the child is a runner of its own, not a part of this one. */
function runTests(files: readonly string[], temp: string) {
  const { NODE_TEST_CONTEXT: _, ...env } = process.env;
  return spawnSync(process.execPath, ['--test', '--test-reporter=tap', ...files], {
    env: { ...env, TMPDIR: temp },
    encoding: 'utf8',
  });
}

describe('unit tests leave nothing in the temp folder (issue 16, item 6)', () => {
  const temp = mkdtempSync(join(tmpdir(), 'zc-temp-hygiene-'));
  mkdirSync(join(temp, 'files'));
  mkdirSync(join(temp, 'failing'));
  after(() => rmSync(temp, { recursive: true, force: true }));

  it('every test file that makes temporary files removes them', () => {
    const files = readdirSync(UNIT)
      .filter((f) => f.endsWith('.test.js') && !NOT_RUN.includes(f))
      .filter((f) => /tmpdir|scratchDirectory/.test(readFileSync(join(UNIT, f), 'utf8')));
    assert.ok(files.includes('config.test.js'), `found ${files.join(', ')}`);
    const run = runTests(
      files.map((f) => join(UNIT, f)),
      join(temp, 'files'),
    );
    assert.equal(run.status, 0, run.stdout.slice(-2000));
    assert.match(run.stdout, /^# pass [1-9]/m, 'the files ran');
    assert.deepEqual(readdirSync(join(temp, 'files')), [], `left behind by ${files.join(', ')}`);
  });

  it('scratchDirectory removes its directories also when a test fails', () => {
    const fixture = join(temp, 'failing.test.mjs');
    writeFileSync(
      fixture,
      [
        `import { writeFileSync } from 'node:fs';`,
        `import { it } from 'node:test';`,
        `import { scratchDirectory } from ${JSON.stringify(join(UNIT, 'scratch.js'))};`,
        `const scratch = scratchDirectory('zc-failing-');`,
        `it('fails after writing a file', () => { writeFileSync(scratch() + '/f', 'x'); throw new Error('on purpose'); });`,
      ].join('\n'),
    );
    const run = runTests([fixture], join(temp, 'failing'));
    assert.match(run.stdout, /^# fail 1$/m, run.stdout.slice(-2000));
    assert.deepEqual(readdirSync(join(temp, 'failing')), []);
  });
});
