/**
 * The cases where the backup host and object storage once drifted apart, run for both targets from
 * one table (real ZFS over ssh, s3rver for the bucket): an encrypted dataset stored and restored as
 * ciphertext, local rotation around a snapshot another tool holds, and a clone whose image snapshot
 * was not `@final` when it was backed up. One zone serves all three: per target one backup run and
 * one restore of a copy, then each case checks its part.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { createFixtures, fixtureUuid } from './fixtures.js';
import {
  PROJECT,
  resetHosts,
  run,
  sh,
  snapshotsOf,
  target,
  writeConfig,
  zfsGet,
  zonecopy,
  type Run,
  type TestConfig,
} from './harness.js';
import { withMounted } from './vm-checks.js';

const BUCKET = 'zonecopy-targets';
const PORT = 4569;
const ENDPOINT = `http://127.0.0.1:${PORT}`;
const PREFIX = 'zc';
/** A raw key, not a passphrase: PBKDF2's 350000 rounds take seconds in the emulated guest. */
const KEY = randomBytes(32).toString('hex');
process.env.AWS_ACCESS_KEY_ID = 'S3RVER';
process.env.AWS_SECRET_ACCESS_KEY = 'S3RVER';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const client = new S3Client({
  endpoint: ENDPOINT,
  region: 'us-east-1',
  forcePathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});

/** A stream object's metadata (URI-decoded), or undefined when the bucket lacks it. */
async function objectMeta(key: string): Promise<Record<string, string> | undefined> {
  try {
    const meta = (await client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: key }))).Metadata ?? {};
    return Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, decodeURIComponent(v)]));
  } catch {
    return undefined;
  }
}

/** The bytes `zfs send` wrote into a stream object, zstd taken off as restore does. */
async function sentBytes(key: string): Promise<Buffer> {
  const response = await client.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  const body = Buffer.from(await response.Body!.transformToByteArray());
  return new Promise<Buffer>((resolve, reject) => {
    const child = spawn('zstd', ['-q', '-d', '-c'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`zstd -d: ${code}`))));
    child.stdin.end(body);
  });
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.end();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });
}

/** The object key of one snapshot stream of a VM's dataset (`<prefix>/<vm>/<dataset without pool>/<snapshot>`). */
const streamKey = (vm: string, dataset: string, snapshot: string) =>
  `${PREFIX}/${vm}/${dataset.split('/').slice(1).join('/')}/${snapshot}`;

/** What the cases ask of a target, each answered from the target itself rather than through zonecopy. */
interface Target {
  name: 'ssh' | 's3';
  config: () => TestConfig;
  /** The guid of `dataset@snapshot` (source names) as the target keeps it. */
  guidThere: (vm: string, dataset: string, snapshot: string) => Promise<string | undefined>;
  /** The origin the clone `dataset` was stored against there, as of `snapshot`: its snapshot name and guid. */
  originThere: (vm: string, dataset: string, snapshot: string) => Promise<{ snapshot: string; guid: string }>;
  /** Fails unless the target keeps `dataset@snapshot` as ciphertext; `plain` is a dataset beside it that is not encrypted. */
  assertCiphertext: (
    vm: string,
    dataset: { encrypted: string; plain: string },
    snapshot: string,
    marker: string,
  ) => Promise<void>;
}

