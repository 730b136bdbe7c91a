import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { resolveTargets, selectTargets } from '../../src/config/targets.js';
import { parseDuration } from '../../src/status/health.js';
import { scratchDirectory } from './scratch.js';

const scratch = scratchDirectory('zc-targets-');

function load(content: unknown) {
  const path = join(scratch(), 'configuration.json');
  writeFileSync(path, JSON.stringify(content));
  return loadConfig(path);
}
const fails = (content: unknown, pattern: RegExp) =>
  assert.throws(
    () => load(content),
    (e: Error) => e instanceof ConfigError && pattern.test(e.message),
    `expected ${pattern}`,
  );

const two = {
  backupDestinationUsername: 'zcbackup',
  backupDestinationBasePath: 'backup/zones',
  remoteSnapshotLimit: 7,
  targets: [
    { name: 'bk1', type: 'ssh', backupDestination: 'bk1.example', remoteSnapshotLimit: 30 },
    { name: 'offsite', type: 's3', s3: { bucket: 'zone-backups' } },
  ],
};

describe('several targets in the configuration', () => {
  it('each target takes what it does not set from the top level', () => {
    const [bk1, offsite] = resolveTargets(load(two));
    assert.deepEqual(
      [bk1!.name, bk1!.type, bk1!.config.backupDestination, bk1!.config.backupDestinationUsername],
      ['bk1', 'ssh', 'bk1.example', 'zcbackup'],
    );
    assert.equal(bk1!.config.remoteSnapshotLimit, 30, "the target's own limit");
    assert.equal(offsite!.config.remoteSnapshotLimit, 7, 'the top-level limit');
    assert.equal(offsite!.config.backupTarget, 's3');
    assert.equal(offsite!.config.s3?.bucket, 'zone-backups');
    assert.equal(offsite!.config.s3?.prefix, 'zonecopy', "the s3 section's defaults apply inside a target");
  });

  it('a configuration without targets is one target named after its backup host, so hold tags stay as they were', () => {
    const [only] = resolveTargets(load({ backupDestination: 'bk.example', backupDestinationBasePath: 'backup/zones' }));
    assert.deepEqual([only!.name, only!.type], ['bk.example', 'ssh']);
    const [s3] = resolveTargets(load({ backupTarget: 's3', s3: { bucket: 'zone-backups' } }));
    assert.deepEqual([s3!.name, s3!.type], ['s3', 's3']);
  });

  it('--target picks one by name, or by type; an unknown one is refused with the names there are', () => {
    const config = load(two);
    const pick = (flag?: string) => {
      const chosen = selectTargets(config, flag);
      return 'error' in chosen ? chosen.error : chosen.map((t) => t.name).join(',');
    };
    assert.equal(pick(), 'bk1,offsite');
    assert.equal(pick('offsite'), 'offsite');
    assert.equal(pick('ssh'), 'bk1');
    assert.match(pick('bk2'), /--target "bk2": no such target; the configuration has "bk1" \(ssh\), "offsite" \(s3\)/);
  });

  it('refuses what a target lacks or cannot have, naming the entry', () => {
    fails(
      { targets: [{ name: 'bk1', type: 'ssh' }] },
      /"targets\.0\.backupDestination": required for the SSH target "bk1" \(here or at the top level\)/,
    );
    fails({ targets: [{ name: 'o', type: 's3' }] }, /"targets\.0\.s3": required for the object-storage target "o"/);
    fails(
      { ...two, targets: [two.targets[0], { ...two.targets[0] }] },
      /"targets\.1\.name": a second target named "bk1"/,
    );
    fails({ ...two, targets: [{ ...two.targets[0], name: 'a b' }] }, /"targets\.0\.name": letters, digits/);
    fails(
      { ...two, targets: [{ ...two.targets[0], s3: { bucket: 'zone-backups' } }] },
      /"targets\.0\.s3": only for a target of type "s3"/,
    );
    fails(
      { ...two, targets: [{ ...two.targets[0], remoteSnapshotLimt: 3 }] },
      /unknown key "targets\.0\.remoteSnapshotLimt" \(did you mean "targets\.0\.remoteSnapshotLimit"\?\)/,
    );
    fails({ ...two, targets: [] }, /"targets": at least one target/);
  });

  it('staleAfter: a duration as check reads it, at the top level and per target (its own wins)', () => {
    const [bk1, offsite] = resolveTargets(
      load({ ...two, staleAfter: '36h', targets: [two.targets[0], { ...two.targets[1], staleAfter: '2d' }] }),
    );
    assert.deepEqual(
      [bk1!.config.staleAfter, offsite!.config.staleAfter].map((d) => parseDuration(d!)),
      [36 * 3600, 2 * 86400],
    );
    assert.equal(resolveTargets(load(two))[0]!.config.staleAfter, undefined, 'unset by default');
    for (const bad of ['2 days', '-1d', 'd', '1y'])
      fails({ ...two, staleAfter: bad }, /"staleAfter": a duration such as 36h or 2d/);
    fails({ ...two, targets: [{ ...two.targets[0], staleAfter: 'soon' }] }, /"targets\.0\.staleAfter": a duration/);
    // every value the configuration accepts, check can read
    for (const good of ['90', '90s', '1.5h', '2d', '1w', ' 3 d '])
      assert.ok(parseDuration(resolveTargets(load({ ...two, staleAfter: good }))[0]!.config.staleAfter!) > 0, good);
  });
});
