import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { scratchDirectory } from './scratch.js';

/** The node-detection rules of bin/zonecopy (which install.sh asks too), with fake node binaries. */
const LAUNCHER = resolve('bin/zonecopy');
const scratch = scratchDirectory('zc-node-');

/** A node that answers `--version` like the real one (`v22.1.0`), or with whatever `major` says when it is not a number. */
function fakeNode(path: string, major: string): string {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(
    path,
    `#!/bin/sh\n[ "$1" = --version ] || exit 9\necho '${/^\d+$/.test(major) ? `v${major}.1.0` : major}'\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

function install(layout: { embedded?: string; search?: Array<[string, string]>; path?: string }) {
  const root = scratch();
  mkdirSync(join(root, 'bin'));
  copyFileSync(LAUNCHER, join(root, 'bin/zonecopy'));
  if (layout.embedded) fakeNode(join(root, 'node/bin/node'), layout.embedded);
  const search = (layout.search ?? []).map(([dir, major]) => fakeNode(join(root, dir, 'node'), major));
  const pathDir = join(root, 'pathbin');
  mkdirSync(pathDir);
  symlinkSync(spawnSync('sh', ['-c', 'command -v dirname']).stdout.toString().trim(), join(pathDir, 'dirname'));
  if (layout.path) fakeNode(join(pathDir, 'node'), layout.path);
  const result = spawnSync('/bin/sh', [join(root, 'bin/zonecopy')], {
    env: { PATH: pathDir, ZONECOPY_PRINT_NODE: '1', ZONECOPY_NODE_SEARCH: search.join(' ') },
    encoding: 'utf8',
  });
  return { root, code: result.status, node: result.stdout.trim(), stderr: result.stderr };
}

describe('node detection (bin/zonecopy, install.sh)', () => {
  it('prefers the node shipped in the installation', () => {
    const r = install({ embedded: '22', search: [['tools', '24']], path: '21' });
    assert.equal(r.node, join(r.root, 'node/bin/node'));
  });

  it('skips a node older than 20 and takes pkgsrc /opt/tools before /opt/local and PATH', () => {
    const r = install({
      embedded: '18',
      search: [
        ['tools', '20'],
        ['local', '22'],
      ],
      path: '23',
    });
    assert.equal(r.node, join(r.root, 'tools/node'));
  });

  it('falls back to PATH and ignores a node that prints garbage or is as old as SmartOS v0.10', () => {
    const r = install({
      search: [
        ['tools', 'not-a-version'],
        ['local', 'v0.10.48'],
      ],
      path: '20',
    });
    assert.equal(r.node, join(r.root, 'pathbin/node'));
  });

  it('refuses with exit 2 and tells how to get one with pkgsrc when none is >= 20', () => {
    const r = install({ embedded: '18', search: [['local', '16']], path: '0' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /needs Node\.js >= 20/);
    assert.match(r.stderr, /pkgin -y install nodejs/);
  });
});