const TARGETS: Target[] = [
  {
    name: 'ssh',
    config: () => writeConfig(),
    guidThere: async (_vm, dataset, snapshot) =>
      (await snapshotsOf(target(dataset))).find((s) => s.name === snapshot)?.guid,
    originThere: async (_vm, dataset) => {
      const origin = await zfsGet(target(dataset), 'origin');
      return { snapshot: origin.split('@')[1]!, guid: await zfsGet(origin, 'guid') };
    },
    assertCiphertext: async (_vm, { encrypted }) => {
      const there = target(encrypted);
      assert.equal(await zfsGet(there, 'encryption'), await zfsGet(encrypted, 'encryption'), there);
      assert.equal(await zfsGet(there, 'keystatus'), 'unavailable', `${there}: received without its key`);
    },
  },
  {
    name: 's3',
    config: () => {
      const stateDirectory = mkdtempSync(join(tmpdir(), 'zc-uploads-'));
      return writeConfig({
        backupTarget: 's3',
        s3: { bucket: BUCKET, prefix: PREFIX, endpoint: ENDPOINT, stateDirectory, partConcurrency: 2 },
      });
    },
    guidThere: async (vm, dataset, snapshot) => (await objectMeta(streamKey(vm, dataset, snapshot)))?.['zc-guid'],
    originThere: async (vm, dataset, snapshot) => {
      // back along the chain to the stream whose parent is in another dataset
      let meta = (await objectMeta(streamKey(vm, dataset, snapshot)))!;
      while (meta['zc-parent']!.startsWith(`${dataset}@`))
        meta = (await objectMeta(streamKey(vm, dataset, meta['zc-parent']!.split('@')[1]!)))!;
      return { snapshot: meta['zc-parent']!.split('@')[1]!, guid: meta['zc-parent-guid']! };
    },
    assertCiphertext: async (vm, { encrypted, plain }, snapshot, marker) => {
      // the same marker in the plain dataset's stream shows the check sees plaintext where there is some
      const readable = await sentBytes(streamKey(vm, plain, snapshot));
      assert.ok(readable.includes(marker), `${plain}@${snapshot}: the plain stream shows the marker`);
      const stored = await sentBytes(streamKey(vm, encrypted, snapshot));
      assert.ok(stored.length > 0);
      assert.equal(stored.includes(marker), false, `${encrypted}@${snapshot} was stored decrypted`);
    },
  },
];

/** One digest of a file system's files (not below other mounts). */
async function filesDigest(dataset: string): Promise<string> {
  return (
    await sh(
      `cd "$(zfs get -H -o value mountpoint ${dataset})" && find . -xdev -type f ! -name '*.lock' -print0 | sort -z | xargs -0 -r sha256sum | sha256sum | cut -c1-16`,
    )
  ).trim();
}

interface Restored {
  uuid: string;
  snapshot: string;
  datasets: Array<{ source: string; local: string; mode: string }>;
}

