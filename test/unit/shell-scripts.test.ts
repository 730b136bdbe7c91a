/** Every shell script shipped (packaging/, bin/) and the illumos shims are plain POSIX sh to shellcheck. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { PROJECT } from './illumos-stand-in.js';

/** Files under DIR (recursively) that start with #!, i.e. scripts. */
function scriptsIn(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return scriptsIn(path);
    return readFileSync(path, 'utf8').startsWith('#!') ? [path] : [];
  });
}

describe('shell scripts', () => {
  it('shellcheck -s sh is clean on every script in packaging/, bin/ and test/illumos-shims/', () => {
    const scripts = ['packaging', 'bin', 'test/illumos-shims'].flatMap((dir) => scriptsIn(join(PROJECT, dir)));
    assert.ok(scripts.length >= 10, `only found ${scripts.map((s) => relative(PROJECT, s)).join(', ')}`);
    const out = spawnSync('shellcheck', ['-s', 'sh', '-f', 'gcc', ...scripts], { cwd: PROJECT, encoding: 'utf8' });
    if (out.error) throw new Error(`shellcheck: ${out.error.message} (Debian package shellcheck; .ci/run installs it)`);
    assert.equal(out.stdout + out.stderr, '');
    assert.equal(out.status, 0);
  });

  it('every one of them says #!/bin/sh', () => {
    for (const script of ['packaging', 'bin'].flatMap((dir) => scriptsIn(join(PROJECT, dir)))) {
      assert.equal(readFileSync(script, 'utf8').split('\n')[0], '#!/bin/sh', relative(PROJECT, script));
    }
  });
});
