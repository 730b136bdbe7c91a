/**
 * The backup host's own cases on real ZFS: strategies, intermediate snapshots, holds, target layout.
 * Remote rotation and a failed stream run for both targets in targets.test.ts.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createFixtures, fixtureUuid } from './fixtures.js';
import {
  rebooted,
  resetHosts,
  sh,
  snapshotsOf,
  target,
  writeConfig,
  zfsGet,
  zonecopy,
  type TestConfig,
} from './harness.js';

const names = async (dataset: string) => (await snapshotsOf(dataset)).map((s) => s.name);

describe('transfer and rotation', () => {
  let uuid: string;
  let root: string;
  let config: TestConfig;

  before(async () => {
    await resetHosts();
    await createFixtures(['joyent']);
    uuid = await fixtureUuid('joyent');
    root = `zones/${uuid}`;
    config = writeConfig();
  });

  // ssh is every other case's strategy, and faults-streams.test.ts ends each mbuffer and mbuffer_gzip cut with a
  // run of that strategy whose guids and leftover processes it checks: only ssh_gzip's plain delivery is left
  for (const strategy of ['ssh_gzip']) {
    it(`strategy ${strategy} delivers a snapshot with the source guid and leaves no process behind`, async () => {
      await sh(`head -c 300K /dev/urandom > /zones/${uuid}/data/${strategy}.bin`);
      const result = await zonecopy(
        ['backup', uuid, '--groupName', 'strat', '--name', strategy, '--transferStrategy', strategy],
        config,
      );
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const source = (await snapshotsOf(`${root}/data`)).find((s) => s.name === `strat-${strategy}`)!;
      const received = (await snapshotsOf(target(`${root}/data`))).find((s) => s.name === `strat-${strategy}`);
      assert.equal(received?.guid, source.guid);
      assert.equal((await sh('pgrep -c -x mbuffer || true')).trim(), '0');
    });
  }

  it('sends intermediate group snapshots that the target lacks (-I), and keeps foreign ones local', async () => {
    await sh(
      `zfs snapshot ${root}@strat-manual1 && zfs snapshot ${root}@vmsnap-foreign && zfs snapshot ${root}@strat-manual2`,
    );
    const result = await zonecopy(['backup', uuid, '--groupName', 'strat', '--name', 'after'], config);
    assert.equal(result.code, 0, result.stderr);
    const remote = await names(target(root));
    assert.deepEqual(remote.slice(-3), ['strat-manual1', 'strat-manual2', 'strat-after']);
    assert.ok(!remote.includes('vmsnap-foreign'));
  });

  it('holds move to the new snapshot on both sides, except for a dataset whose transfer failed: its last common one stays held', async () => {
    const tag = 'zonecopy:127.0.0.2:hl';
    const data = `${root}/data`;
    // snapshot names of `dataset` that carry zonecopy's hold for this group
    const held = async (dataset: string) =>
      (
        await sh(
          `zfs list -H -t snapshot -o name -d 1 ${dataset} | xargs zfs holds -H | awk -F '\t' '$2 == "${tag}" { sub(/.*@/, "", $1); print $1 }'`,
        )
      )
        .split('\n')
        .filter(Boolean)
        .sort();
    const backup = (name: string, ...extra: string[]) =>
      zonecopy(['backup', uuid, '--groupName', 'hl', '--name', name, ...extra], config);
    assert.equal((await backup('h1')).code, 0);
    for (const d of [root, data, target(root), target(data)]) assert.deepEqual(await held(d), ['hl-h1'], d);

    // only the data dataset fails: its target was changed on the backup host
    await sh(
      `zfs set readonly=off mountpoint=/mnt/hl ${target(data)} && zfs mount ${target(data)} && echo changed > /mnt/hl/changed.txt && zfs umount ${target(data)} && zfs inherit mountpoint ${target(data)}`,
    );
    await sh(`echo more > /${data}/more-hl.txt`);
    const failed = await backup('h2');
    assert.equal(failed.code, 1, failed.stdout);
    for (const d of [root, target(root)]) assert.deepEqual(await held(d), ['hl-h2'], `${d}: the hold moved`);
    for (const d of [data, target(data)])
      assert.deepEqual(await held(d), ['hl-h1'], `${d}: the last common snapshot stays held`);

    const fixed = await backup('h3', '--rollback');
    assert.equal(fixed.code, 0, fixed.stdout + fixed.stderr);
    for (const d of [root, data, target(root), target(data)]) assert.deepEqual(await held(d), ['hl-h3'], d);

    // the new hold fails on the backup host (a dataset in the target tree already has the tag on a
    // snapshot of the new name), while the old one comes off at the same time: it is put back
    const extra = `${target(data)}/extra`;
    await sh(`zfs create ${extra} && zfs snapshot ${extra}@hl-h4 && zfs hold ${tag} ${extra}@hl-h4`);
    const holdFails = await backup('h4');
    assert.notEqual(holdFails.code, 0, holdFails.stdout);
    assert.match(
      holdFails.stdout + holdFails.stderr,
      /hold zonecopy:127\.0\.0\.2:hl on zcbackup@127\.0\.0\.2:22 failed/,
    );
    for (const d of [target(root), target(data)])
      assert.deepEqual(await held(d), ['hl-h3'], `${d}: the previous hold is back`);
    for (const d of [root, data]) assert.deepEqual(await held(d), ['hl-h4'], `${d}: the SmartOS side moved on`);

    await sh(`zfs release ${tag} ${extra}@hl-h4 && zfs destroy -r ${extra}`);
    assert.equal((await backup('h5')).code, 0);
    for (const d of [root, data, target(root), target(data)]) assert.deepEqual(await held(d), ['hl-h5'], d);

    // a target gone for good: forget-target releases its tag in every pool here, and no other tag
    // (refusing a configured target and finding no holds are unit-tested: each run here costs seconds)
    const tags = async (snapshot: string) =>
      (await sh(`zfs holds -H ${snapshot} | cut -f 2 | sort`)).split('\n').filter(Boolean);
    const [mine, theirs] = [`${root}@hl-h5`, `${target(data)}@hl-h5`];
    await sh(`zfs hold zonecopy:gone:hl ${mine} ${theirs} && zfs hold zonecopy:goneX:hl ${mine}`);
    const dry = await zonecopy(['forget-target', 'gone', '--dry-run'], config);
    assert.match(dry.stdout, /would release 2 hold\(s\) of target "gone"/);
    assert.deepEqual(await tags(mine), ['zonecopy:127.0.0.2:hl', 'zonecopy:gone:hl', 'zonecopy:goneX:hl']);
    const forgot = await zonecopy(['forget-target', 'gone'], config);
    assert.equal(forgot.code, 0, forgot.stderr);
    assert.match(forgot.stdout, new RegExp(`^released zonecopy:gone:hl on ${theirs}$`, 'm'));
    assert.match(forgot.stdout, /^released 2 hold\(s\) of target "gone" on this host$/m);
    assert.deepEqual(await tags(mine), ['zonecopy:127.0.0.2:hl', 'zonecopy:goneX:hl']);
    assert.deepEqual(await tags(theirs), ['zonecopy:127.0.0.2:hl']);
    await sh(`zfs release zonecopy:goneX:hl ${mine}`);
  });

  // a base whose name starts with the source pool name (zones2/backup; smartcopy defect 7): target paths are
  // compared by dataset components, not string prefixes, which backup-plan.test.ts checks on the planned steps

  it('small streams go in series; one stopped by a changed target fails only its datasets, the streams after it are sent one by one, and --rollback completes', async () => {
    const children = Array.from({ length: 12 }, (_, i) => `${root}/data/s${i}`);
    await sh(children.map((c) => `zfs create ${c}`).join(' && '));
    const datasets = [root, `${root}/data`, ...children];
    type Report = {
      results: Array<{ datasets: Array<{ dataset: string; result: string; bytes: number; error?: string }> }>;
    };
    const backup = async (name: string, ...extra: string[]) => {
      const result = await zonecopy(
        ['backup', uuid, '--groupName', 'ser', '--name', name, '--json', '--verbose', ...extra],
        config,
      );
      return { ...result, report: JSON.parse(result.stdout) as Report };
    };
    // one listing per side (a zfs list per dataset and side cost 28 calls a check)
    const guids = async (top: string) =>
      new Map(
        (await sh(`zfs list -Hp -t snapshot -o name,guid -r ${top}`))
          .split('\n')
          .filter(Boolean)
          .map((line) => line.split('\t') as [string, string]),
      );
    const arrived = async (name: string) => {
      const [here, there] = await Promise.all([guids(root), guids(target(root))]);
      return datasets.filter((d) => {
        const guid = here.get(`${d}@${name}`);
        return !guid || there.get(`${target(d)}@${name}`) !== guid;
      });
    };
    assert.equal((await backup('s1')).code, 0);

    const quiet = await backup('s2');
    assert.equal(quiet.code, 0, quiet.stderr);
    assert.equal(
      quiet.stderr.match(/\(in a series\)/g)?.length,
      datasets.length,
      'every no-change stream went in a series',
    );
    assert.ok(
      quiet.report.results[0]!.datasets.every((d) => d.bytes > 0),
      'bytes come from each receive',
    );
    assert.deepEqual(await arrived('ser-s2'), []);

    // the first two streams (the zone root and its data set) cannot be received: whichever
    // series they are in stops at them
    for (const d of [root, `${root}/data`]) {
      await sh(
        `zfs set readonly=off mountpoint=/mnt/ser ${target(d)} && zfs mount ${target(d)} && echo changed > /mnt/ser/changed-ser.txt && zfs umount ${target(d)} && zfs inherit mountpoint ${target(d)}`,
      );
    }
    const stopped = await backup('s3');
    assert.equal(stopped.code, 1, stopped.stderr);
    const failed = stopped.report.results[0]!.datasets.filter((d) => d.result === 'failed');
    assert.deepEqual(failed.map((d) => d.dataset).sort(), [root, `${root}/data`].sort());
    for (const d of failed) assert.match(d.error!, /--rollback/);
    assert.ok(
      failed.some((d) => /stopped at stream 1,/.test(d.error!)),
      'a series stopped at its first stream',
    );
    assert.deepEqual(
      await arrived('ser-s3'),
      [root, `${root}/data`],
      'every other dataset arrived, the ones after a stop sent one by one',
    );
    assert.equal(
      (await sh(`zfs list -H -o receive_resume_token -r ${target(root)} | grep -vc '^-$' || true`)).trim(),
      '0',
      'no partial receive left',
    );

    const fixed = await backup('s4', '--rollback');
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.deepEqual(await arrived('ser-s4'), []);
  });

  it('a snapshot made by hand on the backup host after the common one: refused with the ways out, and --rollback destroys it, named in the report', async () => {
    const backup = (name: string, ...extra: string[]) =>
      zonecopy(['backup', uuid, '--groupName', 'man', '--name', name, ...extra], config);
    assert.equal((await backup('m1')).code, 0);
    await sh(`zfs snapshot ${target(root)}@manual-1 && zfs snapshot ${target(root)}@manual-2`);
    const refused = await backup('m2');
    assert.equal(refused.code, 1, refused.stdout);
    const said = refused.stdout + refused.stderr;
    assert.match(said, new RegExp(`${target(root)}@manual-1, ${target(root)}@manual-2`));
    assert.match(said, /run again with --rollback/);
    assert.match(said, /destroy or rename them on the backup host/);
    assert.deepEqual((await names(target(root))).slice(-2), ['manual-1', 'manual-2'], 'nothing destroyed unasked');

    const rolled = await backup('m3', '--rollback');
    assert.equal(rolled.code, 0, rolled.stdout + rolled.stderr);
    assert.match(
      rolled.stdout,
      new RegExp(`destroyed by --rollback on the backup host: ${target(root)}@manual-1, ${target(root)}@manual-2`),
    );
    const remote = await snapshotsOf(target(root));
    assert.equal(
      remote.some((s) => s.name.startsWith('manual-')),
      false,
    );
    assert.equal(remote.at(-1)?.guid, (await snapshotsOf(root)).find((s) => s.name === 'man-m3')?.guid);
  });

  it('received datasets are read-only and not mounted by a pool import on the backup host, so the chain survives an export and import', async () => {
    const backup = (name: string) => zonecopy(['backup', uuid, '--groupName', 'imp', '--name', name], config);
    assert.equal((await backup('i1')).code, 0);
    const targets = (await sh(`zfs list -H -o name -r ${target(root)}`)).split('\n').filter(Boolean);
    for (const t of targets)
      assert.deepEqual([await zfsGet(t, 'readonly'), await zfsGet(t, 'canmount')], ['on', 'noauto'], t);
    await sh('zpool export backup && zpool import -d /dev/disk/by-id backup');
    // whatever the import mounted, something on the backup host may write to (a boot does the same)
    const mounted = (
      await sh(`zfs list -H -o name,mounted,mountpoint -r ${target(root)} | awk -F '\t' '$2 == "yes" { print $3 }'`)
    )
      .split('\n')
      .filter(Boolean);
    for (const dir of mounted) await sh(`echo written > '${dir}/written-after-import.txt' || true`);
    assert.deepEqual(mounted, [], 'nothing of the backup was mounted by the import');
    await sh(`echo more > /${root}/data/after-import.txt`);
    const next = await backup('i2');
    assert.equal(next.code, 0, next.stdout + next.stderr);
    for (const d of [root, `${root}/data`]) {
      assert.equal(
        (await snapshotsOf(target(d))).at(-1)?.guid,
        (await snapshotsOf(d)).find((s) => s.name === 'imp-i2')?.guid,
        d,
      );
    }
  });

  it('a program the strategy needs that either host lacks stops the run before any snapshot, saying what, where and how to get it', async () => {
    const before = await names(root);
    const missingRemote = await zonecopy(
      ['backup', uuid, '--groupName', 'prog', '--transferStrategy', 'mbuffer'],
      writeConfig({ mBufferRemotePath: '/opt/zc-none/mbuffer' }),
    );
    assert.equal(missingRemote.code, 1, missingRemote.stdout);
    assert.match(
      missingRemote.stderr + missingRemote.stdout,
      /\/opt\/zc-none\/mbuffer is not found on the backup host zcbackup@127\.0\.0\.2:22 \(PATH=[^)]*\): on SmartOS install it with pkgin .*, or name its full path in mBufferRemotePath/,
    );
    const missingLocal = await zonecopy(
      ['backup', uuid, '--groupName', 'prog', '--transferStrategy', 'ssh_gzip'],
      writeConfig({ compressionCmd: ['zc-no-such-gzip'], decompressionCmd: ['gunzip'] }),
    );
    assert.equal(missingLocal.code, 1, missingLocal.stdout);
    // cron's PATH, plus pkgsrc's folder that bin/zonecopy adds
    assert.match(
      missingLocal.stderr + missingLocal.stdout,
      /zc-no-such-gzip is not found on this host \(PATH=\/usr\/sbin:\/usr\/bin:\/opt\/local\/bin\)/,
    );
    assert.deepEqual(await names(root), before, 'nothing was snapshotted');
  });

  it('a reboot of the SmartOS host between two runs (an empty /root) does not stop the backups', async () => {
    const backup = (name: string) => zonecopy(['backup', uuid, '--groupName', 'boot', '--name', name], config);
    assert.equal((await backup('b1')).code, 0);
    await rebooted(async () => {
      assert.equal(
        (await sh('ls -A /root /root/.ssh'))
          .trim()
          .split('\n')
          .filter((l) => l && !l.endsWith(':'))
          .join(' '),
        '.ssh authorized_keys',
        '/root was emptied',
      );
      const after = await backup('b2');
      assert.equal(after.code, 0, after.stdout + after.stderr);
    });
    assert.equal(
      (await snapshotsOf(target(root))).at(-1)?.guid,
      (await snapshotsOf(root)).find((s) => s.name === 'boot-b2')?.guid,
    );
  });
});
