/** The first vertical slice: an OS zone, full then incremental, received with the source's guids. */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { createFixtures, fixtureUuid } from './fixtures.js';
import {
  exists,
  resetHosts,
  sh,
  snapshotsOf,
  target,
  writeConfig,
  zfsGet,
  zonecopy,
  type TestConfig,
} from './harness.js';

describe('backup of an OS zone over ssh', () => {
  let uuid: string;
  let config: TestConfig;
  let datasets: string[];

  before(async () => {
    await resetHosts();
    await createFixtures(['joyent']);
    uuid = await fixtureUuid('joyent');
    datasets = [`zones/${uuid}`, `zones/${uuid}/data`];
    config = writeConfig();
  });

  it('first run sends every dataset in full and the backup host has the same snapshot guids', async () => {
    const run = await zonecopy(['backup', uuid, '--groupName', 'daily', '--name', 'first', '--json'], config);
    assert.equal(run.code, 0, run.stderr + run.stdout);
    const report = JSON.parse(run.stdout) as {
      results: Array<{ datasets: Array<{ dataset: string; mode: string; bytes: number }> }>;
    };
    for (const dataset of datasets) {
      const source = await snapshotsOf(dataset);
      const received = await snapshotsOf(target(dataset));
      assert.deepEqual(
        received.map((s) => s.name),
        ['daily-first'],
        `${target(dataset)}: ${JSON.stringify(received)}`,
      );
      assert.equal(received[0]!.guid, source.find((s) => s.name === 'daily-first')!.guid);
    }
    // full streams take the OpenSSH path, where the count comes from `zfs receive -v` (3 digits)
    const data = report.results[0]!.datasets.find((d) => d.dataset === datasets[1])!;
    assert.equal(data.mode, 'full');
    const size = Number(/^size\s+(\d+)$/m.exec(await sh(`zfs send -nP ${datasets[1]}@daily-first 2>&1`))![1]);
    assert.ok(Math.abs(data.bytes - size) < size * 0.02, `reported ${data.bytes} bytes, zfs send -nP says ${size}`);
  });

  it('second run is incremental: only the new snapshot crosses, guids match', async () => {
    await sh(`head -c 1M /dev/urandom > /zones/${uuid}/data/incremental.bin`);
    const run = await zonecopy(['backup', uuid, '--groupName', 'daily', '--name', 'second', '--json'], config);
    assert.equal(run.code, 0, run.stderr);
    const report = JSON.parse(run.stdout) as {
      results: Array<{ datasets: Array<{ dataset: string; mode: string; bytes: number }> }>;
    };
    const data = report.results[0]!.datasets.find((d) => d.dataset === `zones/${uuid}/data`)!;
    assert.equal(data.mode, 'incremental');
    assert.ok(data.bytes > 1_000_000 && data.bytes < 3_000_000, `incremental stream of ${data.bytes} bytes`);
    for (const dataset of datasets) {
      const source = await snapshotsOf(dataset);
      const received = await snapshotsOf(target(dataset));
      assert.deepEqual(
        received.map((s) => s.name),
        ['daily-first', 'daily-second'],
      );
      assert.deepEqual(
        received.map((s) => s.guid),
        source.filter((s) => s.name.startsWith('daily-')).map((s) => s.guid),
      );
    }
  });

  it('receives without mounting on the backup host (-u)', async () => {
    assert.equal(await zfsGet(target(`zones/${uuid}/data`), 'mounted'), 'no');
  });

  it('an unknown VM UUID exits non-zero with a message naming it, and changes nothing', async () => {
    const unknown = '11111111-2222-3333-4444-555555555555';
    const before = await sh('zfs list -H -t all -o name');
    const run = await zonecopy(['backup', unknown], config);
    assert.equal(run.code, 1);
    assert.match(run.stderr + run.stdout, new RegExp(`VM ${unknown} not found`));
    assert.equal(await sh('zfs list -H -t all -o name'), before);
    assert.equal(await exists(target(`zones/${unknown}`)), false);
  });
});
