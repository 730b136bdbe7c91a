/**
 * `zonecopy release --remote` with two SSH targets (and an object store, which keeps no holds):
 * zonecopy's holds are released here and on each backup host; one host down is said and makes the
 * exit 1 without keeping the other from being released. The real-ZFS guest runs the one-target case.
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, mock } from 'node:test';
import { releaseCommand, type ReleaseHosts } from '../../src/cli/release-command.js';
import { UsageError } from '../../src/cli/session.js';
import type { Config } from '../../src/config/schema.js';
import type { Argv } from '../../src/host/quote.js';
import { scratchDirectory } from './scratch.js';
import { ScriptedHost } from './scripted-host.js';

const scratch = scratchDirectory('zc-release-');
const VM = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';

/** A host with `datasets`, each with one snapshot held by `tags`; `zfs release` takes the holds off. */
function zfsHost(snapshots: Record<string, string[]>) {
  const held = new Map(Object.entries(snapshots).map(([snap, tags]) => [snap, [...tags]]));
  const answer = (argv: Argv) => {
    const line = argv.join(' ');
    if (line === `vmadm get ${VM}`)
      return { stdout: JSON.stringify({ uuid: VM, brand: 'joyent', zfs_filesystem: `zones/${VM}` }) };
    if (line === 'uname -s') return { stdout: 'Linux\n' };
    if (argv[0] === 'zfs' && argv[1] === 'list') {
      const names = argv.slice(argv.indexOf('-o') + 2);
      const rows = [...held.keys()]
        .filter((snap) => names.includes(snap.split('@')[0]!))
        .flatMap((snap) => {
          const row = (name: string, type: string, refs: number) =>
            [name, type, '1', '1', '1', '-', '-', String(refs), '0', 'off', 'on', 'off', '-'].join('\t');
          return [row(snap.split('@')[0]!, 'filesystem', 0), row(snap, 'snapshot', held.get(snap)!.length)];
        });
      const missing = names.filter((n) => !rows.some((r) => r.startsWith(`${n}\t`)));
      return {
        stdout: rows.join('\n'),
        stderr: missing.map((n) => `cannot open '${n}': dataset does not exist`).join('\n'),
        exitCode: missing.length ? 1 : 0,
      };
    }
    if (argv[0] === 'zfs' && argv[1] === 'holds')
      return {
        stdout: argv
          .slice(3)
          .flatMap((snap) => (held.get(snap) ?? []).map((tag) => `${snap}\t${tag}\tTue Dec  1 10:00 2026`))
          .join('\n'),
      };
    if (argv[0] === 'zfs' && argv[1] === 'release')
      for (const snap of argv.slice(3))
        held.set(
          snap,
          held.get(snap)!.filter((t) => t !== argv[2]),
        );
    return undefined;
  };
  return { answer, held };
}

function setUp(down: string[] = []) {
  const configPath = join(scratch(), 'configuration.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      backupDestinationBasePath: 'backup/zones',
      targets: [
        { name: 'bk1', type: 'ssh', backupDestination: 'bk1.example' },
        { name: 'bk2', type: 'ssh', backupDestination: 'bk2.example', backupDestinationBasePath: 'tank/zones' },
        { name: 'off', type: 's3', s3: { bucket: 'zone-backups' } },
      ],
    }),
  );
  const local = zfsHost({ [`zones/${VM}@daily-1`]: ['zonecopy:bk1:daily', 'zonecopy:bk2:daily', 'other-tool'] });
  const bk1 = zfsHost({ [`backup/zones/${VM}@daily-1`]: ['zonecopy:bk1:daily'] });
  const bk2 = zfsHost({ [`tank/zones/${VM}@daily-1`]: ['zonecopy:bk2:daily'] });
  const remotes: Record<string, ReturnType<typeof zfsHost>> = { 'bk1.example': bk1, 'bk2.example': bk2 };
  const connected: string[] = [];
  const hosts: ReleaseHosts = {
    local: (dryRun) => new ScriptedHost(local.answer, dryRun),
    connect: async (config: Config, dryRun) => {
      const name = config.backupDestination!;
      connected.push(name);
      if (down.includes(name)) throw new Error(`cannot reach ${name}:22: connect ECONNREFUSED`);
      return new ScriptedHost(remotes[name]!.answer, dryRun, name);
    },
  };
  return { configPath, hosts, local, bk1, bk2, connected };
}

/** stdout and stderr of one command run (process.stdout.write and stderr.write replaced meanwhile). */
async function captured(run: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const streams = { out: '', err: '' };
  const collect = (key: 'out' | 'err') => (chunk: string | Uint8Array) => ((streams[key] += String(chunk)), true);
  const out = mock.method(process.stdout, 'write', collect('out'));
  const err = mock.method(process.stderr, 'write', collect('err'));
  try {
    return { code: await run(), ...streams };
  } finally {
    out.mock.restore();
    err.mock.restore();
  }
}

describe('zonecopy release --remote with several targets', () => {
  it("releases zonecopy's holds here and on every SSH target's backup host, and nobody else's", async () => {
    const { configPath, hosts, local, bk1, bk2, connected } = setUp();
    const { code, out } = await captured(() => releaseCommand(VM, { config: configPath, remote: true }, hosts));
    assert.equal(code, 0);
    assert.deepEqual(connected, ['bk1.example', 'bk2.example'], 'the object store is not asked');
    assert.deepEqual([...local.held.values()], [['other-tool']]);
    assert.deepEqual([...bk1.held.values(), ...bk2.held.values()], [[], []]);
    assert.match(
      out,
      /released 2 hold\(s\) on this host and 1 on the backup host \S+@bk1\.example:22 \(target bk1\), 1 on the backup host \S+@bk2\.example:22 \(target bk2\)/,
    );
  });

  it('--target names one; --dry-run releases nothing', async () => {
    const { configPath, hosts, bk1, bk2, connected } = setUp();
    const { code, out } = await captured(() =>
      releaseCommand(VM, { config: configPath, remote: true, target: 'bk2', dryRun: true }, hosts),
    );
    assert.equal(code, 0);
    assert.deepEqual(connected, ['bk2.example']);
    assert.match(out, /would release zonecopy:bk2:daily on tank\/zones\/.*@daily-1/);
    assert.deepEqual([...bk1.held.values(), ...bk2.held.values()], [['zonecopy:bk1:daily'], ['zonecopy:bk2:daily']]);
    await assert.rejects(releaseCommand(VM, { config: configPath, remote: true, target: 'off' }, hosts), {
      name: 'UsageError',
      message: /--target off is an object store, which keeps no holds/,
    });
    await assert.rejects(releaseCommand(VM, { config: configPath, target: 'bk1' }, hosts), UsageError);
  });

  it('one backup host down: said, exit 1, the other released all the same', async () => {
    const { configPath, hosts, bk2 } = setUp(['bk1.example']);
    const { code, err, out } = await captured(() => releaseCommand(VM, { config: configPath, remote: true }, hosts));
    assert.equal(code, 1);
    assert.match(err, /the backup host \S+@bk1\.example:22 \(target bk1\): cannot reach bk1\.example:22/);
    assert.deepEqual([...bk2.held.values()], [[]]);
    assert.match(out, /released 2 hold\(s\) on this host and 1 on the backup host \S+@bk2\.example:22 \(target bk2\)/);
  });
});
