import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HostStats, type CommandResult, type Host } from '../../src/host/host.js';
import type { Argv } from '../../src/host/quote.js';
import { parseSendEstimate } from '../../src/s3/streams.js';
import { discoverDatasets } from '../../src/smartos/discovery.js';
import { vmadmGet } from '../../src/smartos/vmadm.js';
import { receivedBytes, receivedStreams } from '../../src/transfer/ssh.js';
import { parseHolds } from '../../src/zfs/holds.js';
import { FIXTURE_UUID, RECEIVE_V, RECEIVE_V_SERIES, SEND_NP, VMADM_GET } from './illumos-output.js';

/** The parsers fed what a SmartOS global zone prints (test/unit/illumos-output.ts). */
describe('parsers on illumos output', () => {
  it('zfs receive -v: nicenum sizes with a B (312B, 1.50GB, 15.0GB, 512KB, 1GB)', () => {
    assert.equal(receivedBytes(RECEIVE_V.tiny), 312);
    assert.equal(receivedBytes(RECEIVE_V.full), 1.5 * 2 ** 30);
    assert.equal(receivedBytes(RECEIVE_V.threeDigits), 15 * 2 ** 30);
    assert.equal(receivedBytes(RECEIVE_V.kilo), 512 * 2 ** 10);
    assert.equal(receivedBytes(RECEIVE_V.exactPower), 2 ** 30);
  });

  it("zfs receive -v in a series: one entry per stream, with illumos's whole seconds", () => {
    assert.deepEqual(receivedStreams(RECEIVE_V_SERIES), [
      { bytes: 312, seconds: 1 },
      { bytes: Math.round(2.25 * 2 ** 20), seconds: 1 },
      { bytes: 2 ** 30, seconds: 12 },
    ]);
  });

  it('zfs holds -H: tab-separated lines, and no hold from "no datasets available"', () => {
    const out = `zones/a@daily-1\tzonecopy:b:daily\tMon Nov 30 02:00 2026\nzones/a@daily-1\tkeep\tMon Nov 30 02:00 2026\n`;
    assert.deepEqual([...parseHolds(out, 'zonecopy:b:daily')], ['zones/a@daily-1']);
    assert.equal(parseHolds('no datasets available\n', 'zonecopy:b:daily').size, 0);
    assert.equal(
      parseHolds('no datasets available\n', 'no datasets available').size,
      0,
      'not even for a tag of that name',
    );
  });

  it('zfs send -nP: the size line on stdout', () => {
    assert.equal(parseSendEstimate(SEND_NP.full), 1610612736);
    assert.equal(parseSendEstimate(SEND_NP.incremental), 4212736);
  });

  for (const [brand, object] of Object.entries(VMADM_GET)) {
    it(`vmadm get of a ${brand} VM: parsed, kept verbatim, and its datasets found`, async () => {
      const raw = `${JSON.stringify(object, null, 2)}\n`;
      const host = fixedHost(raw);
      const { spec, raw: kept } = await vmadmGet(host, object.uuid);
      assert.equal(kept, raw);
      assert.equal(spec.brand, brand);
      const u = FIXTURE_UUID[brand as keyof typeof FIXTURE_UUID];
      const expected = {
        joyent: [`zones/${u}`, `zones/${u}/data`],
        lx: [`zones/${u}`],
        kvm: [`zones/${u}`, `zones/${u}-disk0`, `zones/${u}-disk1`],
        bhyve: [`zones/${u}`, `zones/${u}/disk0`, `zones/${u}/disk1`],
      }[brand];
      assert.deepEqual(discoverDatasets(spec).datasets, expected);
    });
  }
});

function fixedHost(stdout: string): Host {
  return {
    label: 'smartos',
    dryRun: false,
    stats: new HostStats(),
    async run(argv: Argv): Promise<CommandResult> {
      assert.deepEqual(argv.slice(0, 2), ['vmadm', 'get']);
      return { host: 'smartos', command: argv.join(' '), stdout, stderr: '', exitCode: 0 };
    },
    spawn: () => {
      throw new Error('not used');
    },
    skipped: () => {},
    close: async () => {},
  };
}
