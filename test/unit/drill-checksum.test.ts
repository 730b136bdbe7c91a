/**
 * The drill's checksum scripts, run as a SmartOS global zone's /bin/sh would run them (ksh93 and
 * posh, illumos' digest from test/illumos-shims, no sha256sum on PATH), and as a Linux host's
 * (dash, sha256sum): what must count (names, types, sizes, modes, content, symlink targets) changes
 * the digest, what must not (the order entries were made in, times) does not.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import {
  parseChecksum,
  TREE_SCRIPT,
  treeChecksumArgv,
  VOLUME_SCRIPT,
  volumeChecksumArgv,
} from '../../src/restore/tree-checksum.js';
import { hostCommand, makeStandIn, SHELLS } from './illumos-stand-in.js';
import { scratchDirectory } from './scratch.js';

const fresh = scratchDirectory('zc-drill-');

/** find, sort, ls, wc are in the platform; the stand-in links only what the packaging scripts need. */
const MORE_TOOLS = ['find', 'sort', 'ls', 'wc', 'sleep'];

type Runner = (script: string, path: string) => { code: number | null; stdout: string; stderr: string };

function illumosRunner(t: TestContext, shell: string): Runner {
  const standIn = makeStandIn(t, shell);
  for (const tool of MORE_TOOLS) symlinkSync(hostCommand(tool), join(standIn.root, 'tools', tool));
  const found = spawnSync(hostCommand(shell), ['-c', 'command -v sha256sum'], { env: standIn.env(), encoding: 'utf8' });
  assert.notEqual(found.status, 0, 'sha256sum must not be reachable, as on SmartOS');
  return (script, path) => {
    const out = spawnSync(hostCommand(shell), ['-c', script, 'sh', path], { env: standIn.env(), encoding: 'utf8' });
    return { code: out.status, stdout: out.stdout, stderr: out.stderr };
  };
}

const linuxRunner: Runner = (script, path) => {
  const out = spawnSync(hostCommand('dash'), ['-c', script, 'sh', path], { encoding: 'utf8' });
  return { code: out.status, stdout: out.stdout, stderr: out.stderr };
};

/** A small tree; `order` reverses the order its entries are created in. */
function tree(order: 'forward' | 'reverse' = 'forward'): string {
  const root = fresh();
  const steps = [
    () => mkdirSync(join(root, 'etc')),
    () => writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0\n'),
    () => writeFileSync(join(root, "a name with spaces, quotes ' and $dollars"), 'x'),
    () => writeFileSync(join(root, 'empty'), ''),
    () => symlinkSync('etc/passwd', join(root, 'link')),
  ];
  const ordered = order === 'forward' ? steps : [steps[0]!, ...steps.slice(1).reverse()];
  for (const step of ordered) step();
  return root;
}

function digestOf(run: Runner, path: string) {
  const out = run(TREE_SCRIPT, path);
  assert.equal(out.code, 0, out.stderr);
  return parseChecksum(out.stdout, out.stderr, path);
}

for (const shell of SHELLS) {
  describe(`tree checksum under ${shell} with illumos digest`, () => {
    it('counts names, types, modes, sizes, content and symlink targets; not creation order or times', (t) => {
      const run = illumosRunner(t, shell);
      const base = digestOf(run, tree());
      assert.equal(base.entries, 6);
      assert.deepEqual(digestOf(run, tree('reverse')), base, 'creation order does not count');
      const touched = tree();
      utimesSync(join(touched, 'etc', 'passwd'), new Date('2001-01-01'), new Date('2001-01-01'));
      assert.deepEqual(digestOf(run, touched), base, 'times do not count');
      const changes: Array<[string, (root: string) => void]> = [
        ['content', (r) => writeFileSync(join(r, 'etc', 'passwd'), 'root:x:0:1\n')],
        ['mode', (r) => chmodSync(join(r, 'empty'), 0o600)],
        ['size', (r) => writeFileSync(join(r, 'empty'), '\0')],
        [
          'name',
          (r) => {
            rmSync(join(r, 'empty'));
            writeFileSync(join(r, 'Empty'), '');
          },
        ],
        [
          'type',
          (r) => {
            rmSync(join(r, 'empty'));
            mkdirSync(join(r, 'empty'));
          },
        ],
        [
          'symlink target',
          (r) => {
            rmSync(join(r, 'link'));
            symlinkSync('etc/passwc', join(r, 'link'));
          },
        ],
      ];
      for (const [what, change] of changes) {
        const changed = tree();
        change(changed);
        assert.notEqual(digestOf(run, changed).sha256, base.sha256, `${what} counts`);
      }
    });

    it("volume checksum: the device's bytes, the same as node's sha256", (t) => {
      const run = illumosRunner(t, shell);
      const device = join(fresh(), 'disk0');
      const bytes = Buffer.alloc(300_000, 7);
      writeFileSync(device, bytes);
      const out = run(VOLUME_SCRIPT, device);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(
        parseChecksum(out.stdout, out.stderr, device).sha256,
        createHash('sha256').update(bytes).digest('hex'),
      );
    });
  });
}