describe('both targets from one table: raw encrypted sends, rotation past held snapshots, a non-@final origin', () => {
  let server: ChildProcess | undefined;
  let zone: string;
  let image: string;
  const timings: string[] = [];
  let setUpSeconds = 0;

  before(async () => {
    const started = Date.now();
    await resetHosts();
    await sh(`rm -rf /var/tmp/zc-s3-targets && mkdir -p /var/tmp/zc-s3-targets`);
    const args = ['-d', '/var/tmp/zc-s3-targets', '-a', '127.0.0.1', '-p', String(PORT), '-s'];
    server = spawn(
      'node',
      [
        '--openssl-legacy-provider',
        `${PROJECT}/node_modules/s3rver/bin/s3rver.js`,
        ...args,
        '--configure-bucket',
        BUCKET,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let serverErrors = '';
    server.stderr!.on('data', (chunk: Buffer) => (serverErrors += chunk.toString()));
    // the fixture is made while s3rver loads its modules over 9p
    await createFixtures(['joyent']);
    zone = await fixtureUuid('joyent');
    image = (await zfsGet(`zones/${zone}`, 'origin')).split('@')[0]!.split('/')[1]!;
    await sh(`echo ${KEY} | zfs create -o encryption=on -o keyformat=hex zones/${zone}/data/vault`);
    for (let i = 0; !(await listening(PORT)); i++) {
      assert.ok(server.exitCode === null, `s3rver exited ${server.exitCode}: ${serverErrors}`);
      assert.ok(i < 900, `s3rver did not come up within 3 minutes: ${serverErrors}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    setUpSeconds = (Date.now() - started) / 1000;
  });

  after(() => {
    server?.kill();
    timings.unshift(`set-up ${setUpSeconds.toFixed(1)} s`);
    process.stdout.write(`# targets: ${timings.join(', ')}\n`);
  });

  for (const t of TARGETS) {
    describe(`to ${t.name}`, () => {
      const group = t.name;
      const [older, backedUp] = [`${group}-a0`, `${group}-a1`];
      const marker = `zc-plaintext-${t.name}-${randomUUID()}`;
      const root = () => `zones/${zone}`;
      const data = () => `zones/${zone}/data`;
      const vault = () => `zones/${zone}/data/vault`;
      const source: Record<string, string> = {};
      let config: TestConfig;
      let backup: Run;
      let olderGuid = '';
      let originGuid = '';
      let restored: Restored;

      before(async () => {
        config = t.config();
        // (b) a snapshot of the group as an earlier run leaves it (made by hand, to spare a run), held by another tool
        await sh(`zfs snapshot -r ${root()}@${older} && zfs hold othertool ${root()}@${older}`);
        olderGuid = await zfsGet(`${root()}@${older}`, 'guid');
        // (a) plaintext that must not reach the target: in the encrypted dataset, and in the plain one to show it would
        for (const file of [`/${vault()}/secret-${group}.bin`, `/${data()}/plain-${group}.bin`])
          await sh(`head -c 8K /dev/urandom > ${file} && echo ${marker} >> ${file}`);
        // (c) the zone's image snapshot goes by another name while the zone is backed up, then back
        const final = `zones/${image}@final`;
        originGuid = await zfsGet(final, 'guid');
        await sh(`zfs rename ${final} zones/${image}@other`);
        try {
          const started = Date.now();
          backup = await zonecopy(
            ['backup', zone, '--groupName', group, '--name', 'a1', '--localSnapLimit', '1'],
            config,
          );
          timings.push(`${t.name} backup ${((Date.now() - started) / 1000).toFixed(1)} s`);
        } finally {
          await sh(`zfs rename zones/${image}@other ${final}`);
        }
        for (const dataset of [root(), data(), vault()]) source[dataset] = await filesDigest(dataset);
        if (backup.code !== 0) return;
        const started = Date.now();
        const result = await zonecopy(['restore', zone, '--new-uuid', '--json'], config);
        timings.push(`${t.name} restore ${((Date.now() - started) / 1000).toFixed(1)} s`);
        assert.equal(result.code, 0, result.stderr + result.stdout);
        restored = JSON.parse(result.stdout) as Restored;
      });

      it('(b) local rotation keeps a snapshot another tool holds, and the run succeeds', async () => {
        assert.equal(backup.code, 0, backup.stderr + backup.stdout);
        assert.equal(await zfsGet(`${root()}@${older}`, 'guid'), olderGuid, 'the held snapshot stays');
        assert.match(await sh(`zfs holds -H ${root()}@${older}`), /\tothertool\t/);
        for (const dataset of [data(), vault()]) {
          const names = (await snapshotsOf(dataset)).map((s) => s.name).filter((n) => n.startsWith(`${group}-`));
          assert.deepEqual(names, [backedUp], `${dataset}: rotation ran where no other tool holds`);
        }
      });

      it('(a) an encrypted dataset is kept as ciphertext there, and restored encrypted with its data intact once the key is loaded', async () => {
        for (const dataset of [root(), data(), vault()])
          assert.equal(
            await t.guidThere(zone, dataset, backedUp),
            await zfsGet(`${dataset}@${backedUp}`, 'guid'),
            `${dataset}@${backedUp} there`,
          );
        await t.assertCiphertext(zone, { encrypted: vault(), plain: data() }, backedUp, marker);

        assert.equal(restored.snapshot, backedUp);
        const copy = `zones/${restored.uuid}`;
        const copyVault = `${copy}/data/vault`;
        assert.deepEqual(
          (await sh(`zfs get -H -o value encryption,keystatus ${copyVault}`)).trim().split('\n'),
          [await zfsGet(vault(), 'encryption'), 'unavailable'],
          'restored encrypted, its key not loaded',
        );
        assert.equal(await zfsGet(`${copyVault}@${backedUp}`, 'guid'), await zfsGet(`${vault()}@${backedUp}`, 'guid'));
        // the delegated dataset comes back zoned and unmounted, as vmadm makes it: mounted for the reads
        const digests = await withMounted(`${copy}/data`, async () => {
          const load = await run('zfs', ['load-key', copyVault], { input: `${KEY}\n` });
          assert.equal(load.code, 0, load.stderr);
          return [await filesDigest(`${copy}/data`), await withMounted(copyVault, () => filesDigest(copyVault))];
        });
        assert.deepEqual(
          digests,
          [source[data()], source[vault()]],
          'the plain and the encrypted data came back intact',
        );
      });

      it('(c) a clone whose image snapshot was not @final is restored from its real origin, found by guid', async () => {
        assert.deepEqual(
          await t.originThere(zone, root(), backedUp),
          { snapshot: 'other', guid: originGuid },
          'stored against the renamed snapshot',
        );
        const received = restored.datasets.find((d) => d.source === root())!;
        assert.equal(received.mode, 'incremental', 'received from the local image, not whole');
        const localOrigin = await zfsGet(received.local, 'origin');
        assert.equal(localOrigin, `zones/${image}@final`);
        assert.equal(await zfsGet(localOrigin, 'guid'), originGuid);
        assert.equal(await withMounted(received.local, () => filesDigest(received.local)), source[root()]);
      });
    });
  }
});
