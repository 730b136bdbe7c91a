import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalHost } from '../../src/host/local.js';

/** Real child processes on this machine: a pipeline must settle however its reader goes away. */
describe('local pipelines', () => {
  it('settle when the reader is destroyed before the last output arrives (a cut stream left in the pipe)', async () => {
    const pipeline = new LocalHost(false).spawn([
      ['sh', '-c', 'sleep 0.3; head -c 5000000 /dev/zero'],
      ['head', '-c', '312'],
    ]);
    pipeline.stdin.end();
    pipeline.stdout.destroy();
    const result = await Promise.race([pipeline.done, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 5000))]);
    assert.notEqual(result, 'hung');
  });

  it('settle when a middle stage ends early', async () => {
    const pipeline = new LocalHost(false).spawn([
      ['head', '-c', '50000000', '/dev/zero'],
      ['head', '-c', '1000'],
      ['cat'],
    ]);
    pipeline.stdin.end();
    let bytes = 0;
    for await (const chunk of pipeline.stdout) bytes += (chunk as Buffer).length;
    const result = await pipeline.done;
    assert.equal(bytes, 1000);
    assert.notEqual(result.exitCode, undefined);
  });

  it('a command run without input reads end of file at once, never waits on stdin', async () => {
    const result = await new LocalHost(false).run(['cat'], {
      mutates: false,
      timeoutMs: 5000,
      allowExitCodes: [1, 143],
    });
    assert.equal(result.exitCode, 0, 'cat was still waiting for input when the timeout killed it');
    assert.equal((await new LocalHost(false).run(['cat'], { mutates: false, input: 'x' })).stdout, 'x');
  });
});