describe('tree checksum on a Linux host (sha256sum)', () => {
  it('gives the same verdicts with sha256sum as with digest', (t) => {
    const base = digestOf(linuxRunner, tree());
    assert.deepEqual(digestOf(linuxRunner, tree('reverse')), base);
    const changed = tree();
    writeFileSync(join(changed, 'etc', 'passwd'), 'other');
    assert.notEqual(digestOf(linuxRunner, changed).sha256, base.sha256);
    assert.equal(digestOf(illumosRunner(t, 'ksh93'), tree()).entries, base.entries);
  });

  it('with neither digest nor sha256sum (a guest without either), openssl gives the same verdicts', (t) => {
    const tools = fresh();
    for (const tool of ['find', 'sort', 'ls', 'wc', 'sed', 'openssl'])
      symlinkSync(hostCommand(tool), join(tools, tool));
    const run: Runner = (script, path) => {
      const out = spawnSync(hostCommand('dash'), ['-c', script, 'sh', path], {
        env: { PATH: tools },
        encoding: 'utf8',
      });
      return { code: out.status, stdout: out.stdout, stderr: out.stderr };
    };
    const base = digestOf(run, tree());
    assert.deepEqual(digestOf(run, tree('reverse')), base);
    const changed = tree();
    chmodSync(join(changed, 'empty'), 0o600);
    assert.notEqual(digestOf(run, changed).sha256, base.sha256);
    assert.equal(digestOf(illumosRunner(t, 'posh'), tree()).entries, base.entries);
  });

  it('a volume whose device appears a moment late (udev) is waited for', () => {
    const device = join(fresh(), 'late');
    const waiter = spawnSync(
      hostCommand('dash'),
      ['-c', `(sleep 1; printf abc > "$1.part"; mv "$1.part" "$1") & ${VOLUME_SCRIPT}`, 'sh', device],
      { encoding: 'utf8' },
    );
    assert.equal(waiter.status, 0, waiter.stderr);
    assert.equal(
      parseChecksum(waiter.stdout, waiter.stderr, device).sha256,
      createHash('sha256').update('abc').digest('hex'),
    );
  });
});

describe('checksum commands', () => {
  it('pass paths as arguments: the script text is fixed whatever the name', () => {
    const hostile = "/zones/x'; rm -rf / #$(reboot)\n";
    assert.deepEqual(treeChecksumArgv(hostile), ['sh', '-c', TREE_SCRIPT, 'sh', hostile]);
    assert.deepEqual(volumeChecksumArgv(hostile), ['sh', '-c', VOLUME_SCRIPT, 'sh', hostile]);
    const out = linuxRunner(TREE_SCRIPT, hostile);
    assert.notEqual(out.code, 0, 'a directory that does not exist is an error, nothing else runs');
  });

  it('a script that wrote to stderr or printed no digest is not trusted', () => {
    const hex = 'a'.repeat(64);
    assert.deepEqual(parseChecksum(`entries 12\n${hex}  -\n`, '', 'x'), { sha256: hex, entries: 12 });
    assert.deepEqual(parseChecksum(`${hex}\n`, '', 'x'), { sha256: hex });
    assert.throws(
      () => parseChecksum(`${hex}\n`, 'sha256sum: ./f: Permission denied', 'zones/x'),
      /checksum of zones\/x failed: .*Permission denied/,
    );
    assert.throws(() => parseChecksum('entries 3\n', '', 'x'), /no digest/);
  });
});
