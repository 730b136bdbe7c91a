/** VM spec per snapshot, email and log reports, configuration errors, dry runs and command counts. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { createFixtures, fixtureUuid } from './fixtures.js';
import { resetHosts, sh, snapshotsOf, target, writeConfig, zonecopy, type TestConfig } from './harness.js';

describe('report, VM spec, configuration and dry run', () => {
  let uuid: string;
  let config: TestConfig;
  let server: SMTPServer;
  let port = 0;
  const mails: ParsedMail[] = [];

  before(async () => {
    await resetHosts();
    await createFixtures(['joyent', 'lx', 'kvm', 'bhyve']);
    uuid = await fixtureUuid('joyent');
    server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      onData(stream, _session, callback) {
        simpleParser(stream).then((mail) => {
          mails.push(mail);
          callback();
        }, callback);
      },
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.server.address() as { port: number }).port;
    config = writeConfig({
      smtpHostname: '127.0.0.1',
      smtpPort: port,
      smtpFromAddress: 'zonecopy@smartos.test',
      smtpToAddress: 'ops@example.test',
    });
  });

  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('stores the vmadm spec and zone config on the backup host per snapshot', async () => {
    const result = await zonecopy(['backup', uuid, '--groupName', 'spec', '--name', 's1'], config);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    const stored = JSON.parse(await sh(`ssh root@127.0.0.2 cat /var/zonecopy/vmspecs/${uuid}/spec-s1.json`)) as {
      uuid: string;
      brand: string;
    };
    const live = JSON.parse(await sh(`vmadm get ${uuid}`)) as { uuid: string; brand: string };
    assert.equal(stored.uuid, uuid);
    assert.equal(stored.brand, live.brand);
    assert.match(await sh(`ssh root@127.0.0.2 cat /var/zonecopy/vmspecs/${uuid}/spec-s1.zonecfg.xml`), /zone/);
  });

  it('emails a success report with a per-dataset table, and appends to the log file', async () => {
    const mail = mails.at(-1)!;
    assert.ok(mail, 'no mail received');
    assert.match(mail.subject ?? '', /Success/);
    assert.match(mail.text ?? '', new RegExp(`zones/${uuid}/data`));
    assert.match(String(mail.html), /<table/);
    assert.match(String(mail.html), new RegExp(`zones/${uuid}/data`));
    const logs = readdirSync(config.logDirectory);
    assert.deepEqual(logs, [`zonecopy-${uuid}.log`]);
    assert.match(readFileSync(`${config.logDirectory}/${logs[0]}`, 'utf8'), /spec-s1/);
  });

  it('emails a failure report that says FAILED, and exits 1 (smartcopy defect 11)', async () => {
    const broken = writeConfig({
      smtpHostname: '127.0.0.1',
      smtpPort: port,
      smtpFromAddress: 'zonecopy@smartos.test',
      smtpToAddress: 'ops@example.test',
      transferStrategy: 'ssh_gzip',
      compressionCmd: ['gzip'],
      decompressionCmd: ['false'],
    });
    const count = mails.length;
    const result = await zonecopy(['backup', uuid, '--groupName', 'spec', '--name', 'bad'], broken);
    assert.equal(result.code, 1);
    assert.equal(mails.length, count + 1);
    const mail = mails.at(-1)!;
    assert.match(mail.subject ?? '', /Fail/);
    assert.doesNotMatch(mail.text ?? '', /completed for/);
    assert.match(mail.text ?? '', /FAILED|failed/);
  });

  it('configuration errors exit 2 and name the key', async () => {
    const unknownKey = writeConfig({ backupDestinaton: 'x' });
    let result = await zonecopy(['backup', uuid], unknownKey);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /backupDestinaton/);
    const badType = writeConfig({ localSnapshotLimit: 'many' });
    result = await zonecopy(['backup', uuid], badType);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /localSnapshotLimit/);
    result = await zonecopy(['backup', 'not-a-uuid'], config);
    assert.equal(result.code, 2);
    result = await zonecopy(['backup', uuid, '--localSnapLimit', 'x'], config);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /localSnapshotLimit|localSnapLimit/);
  });

  it('--dry-run prints the commands that would change anything and changes nothing', async () => {
    const before = await sh('zfs list -Hp -t all -o name,guid');
    const result = await zonecopy(['backup', uuid, '--groupName', 'dry', '--localSnapLimit', '1', '--dry-run'], config);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\[dry-run\] local: zfs snapshot .*@dry-/);
    assert.match(result.stdout, /zfs send -i .* \| ssh zcbackup@127\.0\.0\.2:22 'zfs receive -s -u/);
    assert.equal(await sh('zfs list -Hp -t all -o name,guid'), before);
  });

  it("backup --all: the four brands in one run over one SSH connection, side by side, one summary and one email with a section per VM; --filter takes vmadm's filters, --exclude leaves a VM out", async () => {
    const all = await Promise.all(['joyent', 'lx', 'kvm', 'bhyve'].map(fixtureUuid));
    const mailed = mails.length;
    const accepted = async () =>
      Number(await sh('grep -c "Accepted publickey" /etc/zonecopy-test/backup-host/sshd.log || true'));
    const connectionsBefore = await accepted();
    const result = await zonecopy(['backup', '--all', '--groupName', 'multi', '--name', 'e1', '--json'], config);
    assert.equal(result.code, 0, result.stderr);
    // the ssh2 control connection, plus at most one OpenSSH master shared by the run's bulk streams
    const logins = (await accepted()) - connectionsBefore;
    assert.ok(
      logins >= 1 && logins <= 2,
      `the backup host saw ${logins} SSH logins for 4 VMs; expected one connection per run (two with the OpenSSH bulk master)`,
    );
    const report = JSON.parse(result.stdout) as {
      results: Array<{ uuid: string; status: string; startedAt: string; finishedAt: string }>;
    };
    assert.deepEqual(report.results.map((r) => r.uuid).sort(), [...all].sort());
    for (const vm of all) {
      const here = (await snapshotsOf(`zones/${vm}`)).find((s) => s.name === 'multi-e1');
      const there = (await snapshotsOf(target(`zones/${vm}`))).find((s) => s.name === 'multi-e1');
      assert.ok(here && there && here.guid === there.guid, `${vm}: multi-e1 here ${here?.guid}, there ${there?.guid}`);
    }
    // vmConcurrency 2 (the default): some VMs ran at the same time
    const spans = report.results.map((r) => [Date.parse(r.startedAt), Date.parse(r.finishedAt)] as const);
    assert.ok(
      spans.some(([s1, e1], i) => spans.some(([s2], j) => j !== i && s2 >= s1 && s2 < e1)),
      `no two VMs overlapped: ${JSON.stringify(report.results.map((r) => [r.startedAt, r.finishedAt]))}`,
    );
    assert.equal(mails.length, mailed + 1, 'one email for the run');
    const mail = mails.at(-1)!;
    assert.match(mail.subject ?? '', /Successful for 4 VMs/);
    assert.match(mail.text ?? '', /^4 VM\(s\): 4 succeeded, 0 partly failed, 0 failed\./);
    for (const alias of ['db01', 'ubuntu-lx', 'kvm01', 'debian12'])
      assert.match(mail.text ?? '', new RegExp(`--- ${alias} \\(`));

    // a regex filter over brands, one excluded by alias; per-VM emails when configured
    const perVm = writeConfig({ ...JSON.parse(readFileSync(config.path, 'utf8')), emailPerVm: true });
    const filtered = await zonecopy(
      [
        'backup',
        '--filter',
        'brand=~^(joyent|lx|kvm)$',
        '--exclude',
        'kvm01',
        '--groupName',
        'multi',
        '--name',
        'e2',
        '--json',
      ],
      perVm,
    );
    assert.equal(filtered.code, 0, filtered.stderr);
    const picked = (JSON.parse(filtered.stdout) as { results: Array<{ uuid: string }> }).results.map((r) => r.uuid);
    assert.deepEqual(picked.sort(), [all[0]!, all[1]!].sort());
    assert.equal(mails.length, mailed + 3, 'one email per VM with emailPerVm');
    assert.equal(
      (await snapshotsOf(`zones/${all[2]!}`)).some((s) => s.name === 'multi-e2'),
      false,
    );

    // a filter that matches no VM fails the run, says so, and snapshots nothing
    const before = await sh('zfs list -H -t snapshot -o name | sort');
    const none = await zonecopy(['backup', '--filter', 'tags.role=nosuch', '--groupName', 'multi'], config);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /--filter tags\.role=nosuch matches no VM on this host/);
    assert.equal(await sh('zfs list -H -t snapshot -o name | sort'), before);
  });

  it('a no-change run of the 4-brand fixture set lists each side with a few zfs list calls per VM, however many datasets', async () => {
    const all = await Promise.all(['joyent', 'lx', 'kvm', 'bhyve'].map(fixtureUuid));
    // the case above backed up all four in this group: with nothing changed since, this run sends empty increments
    // (several UUIDs named in one call, where the case above picked them with --all)
    const result = await zonecopy(['backup', ...all, '--groupName', 'multi', '--json'], config);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout) as {
      commands: {
        local: { total: number; byProgram: Record<string, number> };
        remote: { total: number; byProgram: Record<string, number> };
      };
    };
    process.stdout.write(`# no-change run of 4 VMs: ${JSON.stringify(report.commands)}\n`);
    const local = report.commands.local.byProgram;
    const remote = report.commands.remote.byProgram;
    // one vmadm get per VM, and one vmadm lookup that names them and finds which share an image
    assert.equal(local.vmadm, 5);
    assert.equal(local['zfs snapshot'], 4, 'one atomic snapshot call per VM (one pool)');
    // per VM: one recursive listing of its datasets, and its clone origins' datasets and snapshots
    assert.ok(local['zfs list']! <= 3 * 4, `local zfs list calls: ${local['zfs list']}`);
    // per VM: the targets, their parents and the base path; and the targets' snapshots (two parts at most)
    assert.ok(
      remote['zfs list']! >= 2 * 4 && remote['zfs list']! <= 3 * 4,
      `remote zfs list calls: ${remote['zfs list']}`,
    );
    assert.equal(local['zfs send'], remote['zfs receive'], 'one send per received stream');
  });
});
