/**
 * build_distribution.sh and install.sh, end to end in the guest: install into a prefix, back up a
 * VM from the installed copy for real, upgrade (config kept), a damaged installer refused, cron
 * lines installed, uninstall. The installer is built on the CI host before the guest boots
 * (test/run.ts), so here it is only used, as an operator would. The same steps under ksh93 and posh
 * with illumos' tail, digest and crontab: test/unit/packaging-shells.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync, mkdtempSync, copyFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { createFixtures, fixtureUuid } from './fixtures.js';
import { PROJECT, resetHosts, run, snapshotsOf, target, writeConfig } from './harness.js';

const INSTALLER = `${PROJECT}/dist/install.sh`;

describe('packaging: install.sh', () => {
  let work: string;
  let prefix: string;
  let uuid: string;
  let fakeCrontab: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    await resetHosts();
    await createFixtures(['joyent']);
    uuid = await fixtureUuid('joyent');
    work = mkdtempSync(join(tmpdir(), 'zc-install-'));
    prefix = join(work, 'opt/zonecopy');
    // the guest has no cron; a crontab that keeps root's table in a file is enough to see the lines
    const bin = join(work, 'bin');
    mkdirSync(bin);
    fakeCrontab = join(work, 'crontab.root');
    writeFileSync(
      join(bin, 'crontab'),
      `#!/bin/sh\nif [ "$1" = -l ]; then cat ${fakeCrontab} 2>/dev/null; exit 0; fi\ncp "$1" ${fakeCrontab}\n`,
    );
    chmodSync(join(bin, 'crontab'), 0o755);
    env = { PATH: `${bin}:${process.env.PATH}` };
  });

  it('installs into the prefix and prints the next step', async () => {
    assert.ok(existsSync(INSTALLER), `${INSTALLER} missing: test/run.ts builds it first`);
    const result = await run('sh', [INSTALLER, '--prefix', prefix], { env });
    assert.equal(result.code, 0, result.stderr);
    for (const file of [
      'bin/backup',
      'bin/zonecopy',
      'dist/zonecopy.mjs',
      'configuration.json.example',
      'smf/zonecopy-cron.xml',
      'VERSION',
      'README',
    ]) {
      assert.ok(existsSync(join(prefix, file)), file);
    }
    assert.match(result.stdout, /backup --dry-run <vm-uuid>/);
    assert.equal(existsSync(join(prefix, 'configuration.json')), false);
  });

  it('the installed copy backs a VM up for real', async () => {
    const config = writeConfig();
    copyFileSync(config.path, join(prefix, 'configuration.json'));
    const result = await run(join(prefix, 'bin/backup'), [uuid, '--groupName', 'installed', '--name', 'one']);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.deepEqual(
      (await snapshotsOf(target(`zones/${uuid}`))).map((s) => s.name),
      ['installed-one'],
    );
  });

  it('an upgrade keeps configuration.json and installs cron lines', async () => {
    const before = readFileSync(join(prefix, 'configuration.json'), 'utf8');
    const result = await run(
      'sh',
      [INSTALLER, '--prefix', prefix, '--cron', '0 2 * * *', '--cron-args', `${uuid} --groupName daily`],
      { env },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /upgrad/);
    assert.equal(readFileSync(join(prefix, 'configuration.json'), 'utf8'), before);
    assert.match(
      readFileSync(fakeCrontab, 'utf8'),
      new RegExp(
        `^0 2 \\* \\* \\* ${prefix}/bin/backup ${uuid} --groupName daily >>${prefix}/log/cron\\.log 2>&1 # zonecopy$`,
        'm',
      ),
    );
    assert.match(result.stdout, /not SmartOS/);
  });

  it('refuses a damaged installer and writes nothing', async () => {
    const damaged = join(work, 'damaged.sh');
    const bytes = readFileSync(INSTALLER);
    bytes[bytes.length - 100]! ^= 0xff;
    writeFileSync(damaged, bytes);
    const fresh = join(work, 'fresh');
    const result = await run('sh', [damaged, '--prefix', fresh], { env });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /damaged/);
    assert.equal(existsSync(fresh), false);
  });

  it('building twice gives the same payload checksum (reproducible)', () => {
    const sums = readFileSync(`${PROJECT}/build/install-checksums.txt`, 'utf8').trim().split('\n');
    assert.equal(sums.length, 2);
    assert.equal(sums[0], sums[1]);
  });

  it('uninstall removes the program and the cron lines but keeps the configuration', async () => {
    const result = await run('sh', [INSTALLER, '--uninstall', '--prefix', prefix], { env });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(existsSync(join(prefix, 'dist/zonecopy.mjs')), false);
    assert.equal(existsSync(join(prefix, 'configuration.json')), true);
    assert.doesNotMatch(readFileSync(fakeCrontab, 'utf8'), /# zonecopy/);
  });
});
