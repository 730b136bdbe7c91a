/**
 * The behaviour both targets must share, run for both from one table (real ZFS over ssh, s3rver for
 * the bucket): an encrypted dataset stored and restored as ciphertext, local rotation around a
 * snapshot another tool holds, a clone whose image snapshot was not `@final` when it was backed up,
 * remote rotation by the group's exact name, and a stream that fails partway. One zone serves all:
 * per target one backup run and one restore of a copy for (a) to (c), then runs of its own group for
 * (d) and (e). Then a year of runs to both at once, each side thinned by its own schedule, with the
 * backup host down for a month of them.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createFixtures, fixtureUuid } from './fixtures.js';
import { startS3rver, testBucket } from './object-store.js';
import {
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
const PREFIX = 'zc';
/** A raw key, not a passphrase: PBKDF2's 350000 rounds take seconds in the emulated guest. */
const KEY = randomBytes(32).toString('hex');
const bucket = testBucket(PORT, BUCKET);
const ENDPOINT = bucket.endpoint;

/** A stream object's metadata (URI-decoded), or undefined when the bucket lacks it. */
async function objectMeta(key: string): Promise<Record<string, string> | undefined> {
  const meta = await bucket.head(key);
  return meta && Object.fromEntries(Object.entries(meta).map(([k, v]) => [k, decodeURIComponent(v)]));
}

/** The bytes `zfs send` wrote into a stream object, zstd taken off as restore does. */
async function sentBytes(key: string): Promise<Buffer> {
  const body = await bucket.body(key);
  return new Promise<Buffer>((resolve, reject) => {
    const child = spawn('zstd', ['-q', '-d', '-c'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`zstd -d: ${code}`))));
    child.stdin.end(body);
  });
}

/** The object key of one snapshot stream of a VM's dataset (`<prefix>/<vm>/<dataset without pool>/<snapshot>`). */
const streamKey = (vm: string, dataset: string, snapshot: string, prefix = PREFIX) =>
  `${prefix}/${vm}/${dataset.split('/').slice(1).join('/')}/${snapshot}`;

/** Snapshot names of the streams stored for one dataset of a VM (not those of its children). */
async function streamsThere(vm: string, dataset: string, keyPrefix = PREFIX): Promise<string[]> {
  const prefix = streamKey(vm, dataset, '', keyPrefix);
  return (await bucket.keys(prefix)).map((key) => key.slice(prefix.length)).filter((name) => !name.includes('/'));
}

/**
 * An endpoint in front of s3rver that refuses part 2 of one object's upload while part 1 goes
 * through, as a connection lost in the middle of a stream leaves it.
 */
async function refusingPart2(key: string): Promise<{ endpoint: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url!, 'http://proxy');
    const refused =
      req.method === 'PUT' &&
      decodeURIComponent(url.pathname) === `/${BUCKET}/${key}` &&
      url.searchParams.get('partNumber') === '2';
    if (refused) {
      req.resume();
      req.on('end', () =>
        res
          .writeHead(403, { 'content-type': 'application/xml' })
          .end('<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>refused by the test</Message></Error>'),
      );
      return;
    }
    // `expect` is not signed, and this server has already answered it
    const headers = { ...req.headers };
    delete headers.expect;
    const upstream = request(
      { host: '127.0.0.1', port: PORT, method: req.method, path: req.url, headers },
      (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => res.destroy(error));
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

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
  /** Snapshot names of `dataset` kept there, sorted. */
  namesThere: (vm: string, dataset: string) => Promise<string[]>;
  /** The snapshot of the same dataset that `dataset@snapshot` there needs to be restored, if any. */
  parentThere: (vm: string, dataset: string, snapshot: string) => Promise<string | undefined>;
  /** A configuration whose run fails the stream of `dataset@snapshot` partway, after part of it reached the target. */
  failing: (
    vm: string,
    dataset: string,
    snapshot: string,
  ) => Promise<{ config: TestConfig; close: () => Promise<void> }>;
  /** What the next run says when it finishes that stream from the part already there. */
  finished: (vm: string, dataset: string, snapshot: string) => RegExp;
  /** Takes zonecopy's holds off `dataset@snapshot` there, so that only its group's name keeps rotation away. */
  release: (dataset: string, snapshot: string) => Promise<void>;
}

