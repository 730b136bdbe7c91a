import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forgetTarget, forgetTargetReport } from '../../src/cli/forget-target-command.js';
import { UsageError } from '../../src/cli/session.js';
import { configSchema, type ConfigInput } from '../../src/config/schema.js';
import type { Argv } from '../../src/host/quote.js';
import { ILLUMOS_HOLDS_BATCH } from '../../src/zfs/holds.js';
import { ScriptedHost } from './scripted-host.js';

const row = (...cells: string[]) => cells.join('\t');
const VM = 'zones/6b0a2c3e-8f1d-4e0a-9c61-2f5d7a9b1c44';

/** Snapshots in two pools: a few held by the gone target, one by a target whose name starts alike, others by no one or by an operator. */
const HOLDS: Array<[string, string]> = [
  [`${VM}@daily-1`, 'zonecopy:gone:daily'],
  [`${VM}@daily-1`, 'zonecopy:bk1:daily'],
  [`${VM}@daily-1`, 'operator-keep'],
  [`${VM}/data@daily-1`, 'zonecopy:gone:daily'],
  [`${VM}@weekly-1`, 'zonecopy:gone:weekly'],
  [`${VM}@weekly-1`, 'zonecopy:goneX:weekly'],
  ['data2/other@x', 'zonecopy:gone'],
  ['data2/other@y', 'gone:daily'],
];
const LISTED = [...new Set(HOLDS.map(([snapshot]) => snapshot)), `${VM}@daily-0`, `${VM}-disk0@daily-1`];

function host(kernel: string, dryRun = false): ScriptedHost {
  const answer = (argv: Argv) => {
    if (argv[0] === 'uname') return { stdout: `${kernel}\n` };
    if (argv[1] === 'list') {
      const refs = (s: string) => HOLDS.filter(([snapshot]) => snapshot === s).length;
      return { stdout: LISTED.map((s) => row(s, String(refs(s)))).join('\n') };
    }
    if (argv[1] === 'holds') {
      const asked = new Set(argv.slice(3));
      const lines = HOLDS.filter(([s]) => asked.has(s)).map(([s, tag]) => row(s, tag, 'Mon Nov 30 2026'));
      return { stdout: lines.join('\n') };
    }
    return undefined;
  };
  return new ScriptedHost(answer, dryRun);
}

const config = (input: Partial<ConfigInput>) => configSchema.parse(input);
const twoTargets = config({
  backupDestinationBasePath: 'backup/zones',
  targets: [
    { name: 'bk1', type: 'ssh', backupDestination: 'bk1.example' },
    { name: 'offsite', type: 's3', s3: { bucket: 'zone-backups' } },
  ],
});

describe('forget-target', () => {
  it("releases every hold of the target's tags (any group, any pool) and no one else's, one zfs release per tag", async () => {
    const h = host('Linux');
    const released = await forgetTarget(h, twoTargets, 'gone', 'c.json');
    assert.deepEqual(released.map((r) => `${r.tag} ${r.snapshot}`).sort(), [
      `zonecopy:gone:daily ${VM}/data@daily-1`,
      `zonecopy:gone:daily ${VM}@daily-1`,
      `zonecopy:gone:weekly ${VM}@weekly-1`,
    ]);
    assert.deepEqual(h.commands[0], ['zfs', 'list', '-H', '-p', '-t', 'snapshot', '-o', 'name,userrefs']);
    const asked = h.commands.filter((c) => c[1] === 'holds').flatMap((c) => c.slice(3));
    assert.deepEqual(
      asked.sort(),
      [...new Set(HOLDS.map(([s]) => s))].sort(),
      'only snapshots with holds are asked about',
    );
    assert.deepEqual(
      h.commands.filter((c) => c[1] === 'release'),
      [
        ['zfs', 'release', 'zonecopy:gone:daily', `${VM}@daily-1`, `${VM}/data@daily-1`],
        ['zfs', 'release', 'zonecopy:gone:weekly', `${VM}@weekly-1`],
      ],
    );
  });

  it("asks illumos's zfs holds in its small batches", async () => {
    const h = host('SunOS');
    await forgetTarget(h, twoTargets, 'gone', 'c.json');
    const batches = h.commands.filter((c) => c[1] === 'holds');
    assert.ok(batches.length > 0);
    for (const b of batches) assert.ok(b.length - 3 <= ILLUMOS_HOLDS_BATCH, b.join(' '));
  });

  it('a dry run lists the same holds and releases nothing', async () => {
    const h = host('Linux', true);
    const released = await forgetTarget(h, twoTargets, 'gone', 'c.json');
    assert.equal(released.length, 3);
    assert.deepEqual(
      h.commands.filter((c) => c[1] === 'release'),
      [],
    );
    assert.deepEqual(h.skippedLines, [
      `zfs release zonecopy:gone:daily ${VM}@daily-1 ${VM}/data@daily-1`,
      `zfs release zonecopy:gone:weekly ${VM}@weekly-1`,
    ]);
    assert.match(
      forgetTargetReport('gone', released, true),
      /^would release zonecopy:gone:daily on .*\nwould release 3 hold\(s\) of target "gone" on this host\n$/s,
    );
  });

  it('refuses a target still configured, and a name that is none, before running anything', async () => {
    const cases: Array<[ReturnType<typeof config>, string, RegExp]> = [
      [
        twoTargets,
        'offsite',
        /"offsite": it is still a target in c\.json.*remove it from the configuration \("targets"\) first/,
      ],
      [config({ backupDestination: 'bk.example', backupDestinationBasePath: 'b' }), 'bk.example', /still a target/],
      [config({ backupTarget: 's3', s3: { bucket: 'zone-backups' } }), 's3', /still a target/],
      [twoTargets, 'zonecopy:gone', /not a target name/],
      [twoTargets, '-x', /not a target name/],
    ];
    for (const [c, name, message] of cases) {
      const h = host('Linux');
      await assert.rejects(
        forgetTarget(h, c, name, 'c.json'),
        (e: Error) => e instanceof UsageError && message.test(e.message),
      );
      assert.deepEqual(h.commands, [], `${name}: no command ran`);
    }
  });

  it('a target without holds: says so, releases nothing', async () => {
    const h = host('Linux');
    const released = await forgetTarget(h, twoTargets, 'never', 'c.json');
    assert.deepEqual(released, []);
    assert.deepEqual(
      h.commands.filter((c) => c[1] === 'release'),
      [],
    );
    assert.equal(
      forgetTargetReport('never', released, false),
      'no holds of target "never" on this host (tags zonecopy:never:<group>)\n',
    );
  });
});
