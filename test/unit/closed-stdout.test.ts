import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';

/** The CLI's entry before bundling; bin/zonecopy runs the bundle of it (dist/zonecopy.mjs). */
const ENTRY = [process.execPath, resolve('build/src/cli/run.js')];
const LAUNCHER = ['/bin/sh', resolve('bin/zonecopy')];

/** Runs the CLI with a stdout whose reader is gone before the first write (as `| head -1` becomes). */
function runWithClosedStdout(
  args: readonly string[],
  [program, ...entry] = ENTRY,
): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(program!, [...entry, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  return new Promise((done) => child.on('close', (code, signal) => done({ code, signal, stderr })));
}

describe('a closed stdout (issue 16, item 5)', () => {
  for (const args of [['backup', '--help'], ['--help'], ['status', '--help'], ['restore', '--help'], ['--version']]) {
    it(`\`zonecopy ${args.join(' ')}\` ends quietly when its reader has gone`, async () => {
      const r = await runWithClosedStdout(args);
      assert.doesNotMatch(r.stderr, /EPIPE|Error|\n\s+at /, `stderr: ${r.stderr}`);
      assert.equal(r.stderr, '');
      assert.equal(r.signal, null);
      assert.equal(r.code, 0);
    });
  }

  it('bin/zonecopy (the bundle) ends quietly too', async () => {
    const r = await runWithClosedStdout(['backup', '--help'], LAUNCHER);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
  });
});