/** Releases every hold on one snapshot. */
async function releaseAll(snapshot: string): Promise<void> {
  await sh(
    `zfs holds -H ${snapshot} | while IFS="$(printf '\\t')" read -r _ tag _; do zfs release "$tag" ${snapshot}; done`,
  );
}

let uploads: string | undefined;
/** The bucket's settings; one state directory, so a run through another endpoint leaves its journals to the next. */
function s3Settings(endpoint = ENDPOINT, prefix = PREFIX) {
  uploads ??= mkdtempSync(join(tmpdir(), 'zc-uploads-'));
  // a new chain every second stream, so rotation has streams to delete and streams to keep for a kept one
  return { bucket: BUCKET, prefix, endpoint, stateDirectory: uploads, partConcurrency: 2, fullEvery: 2 };
}

function s3Config(endpoint = ENDPOINT): TestConfig {
  return writeConfig({ backupTarget: 's3', s3: s3Settings(endpoint) });
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
    namesThere: async (_vm, dataset) => (await snapshotsOf(target(dataset))).map((s) => s.name).sort(),
    parentThere: async () => undefined,
    // streams above 1 MB are cut on their way to the backup host, which keeps what arrived (receive -s)
    failing: async () => ({
      config: writeConfig({
        transferStrategy: 'ssh_gzip',
        compressionCmd: ['head', '-c', '1000000'],
        decompressionCmd: ['cat'],
      }),
      close: async () => {},
    }),
    finished: (_vm, dataset) => new RegExp(`resuming the interrupted receive into ${target(dataset)}(?!/)`),
    release: (dataset, snapshot) => releaseAll(`${target(dataset)}@${snapshot}`),
  },
  {
    name: 's3',
    config: () => s3Config(),
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
    namesThere: async (vm, dataset) => (await streamsThere(vm, dataset)).sort(),
    parentThere: async (vm, dataset, snapshot) => {
      const parent = (await objectMeta(streamKey(vm, dataset, snapshot)))?.['zc-parent'];
      return parent?.startsWith(`${dataset}@`) ? parent.split('@')[1] : undefined;
    },
    failing: async (vm, dataset, snapshot) => {
      const proxy = await refusingPart2(streamKey(vm, dataset, snapshot));
      return { config: s3Config(proxy.endpoint), close: proxy.close };
    },
    finished: (vm, dataset, snapshot) =>
      new RegExp(
        `${streamKey(vm, dataset, snapshot)}: finished an interrupted upload \\([1-9]\\d* part\\(s\\) were already stored\\)`,
      ),
    release: async () => {},
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

describe('both targets from one table: raw encrypted sends, rotation past held snapshots, a non-@final origin, remote rotation, a failed stream', () => {
  let server: ChildProcess | undefined;
  let zone: string;
  let image: string;
  const timings: string[] = [];
  let setUpSeconds = 0;

  before(async () => {
    const started = Date.now();
    await resetHosts();
    const s3rver = await startS3rver(PORT, '/var/tmp/zc-s3-targets', BUCKET);
    server = s3rver.server;
    // the fixture is made while s3rver loads its modules over 9p
    await createFixtures(['joyent']);
    zone = await fixtureUuid('joyent');
    image = (await zfsGet(`zones/${zone}`, 'origin')).split('@')[0]!.split('/')[1]!;
    await sh(`echo ${KEY} | zfs create -o encryption=on -o keyformat=hex zones/${zone}/data/vault`);
    await s3rver.ready();
    setUpSeconds = (Date.now() - started) / 1000;
  });

  after(() => {
    server?.kill();
    timings.unshift(`set-up ${setUpSeconds.toFixed(1)} s`);
    process.stdout.write(`# targets: ${timings.join(', ')}\n`);
  });

  for (const t of TARGETS) {
    describe(`to ${t.name}`, () => {
      // (d) the group of the first run is named like the rotation group plus a 2: rotation must leave it alone
      const rotation = `${t.name}-daily`;
      const group = `${rotation}2`;
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

      // snapshot names of the rotation group made so far, oldest first
      const made: string[] = [];
      const rotate = (name: string, limitFlag: string, limit = 2, cfg = config) => {
        made.push(`${rotation}-${name}`);
        const limits = ['--localSnapLimit', '1', limitFlag, String(limit)];
        return zonecopy(['backup', zone, '--groupName', rotation, '--name', name, ...limits, '--json'], cfg);
      };
      const localNames = async (dataset: string) =>
        (await snapshotsOf(dataset)).map((s) => s.name).filter((n) => n.startsWith(`${rotation}-`));
      /** Fails unless `dataset` keeps there the group's newest two and what they need, nothing else of the group; returns how many it keeps. */
      const assertRotated = async (dataset: string) => {
        const expected = made.slice(-2);
        for (let i = 0; i < expected.length; i++) {
          const parent = await t.parentThere(zone, dataset, expected[i]!);
          if (parent?.startsWith(`${rotation}-`) && !expected.includes(parent)) expected.push(parent);
        }
        const there = (await t.namesThere(zone, dataset)).filter((n) => n.startsWith(`${rotation}-`));
        assert.deepEqual(there, expected.sort(), `${dataset} there, after ${made.join(' ')}`);
        return there.length;
      };

      it('(d) a remote limit keeps the newest of the group there and what they need, never touches a group named like it, and the local limit is its own', async () => {
        const kept = new Map<string, string | undefined>();
        for (const dataset of [root(), data(), vault()]) {
          kept.set(dataset, await t.guidThere(zone, dataset, backedUp));
          await releaseAll(`${dataset}@${backedUp}`);
          await t.release(dataset, backedUp);
        }
        // smartcopy's two spellings of the option: this one here, --remoteSnapLimit in (e)
        for (const name of ['r1', 'r2', 'r3', 'r4']) {
          const result = await rotate(name, '--remoteSnapshotLimit');
          assert.equal(result.code, 0, result.stderr + result.stdout);
        }
        for (const dataset of [root(), data(), vault()]) {
          const there = await assertRotated(dataset);
          assert.ok(!(await t.namesThere(zone, dataset)).includes(made[0]!), `${dataset}: the oldest was rotated`);
          // the bucket keeps r2 (a new chain) for r3 (an incremental from it) with a limit of 2
          assert.equal(there > 2, t.name === 's3', `${dataset}: streams kept beyond the limit for a kept one`);
          assert.deepEqual(await localNames(dataset), [made.at(-1)], `${dataset}: the local limit is 1`);
          assert.ok(kept.get(dataset), `${dataset}@${backedUp} was there`);
          assert.equal(await t.guidThere(zone, dataset, backedUp), kept.get(dataset), `${dataset}@${backedUp} there`);
          assert.equal(
            await zfsGet(`${dataset}@${backedUp}`, 'guid'),
            kept.get(dataset),
            `${dataset}@${backedUp} here`,
          );
        }
      });

      it('(e) a stream that fails partway is reported for its dataset with exit code 1, rotates nothing of it, leaves the target as it was, and the next run finishes it', async () => {
        await sh(`head -c 12M /dev/urandom > /${data()}/big-${t.name}.bin`);
        const [failedName, nextName] = ['e1', 'e2'];
        const failedSnapshot = `${rotation}-${failedName}`;
        const thereBefore = await t.namesThere(zone, data());
        const localBefore = await localNames(data());
        const failing = await t.failing(zone, data(), failedSnapshot);
        let failed: Run;
        try {
          // a limit of 1 would take more of the failed dataset there than the runs around it
          failed = await rotate(failedName, '--remoteSnapLimit', 1, failing.config);
        } finally {
          await failing.close();
        }
        assert.equal(failed.code, 1, failed.stderr + failed.stdout);
        type Report = {
          results: Array<{ datasets: Array<{ dataset: string; result: string; mode: string; image?: boolean }> }>;
        };
        const rows = (JSON.parse(failed.stdout) as Report).results[0]!.datasets.filter((d) => !d.image);
        assert.deepEqual(
          rows.map((d) => `${d.dataset} ${d.result}`),
          [`${root()} ok`, `${data()} failed`, `${vault()} ok`],
        );
        assert.equal(
          await t.guidThere(zone, data(), failedSnapshot),
          undefined,
          'the part that arrived is no snapshot there',
        );
        assert.deepEqual(await t.namesThere(zone, data()), thereBefore, `${data()}: nothing rotated or lost there`);
        assert.deepEqual(await localNames(data()), [...localBefore, failedSnapshot], `${data()}: nothing rotated here`);
        const guids = new Map<string, string>();
        for (const dataset of [root(), data(), vault()])
          guids.set(dataset, await zfsGet(`${dataset}@${failedSnapshot}`, 'guid'));

        const next = await rotate(nextName, '--remoteSnapLimit');
        assert.equal(next.code, 0, next.stderr + next.stdout);
        assert.match(next.stderr, t.finished(zone, data(), failedSnapshot));
        // the finished stream counts in its dataset's row, on either target
        const nextRow = (JSON.parse(next.stdout) as Report).results[0]!.datasets.find((d) => d.dataset === data());
        assert.deepEqual([nextRow?.mode, nextRow?.result], ['resumed', 'ok'], next.stdout);
        for (const dataset of [root(), data(), vault()]) {
          assert.equal(
            await t.guidThere(zone, dataset, failedSnapshot),
            guids.get(dataset),
            `${dataset}@${failedSnapshot}`,
          );
          assert.equal(
            await t.guidThere(zone, dataset, made.at(-1)!),
            await zfsGet(`${dataset}@${made.at(-1)}`, 'guid'),
            `${dataset}@${made.at(-1)}`,
          );
          await assertRotated(dataset);
        }
        // the other target's first run sends the data set in full: without this file
        await sh(`rm /${data()}/big-${t.name}.bin`);
      });
    });
  }

  describe('retention schedules over a year, to both targets at once, with the backup host down for a month', () => {
    // runs (days after 2025-01-01) with `--name` timestamps; the backup host is down for runs 2 to 5
    const DAYS = [-60, 280, 300, 310, 320, 330, 331, 332];
    const DOWN = new Set([2, 3, 4, 5]);
    const names = DAYS.map((day) => `year-${new Date(Date.UTC(2025, 0, 1 + day)).toISOString()}`);
    /** `year-2025-11-27T00:00:00.000Z` from `2025-11-27`. */
    const at = (day: string) => `year-${day}T00:00:00.000Z`;
    const KEY_PREFIX = 'zy';
    const yearConfig = (down: boolean) =>
      writeConfig({
        localRetention: '3,1d1w',
        targets: [
          // port 1 refuses the connection: the backup host is down, not misconfigured
          {
            name: 'bk',
            type: 'ssh',
            remoteRetention: '1w1m,1m1y',
            staleAfter: '2w',
            ...(down ? { backupDestinationPort: 1 } : {}),
          },
          { name: 'off', type: 's3', remoteRetention: '2,1d1w,1w1m', s3: s3Settings(ENDPOINT, KEY_PREFIX) },
        ],
      });
    type Row = { dataset: string; targetName?: string; mode: string; result: string; rotatedRemote: string[] };
    type Report = { datasets: Row[]; behind?: Array<Record<string, unknown>> };
    const reportOf = (result: Run) => (JSON.parse(result.stdout) as { results: Report[] }).results[0]!;
    const datasets = () => [`zones/${zone}`, `zones/${zone}/data`, `zones/${zone}/data/vault`];
    const inYear = (list: string[]) => list.filter((n) => n.startsWith('year-')).sort();
    const here = async (dataset: string) => inYear((await snapshotsOf(dataset)).map((s) => s.name));
    const onBackupHost = async (dataset: string) => inYear((await snapshotsOf(target(dataset))).map((s) => s.name));
    const inBucket = async (dataset: string) => inYear(await streamsThere(zone, dataset, KEY_PREFIX));
    const backupRun = (index: number, extra: string[] = []) =>
      zonecopy(
        ['backup', zone, '--groupName', 'year', '--name', names[index]!.slice(5), '--json', ...extra],
        yearConfig(DOWN.has(index)),
      );

    it('thins each side by its own schedule run by run, keeps the held snapshot of the target that is down and flags it behind, and sends to it incrementally when it is back', async () => {
      const started = Date.now();
      let beforeDown: Record<string, string> = {};
      for (let index = 0; index < DAYS.length - 1; index++) {
        if (index === 2)
          beforeDown = Object.fromEntries(
            await Promise.all(datasets().map(async (d) => [d, await zfsGet(target(d), 'guid')] as const)),
          );
        const result = await backupRun(index);
        const report = reportOf(result);
        if (DOWN.has(index)) {
          // the VM is still snapshotted and sent to the bucket; only the backup host's part failed
          assert.equal(result.code, 1, `${names[index]}: ${result.stderr}`);
          assert.match(result.stderr + result.stdout, /bk: cannot connect to backup host/);
          assert.deepEqual(
            report.datasets.map((r) => `${r.targetName} ${r.result}`),
            datasets().map(() => 'off ok'),
          );
        } else assert.equal(result.code, 0, `${names[index]}: ${result.stderr}`);
        if (index === 2)
          assert.deepEqual(report.behind, [
            { target: 'bk', snapshot: at('2025-10-08'), ageSeconds: 20 * 86400, staleAfter: 14 * 86400 },
          ]);
        if (index === 5) {
          for (const dataset of datasets())
            assert.deepEqual(
              await here(dataset),
              ['2025-10-08', '2025-11-07', '2025-11-17', '2025-11-27'].map(at),
              `${dataset}: the backup host's newest common snapshot (held) stays here while it is down; 10-28 went`,
            );
        }
        if (index === 6) {
          assert.equal(report.behind, undefined, 'bk is no longer behind');
          // the first run's snapshot is past the year by now: bk thins it as soon as it is reached again
          for (const row of report.datasets.filter((r) => r.targetName === 'bk')) {
            assert.deepEqual([row.mode, row.result], ['incremental', 'ok'], `${row.dataset} back on bk`);
            assert.deepEqual(
              row.rotatedRemote,
              [`${target(row.dataset)}@${names[0]}`],
              `${row.dataset}: expired on bk`,
            );
          }
          for (const dataset of datasets())
            assert.equal(
              await zfsGet(target(dataset), 'guid'),
              beforeDown[dataset],
              `${dataset}: never sent again in full`,
            );
        }
      }

      // the last run, first as a dry run: it says what each side would destroy and why the others stay
      const last = DAYS.length - 1;
      const before = await Promise.all(datasets().map(here));
      const dry = await backupRun(last, ['--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      const root = datasets()[0]!;
      const printed = dry.stdout + dry.stderr;
      assert.match(printed, new RegExp(`zfs destroy ${target(root)}@${at('2025-11-28')}(?!,)`));
      assert.ok(printed.includes(`keeps ${root}@${at('2025-11-27')}: one of the newest 3 (3,1d1w)`), printed);
      assert.ok(printed.includes(`keeps ${target(root)}@${at('2025-10-08')}: one per month for 1 year`), printed);
      const stream = streamKey(zone, root, at('2025-10-28'), KEY_PREFIX);
      assert.ok(printed.includes(`keeps s3://${BUCKET}/${stream}: a kept stream is incremental from it`), printed);
      assert.deepEqual(await Promise.all(datasets().map(here)), before, 'the dry run changed nothing');

      const result = await backupRun(last);
      assert.equal(result.code, 0, result.stderr);
      for (const row of reportOf(result).datasets.filter((r) => r.targetName === 'bk'))
        assert.deepEqual(
          row.rotatedRemote,
          [`${target(row.dataset)}@${at('2025-11-28')}`],
          'the report says what bk thinned',
        );
      // worked out run by run (zfs-autobackup's thinner is not the same applied once to the whole year)
      for (const dataset of datasets()) {
        assert.deepEqual(await here(dataset), ['2025-11-27', '2025-11-28', '2025-11-29'].map(at), `${dataset} here`);
        assert.deepEqual(
          await onBackupHost(dataset),
          ['2025-10-08', '2025-11-07', '2025-11-17', '2025-11-27', '2025-11-29'].map(at),
          `${dataset} on the backup host (1w1m,1m1y)`,
        );
        assert.deepEqual(
          await inBucket(dataset),
          ['2025-10-28', '2025-11-07', '2025-11-17', '2025-11-27', '2025-11-28', '2025-11-29'].map(at),
          `${dataset} in the bucket (2,1d1w,1w1m, each kept stream with its chain)`,
        );
      }
      timings.push(`year of runs ${((Date.now() - started) / 1000).toFixed(1)} s`);
    });
  });
});
