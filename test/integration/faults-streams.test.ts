/** Fault injection, part 1: the stream cut at 8 byte offsets, every strategy, full and incremental. */
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import {
  assertChainsVerify,
  assertNoLeftovers,
  backup,
  dropTargets,
  failThenRecover,
  fault,
  printFaultTable,
  setUpFaultFixture,
} from './faults-harness.js';
import { PROJECT, run, sh, target, writeConfig } from './harness.js';

describe('fault injection: cut streams', () => {
  before(setUpFaultFixture);
  after(printFaultTable);

  // 8 byte offsets, each path cut at (or just after) its start and late, mid-stream: full and incremental
  // ssh_gzip streams and the OpenSSH bulk connection 2 each; the receiving side of mbuffer, one path for
  // both strategies, late in mbuffer's plain stream and at the start of mbuffer_gzip's (a gzip stream cut
  // late is ssh_gzip's). A third, early cut per path took the late cut's path (part of the stream
  // arrived), so it was dropped.
  const fullCuts = [0, 2500000];
  const incrementalCuts = [1, 2800000];
  const opensshCuts = [10000, 2200000];
  const mbufferCuts = { mbuffer: [1500000], mbuffer_gzip: [200] };
  it(`ssh_gzip: the stream cut at ${fullCuts.length} offsets of the full stream, then resumed or restarted`, async () => {
    // the first backup of the data set is full; cut it, then let each next run go on from the token
    for (const cut of fullCuts) {
      await dropTargets();
      const cutter = writeConfig({
        transferStrategy: 'ssh_gzip',
        compressionCmd: ['head', '-c', String(cut)],
        decompressionCmd: ['cat'],
      });
      await failThenRecover(() => backup([], cutter), /failed/);
    }
    fault.table.push(`stream cut, full send, ssh_gzip | ${fullCuts.length} offsets | pass`);
  });

  it(`ssh_gzip: the stream cut at ${incrementalCuts.length} offsets of incremental streams`, async () => {
    for (const cut of incrementalCuts) {
      await sh(`head -c 3M /dev/urandom > /zones/${fault.uuid}/data/inc-${cut}.bin`);
      const cutter = writeConfig({
        transferStrategy: 'ssh_gzip',
        compressionCmd: ['head', '-c', String(cut)],
        decompressionCmd: ['cat'],
      });
      await failThenRecover(() => backup([], cutter), /failed/);
    }
    fault.table.push(`stream cut, incremental, ssh_gzip | ${incrementalCuts.length} offsets | pass`);
  });

  it(`ssh: the stream cut at ${opensshCuts.length} offsets on its way into the OpenSSH bulk connection`, async () => {
    // full sends take the OpenSSH path (small incrementals go over the ssh2 channel, cut above with ssh_gzip)
    for (const cut of opensshCuts) {
      await dropTargets();
      const dir = `/tmp/ssh-cut-${cut}`;
      await sh(`mkdir -p ${dir}`);
      writeFileSync(`${dir}/ssh`, `#!/bin/sh\nhead -c ${cut} | /usr/bin/ssh "$@"\n`);
      chmodSync(`${dir}/ssh`, 0o755);
      await failThenRecover(
        () =>
          run(
            `${PROJECT}/bin/zonecopy`,
            ['backup', fault.uuid, '--groupName', 'fault', '--name', `r${++fault.round}`],
            { env: { ZONECOPY_CONFIG: fault.config.path, PATH: `${dir}:${process.env.PATH}` } },
          ),
        /failed/,
      );
    }
    fault.table.push(
      `stream cut, ssh over the OpenSSH bulk connection (full sends) | ${opensshCuts.length} offsets | pass`,
    );
  });

  it('an interrupted receive is resumed from its token; a stale token is aborted and the stream starts over', async () => {
    const data = `zones/${fault.uuid}/data`;
    const token = async () => (await sh(`zfs get -H -o value receive_resume_token ${target(data)}`)).trim();
    const cutter = writeConfig({
      transferStrategy: 'ssh_gzip',
      compressionCmd: ['head', '-c', '3000000'],
      decompressionCmd: ['cat'],
    });
    // resumed: the cut leaves a token, and the next run finishes that stream with zfs send -t
    await sh(`head -c 6M /dev/urandom > /zones/${fault.uuid}/data/resume-1.bin`);
    type Row = { dataset: string; mode: string; bytes: number; error?: string };
    const rowOf = (run: { stdout: string }) =>
      (JSON.parse(run.stdout) as { results: Array<{ datasets: Row[] }> }).results[0]!.datasets.find(
        (d) => d.dataset === data,
      )!;
    const cut = await backup(['--json'], cutter);
    assert.equal(cut.code, 1, cut.stdout + cut.stderr);
    assert.notEqual(await token(), '-', 'the cut receive left no resume token');
    // the report says what arrived, that it is kept, and that the next run resumes it
    const cutRow = rowOf(cut);
    assert.match(cutRow.error!, /arrived and is kept there \(receive_resume_token\): the next run resumes from there/);
    // what arrived is what the token says: its contents, as zfs send -nv -t prints them
    const kept = Number(/^\s*bytes = (0x[0-9a-f]+)$/m.exec(await sh(`zfs send -nv -t ${await token()} 2>&1`))?.[1]);
    assert.ok(kept > 0, 'the token keeps some bytes');
    assert.equal(cutRow.bytes, kept, `${cutRow.bytes} bytes reported as arrived, the token says ${kept}`);
    const resumed = await backup(['--json']);
    assert.equal(resumed.code, 0, resumed.stdout + resumed.stderr);
    assert.match(resumed.stderr, /resuming the interrupted receive into/);
    assert.equal(rowOf(resumed).mode, 'resumed');
    await assertChainsVerify();
    // stale: the snapshot the token describes is gone from the source, so the partial receive is
    // aborted (zfs receive -A) and the dataset goes on from its last common snapshot
    await sh(`head -c 6M /dev/urandom > /zones/${fault.uuid}/data/resume-2.bin`);
    const cutAgain = await backup([], cutter);
    assert.equal(cutAgain.code, 1, cutAgain.stdout + cutAgain.stderr);
    assert.notEqual(await token(), '-', 'the second cut left no resume token');
    await sh(`zfs destroy ${data}@fault-r${fault.round}`);
    const restarted = await backup();
    assert.equal(restarted.code, 0, restarted.stdout + restarted.stderr);
    assert.match(restarted.stderr, /no longer matches the source.*aborting it/);
    await assertChainsVerify();
    await assertNoLeftovers();
    fault.table.push('resume token: resumed; stale token aborted, then sent again | 2 | pass');
  });

  it('mbuffer and mbuffer_gzip: the receiving side cut, late and at its start', async () => {
    for (const [strategy, offsets] of Object.entries(mbufferCuts)) {
      for (const cut of offsets) {
        await sh(`head -c 2M /dev/urandom > /zones/${fault.uuid}/data/mb-${strategy}-${cut}.bin`);
        const wrapper = `/tmp/mbuffer-cut-${cut}`;
        writeFileSync(wrapper, `#!/bin/sh\nmbuffer "$@" | head -c ${cut}\n`);
        chmodSync(wrapper, 0o755);
        const cutter = writeConfig({
          transferStrategy: strategy,
          mBufferRemotePath: wrapper,
          compressionCmd: ['gzip', '-1'],
          decompressionCmd: ['gunzip'],
        });
        await failThenRecover(
          () => backup([], cutter),
          /failed/,
          () => backup(['--transferStrategy', strategy]),
        );
      }
    }
    fault.table.push(`stream cut, mbuffer + mbuffer_gzip | ${Object.values(mbufferCuts).flat().length} offsets | pass`);
  });
});
