/**
 * Benchmarks, run inside the real-OpenZFS guest by bench/run.ts. Every figure is measured side by
 * side in this one run, and reported as a ratio where it is compared with something.
 *
 *   BENCH_DATASETS=10,50,100   dataset counts for the per-run overhead
 *   BENCH_MB=1024              size of the data-path streams
 *   BENCH_RSS_MB=100,2048      stream sizes for the memory figure
 *   BENCH_HISTORY=10,1000      target history sizes
 *   BENCH_PHASES=overhead,...  run only these phases (overhead, dataPath, memory, history)
 *   BENCH_CONFIG='{"transferConcurrency":8}'  configuration.json settings for zonecopy's overhead runs
 *   BENCH_STRATEGIES=mbuffer,ssh  data path: only these strategies (the plain pipelines always run)
 *   BENCH_RESTORE_MB=512       data in the VM whose restore is timed full and incremental
 *   BENCH_VMS=20x5             VMs and datasets each for the --all phase (allVms)
 *   BENCH_CYCLES=6             cycles timed in the continuous phase
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { LocalHost } from '../src/host/local.js';
import { RemoteHost } from '../src/host/remote.js';
import { createStrategy } from '../src/transfer/index.js';
import type { StrategyName } from '../src/transfer/strategy.js';
import { createFixtures, fixtureUuid } from '../test/integration/fixtures.js';
import { PROJECT, releaseHolds, resetHosts, run, sh, writeConfig, zonecopy } from '../test/integration/harness.js';

const list = (name: string, fallback: string) => (process.env[name] ?? fallback).split(',').map(Number);
const log = (line: string) => process.stdout.write(`${line}\n`);
const seconds = (since: number) => (Date.now() - since) / 1000;

interface RunJson {
  commands: { local: { total: number }; remote: { total: number } };
  maxRssKiB: number;
}

async function timed(args: string[], config = writeConfig()): Promise<{ seconds: number; json: RunJson }> {
  const started = Date.now();
  const result = await zonecopy([...args, '--json'], config);
  if (result.code !== 0) throw new Error(`zonecopy ${args.join(' ')} failed: ${result.stderr}${result.stdout}`);
  return { seconds: seconds(started), json: JSON.parse(result.stdout) as RunJson };
}

/** A joyent VM whose delegated dataset has `count - 2` children: `count` datasets to back up. */
async function vmWithDatasets(count: number): Promise<{ uuid: string; datasets: string[] }> {
  await resetHosts();
  await createFixtures(['joyent']);
  const uuid = await fixtureUuid('joyent');
  const children = Array.from({ length: count - 2 }, (_, i) => `zones/${uuid}/data/c${i}`);
  if (children.length) await sh(`for d in ${children.join(' ')}; do zfs create "$d"; done`);
  return { uuid, datasets: [`zones/${uuid}`, `zones/${uuid}/data`, ...children] };
}

async function overhead(counts: number[]) {
  const rows = [];
  for (const count of counts) {
    log(`overhead: ${count} datasets`);
    const { uuid, datasets } = await vmWithDatasets(count);
    const config = writeConfig(JSON.parse(process.env.BENCH_CONFIG ?? '{}'));
    await timed(['backup', uuid, '--groupName', 'bench', '--name', 'full'], config);
    // zonecopy's no-change run before and after the loop, averaged: the machine's speed drifts
    // over the loop's minutes, and two runs around it see the same drift the loop does
    const ours = await timed(['backup', uuid, '--groupName', 'bench', '--name', 'nochange'], config);
    const started = Date.now();
    const baseline = await run('bash', [
      `${PROJECT}/bench/per-dataset-baseline.sh`,
      'baseline',
      'backup/zones',
      ...datasets,
    ]);
    if (baseline.code !== 0) throw new Error(`baseline failed: ${baseline.stderr}`);
    const baselineSeconds = seconds(started);
    const again = await timed(['backup', uuid, '--groupName', 'bench', '--name', 'nochange2'], config);
    const zonecopySeconds = (ours.seconds + again.seconds) / 2;
    const oursPrograms = ours.json.commands.local.total + ours.json.commands.remote.total + 1;
    const baselinePrograms = Number(/programs (\d+)/.exec(baseline.stdout)?.[1]);
    rows.push({
      datasets: count,
      zonecopySeconds,
      zonecopyRuns: [ours.seconds, again.seconds],
      baselineSeconds,
      timeRatio: baselineSeconds / zonecopySeconds,
      zonecopyPrograms: oursPrograms,
      baselinePrograms,
      programRatio: baselinePrograms / oursPrograms,
      zonecopySecondsPerDataset: zonecopySeconds / count,
      baselineSecondsPerDataset: baselineSeconds / count,
    });
    log(
      `  zonecopy ${ours.seconds.toFixed(1)} s and ${again.seconds.toFixed(1)} s / ${oursPrograms} programs; per-dataset loop ${baselineSeconds.toFixed(1)} s / ${baselinePrograms} programs`,
    );
  }
  return rows;
}

async function connect() {
  const local = new LocalHost(false);
  const remote = await RemoteHost.connect({
    host: '127.0.0.2',
    port: 22,
    username: 'root',
    privateKeyPath: '/root/.ssh/id_ed25519',
    knownHostsPath: '/root/.ssh/known_hosts',
    disableHostKeyChecking: false,
    dryRun: false,
  });
  return { local, remote };
}

function strategy(
  name: StrategyName,
  hosts: Awaited<ReturnType<typeof connect>>,
  bulk: 'openssh' | 'ssh2' = 'openssh',
) {
  return createStrategy(name, {
    bulk,
    openssh: {
      host: '127.0.0.2',
      port: 22,
      username: 'root',
      privateKeyPath: '/root/.ssh/id_ed25519',
      knownHostsPath: '/root/.ssh/known_hosts',
      disableHostKeyChecking: false,
    },
    ...hosts,
    remoteAddress: '127.0.0.2',
    compress: ['zstd', '-1', '-T0'],
    decompress: ['zstd', '-d'],
    mbufferLocal: 'mbuffer',
    mbufferRemote: 'mbuffer',
    mbufferLocalSize: '128M',
    mbufferRemoteSize: '128M',
    mbufferPorts: [20000, 29999],
    mbufferTimeoutSeconds: 600,
  });
}

async function dataPath(mb: number) {
  await resetHosts();
  await sh(
    `zfs create -o compression=off zones/random && head -c ${mb}M /dev/urandom > /zones/random/blob && zfs snapshot zones/random@s`,
  );
  await sh(
    `zfs create -o compression=off zones/text && seq 1 999999999 | head -c ${mb}M > /zones/text/blob && zfs snapshot zones/text@s`,
  );
  const hosts = await connect();
  const rows = [];
  for (const data of ['random', 'text']) {
    const bytes = Number(await sh(`zfs send -nP zones/${data}@s | awk '/^size/ {print $2}'`));
    const measure = async (label: string, work: () => Promise<unknown>) => {
      await sh('zfs destroy -r backup/t 2>/dev/null; true');
      const started = Date.now();
      await work();
      const s = seconds(started);
      log(`  ${data} ${label}: ${(bytes / 1e6 / s).toFixed(0)} MB/s`);
      return { data, path: label, seconds: s, mbPerSecond: bytes / 1e6 / s };
    };
    const plain = await measure('plain zfs send | ssh -c aes128-gcm | zfs receive', () =>
      sh(`zfs send zones/${data}@s | ssh -c aes128-gcm@openssh.com root@127.0.0.2 zfs receive -u backup/t`),
    );
    // the sender starts once the listener is up (a fixed sleep loses the race on a loaded machine)
    const rawMbuffer = await measure('plain mbuffer', () =>
      sh(
        `ssh root@127.0.0.2 'mbuffer -q -s 128k -m 128M -I 127.0.0.1:29999 | zfs receive -u backup/t' & until ss -ltn | grep -q ':29999 '; do sleep 0.1; done; zfs send zones/${data}@s | mbuffer -q -s 128k -m 128M -O 127.0.0.2:29999; wait`,
      ),
    );
    rows.push(plain, rawMbuffer);
    const variants = [
      ['ssh', 'openssh'],
      ['ssh', 'ssh2'],
      ['ssh_gzip', 'openssh'],
      ['ssh_gzip', 'ssh2'],
      ['mbuffer', 'openssh'],
      ['mbuffer_gzip', 'openssh'],
    ] as const;
    const only = process.env.BENCH_STRATEGIES?.split(',');
    for (const [name, bulk] of variants.filter(([name]) => !only || only.includes(name))) {
      const label = `zonecopy ${name}${name.startsWith('ssh') ? ` (bulk over ${bulk === 'openssh' ? 'an OpenSSH child' : 'the ssh2 channel'})` : ''}${name.endsWith('gzip') ? ' (zstd -1 -T0)' : ''}`;
      const s = strategy(name, hosts, bulk);
      const row = await measure(label, () =>
        s.transfer(['zfs', 'send', `zones/${data}@s`], ['zfs', 'receive', '-u', 'backup/t']),
      );
      await s.close();
      rows.push({
        ...row,
        ratioToPlain: row.mbPerSecond / (name.startsWith('mbuffer') ? rawMbuffer.mbPerSecond : plain.mbPerSecond),
      });
    }
  }
  await hosts.remote.close();
  return rows;
}

async function memory(sizes: number[]) {
  const rows = [];
  for (const mb of sizes) {
    const { uuid } = await vmWithDatasets(2);
    // the fixture's delegated dataset has a quota smaller than the larger streams
    await sh(`zfs set quota=none zones/${uuid}/data && head -c ${mb}M /dev/urandom > /zones/${uuid}/data/blob`);
    const run1 = await timed(['backup', uuid, '--groupName', 'rss']);
    rows.push({ streamMB: mb, maxRssMiB: run1.json.maxRssKiB / 1024, seconds: run1.seconds });
    log(`  ${mb} MB stream: peak RSS ${(run1.json.maxRssKiB / 1024).toFixed(0)} MiB`);
  }
  return rows;
}

async function history(sizes: number[]) {
  const rows: Array<{ snapshotsPerDataset: number; snapshotsOnTarget: number; noChangeSeconds: number }> = [];
  for (const count of sizes) {
    const { uuid, datasets } = await vmWithDatasets(2);
    const config = writeConfig();
    // a first (full) run, then the history, which the second run carries over as intermediates (-I)
    await timed(['backup', uuid, '--groupName', 'hist', '--name', 'first'], config);
    // one `zfs snapshot` takes one snapshot per file system: a step of history per command
    await sh(
      `for i in $(seq 0 ${count - 1}); do n=$(printf %05d "$i"); zfs snapshot ${datasets.map((d) => `${d}@hist-$n`).join(' ')} || exit 1; done`,
    );
    await timed(['backup', uuid, '--groupName', 'hist', '--name', 'second'], config);
    const nochange = await timed(['backup', uuid, '--groupName', 'hist', '--name', 'nochange'], config);
    const onTarget = Number(await sh(`zfs list -H -t snapshot -o name -r backup | wc -l`));
    rows.push({ snapshotsPerDataset: count, snapshotsOnTarget: onTarget, noChangeSeconds: nochange.seconds });
    log(`  ${count} snapshots per dataset (${onTarget} on the target): no-change run ${nochange.seconds.toFixed(1)} s`);
  }
  return rows.map((r) => ({ ...r, ratioToSmallest: r.noChangeSeconds / rows[0]!.noChangeSeconds }));
}

/**
 * One VM's set restored two ways, side by side: whole onto a host without the VM, and with
 * `--force` over the VM a set older, which still shares that set's snapshot (only the change moves).
 */
async function restoreTimes(mb: number) {
  await resetHosts();
  await createFixtures(['joyent']);
  const uuid = await fixtureUuid('joyent');
  const config = writeConfig();
  await sh(`head -c ${mb}M /dev/urandom > /zones/${uuid}/bulk.bin`);
  await timed(['backup', uuid, '--groupName', 'r', '--name', 'b1'], config);
  await sh(`head -c 8M /dev/urandom > /zones/${uuid}/change.bin`);
  await timed(['backup', uuid, '--groupName', 'r', '--name', 'b2'], config);
  const restore = async (args: string[]) => {
    const started = Date.now();
    const result = await zonecopy(['restore', uuid, ...args], config);
    if (result.code !== 0) throw new Error(`restore ${args.join(' ')} failed: ${result.stderr}`);
    return seconds(started);
  };
  await releaseHolds(uuid);
  await sh(`vmadm delete ${uuid}`);
  const full = await restore(['--snapshot', 'r-b2']);
  // back to the older set (whole: this host has only the newer one), then the newer set over it
  await restore(['--snapshot', 'r-b1', '--force']);
  const incremental = await restore(['--snapshot', 'r-b2', '--force']);
  log(
    `  restore of a ${mb} MB VM: full ${full.toFixed(1)} s, incremental over the older set ${incremental.toFixed(1)} s`,
  );
  return [{ dataMB: mb, fullSeconds: full, incrementalSeconds: incremental, ratio: full / incremental }];
}

/**
 * Many small VMs with no changes: one `backup --all` (one Node start, one connection, VMs side by
 * side) against one `backup <uuid>` per VM one after another, as cron lines per VM would run them.
 */
async function allVms(vms: number, datasets: number) {
  await resetHosts();
  await sh('imgadm import e44ed3e0-910b-11ed-a5d4-00151714048c >/dev/null');
  const uuids: string[] = [];
  for (let i = 0; i < vms; i++) {
    const uuid = `0b0b0b0b-0000-4000-8000-${String(i).padStart(12, '0')}`;
    const payload = {
      uuid,
      brand: 'joyent',
      alias: `bench${i}`,
      image_uuid: 'e44ed3e0-910b-11ed-a5d4-00151714048c',
      quota: 1,
      max_physical_memory: 128,
      delegate_dataset: true,
    };
    await run('vmadm', ['create'], { input: JSON.stringify(payload) });
    // the zone root and its delegated dataset, and children of it up to `datasets`
    const children = Array.from({ length: datasets - 2 }, (_, c) => `zones/${uuid}/data/c${c}`);
    if (children.length) await sh(`for d in ${children.join(' ')}; do zfs create "$d"; done`);
    uuids.push(uuid);
  }
  log(`allVms: ${vms} VMs of ${datasets} datasets`);
  const config = writeConfig(JSON.parse(process.env.BENCH_CONFIG ?? '{}'));
  await timed(['backup', '--all', '--groupName', 'bench', '--name', 'full'], config);
  const all1 = await timed(['backup', '--all', '--groupName', 'bench', '--name', 'n1'], config);
  const started = Date.now();
  for (const uuid of uuids) await timed(['backup', uuid, '--groupName', 'bench', '--name', 'n2'], config);
  const sequentialSeconds = seconds(started);
  const all2 = await timed(['backup', '--all', '--groupName', 'bench', '--name', 'n3'], config);
  const allSeconds = (all1.seconds + all2.seconds) / 2;
  log(
    `  --all ${all1.seconds.toFixed(1)} s and ${all2.seconds.toFixed(1)} s; ${vms} runs one after another ${sequentialSeconds.toFixed(1)} s`,
  );
  return [
    {
      vms,
      datasets,
      allSeconds,
      allRuns: [all1.seconds, all2.seconds],
      sequentialSeconds,
      ratio: sequentialSeconds / allSeconds,
    },
  ];
}

/**
 * Continuous mode: `serve` with one policy `every: "15s"` over an OS zone (its root and delegated
 * dataset), each cycle's wall time as the service measures it, against the bare commands of the
 * same cycle timed in a shell loop: one `zfs snapshot` of both datasets, per dataset
 * `zfs send -i | ssh zfs receive`, and the oldest snapshot destroyed on both sides.
 */
async function continuous(cycles: number) {
  await resetHosts();
  await createFixtures(['joyent']);
  const uuid = await fixtureUuid('joyent');
  const datasets = [`zones/${uuid}`, `zones/${uuid}/data`];
  const stateFile = `/var/tmp/bench-service-${process.pid}.json`;
  const config = writeConfig({
    serviceStateFile: stateFile,
    localSnapshotLimit: 3,
    remoteSnapshotLimit: 3,
    policies: [{ name: 'rpo', vms: { uuids: [uuid] }, every: '15s', group: 'often' }],
  });
  const serve = spawnServe(config.path);
  const durations: number[] = [];
  try {
    let seen: number | undefined;
    // the first cycle sends in full; the timed ones are incremental
    while (durations.length < cycles + 1) {
      await new Promise((r) => setTimeout(r, 500));
      if (!existsSync(stateFile)) continue;
      const state = JSON.parse(readFileSync(stateFile, 'utf8')) as {
        vms: Array<{ uuid: string; lastSuccessAt?: number; lastDurationSeconds?: number }>;
      };
      const vm = state.vms.find((v) => v.uuid === uuid);
      if (vm?.lastSuccessAt !== undefined && vm.lastSuccessAt !== seen) {
        seen = vm.lastSuccessAt;
        durations.push(vm.lastDurationSeconds!);
        log(`  cycle ${durations.length}: ${vm.lastDurationSeconds!.toFixed(2)} s`);
      }
    }
  } finally {
    serve.kill('SIGTERM');
    await new Promise((r) => serve.once('exit', r));
    await sh(`rm -f ${stateFile}`);
  }
  const timedCycles = durations.slice(1);
  const cycleSeconds = timedCycles.reduce((a, b) => a + b, 0) / timedCycles.length;
  // the same cycle by hand, into a tree of its own on the backup host
  const bare = (ds: string) => ds.replace(/^zones\//, 'backup/bare/');
  await sh(
    `ssh root@127.0.0.2 zfs create -p backup/bare && zfs snapshot ${datasets.map((d) => `${d}@bare-0`).join(' ')} && ${datasets
      .map((d) => `zfs send ${d}@bare-0 | ssh root@127.0.0.2 zfs receive -u ${bare(d)}`)
      .join(' && ')}`,
  );
  const started = Date.now();
  const script = [
    `for i in $(seq 1 ${cycles}); do`,
    `  zfs snapshot ${datasets.map((d) => `${d}@bare-$i`).join(' ')} || exit 1`,
    ...datasets.map(
      (d) => `  zfs send -i @bare-$((i - 1)) ${d}@bare-$i | ssh root@127.0.0.2 zfs receive -u ${bare(d)} || exit 1`,
    ),
    `  if [ "$i" -ge 3 ]; then old=$((i - 3)); for d in ${datasets.join(' ')}; do zfs destroy "$d@bare-$old"; done; for d in ${datasets.map(bare).join(' ')}; do ssh root@127.0.0.2 zfs destroy "$d@bare-$old"; done; fi`,
    'done',
  ].join('\n');
  await sh(script);
  const bareSeconds = seconds(started) / cycles;
  log(`  continuous: a cycle ${cycleSeconds.toFixed(2)} s in serve, ${bareSeconds.toFixed(2)} s as bare commands`);
  return [{ cycles, cycleSeconds, cycleRuns: timedCycles, bareSeconds, ratio: cycleSeconds / bareSeconds }];
}

function spawnServe(configPath: string) {
  return spawn(
    '/usr/bin/env',
    [
      '-i',
      'PATH=/usr/sbin:/usr/bin',
      'HOME=/root',
      `ZONECOPY_CONFIG=${configPath}`,
      `${PROJECT}/bin/zonecopy`,
      'serve',
    ],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
}

/** BENCH_PHASES=overhead,dataPath,memory,history,restore,allVms,continuous picks phases; the others keep their last figures. */
async function main() {
  const phases = (process.env.BENCH_PHASES ?? 'overhead,dataPath,memory,history,restore,allVms,continuous').split(',');
  const file = `${PROJECT}/bench/results.json`;
  const previous = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>) : {};
  const results: Record<string, unknown> = {
    ...previous,
    measuredAt: new Date().toISOString(),
    environment: `${(await sh('zfs version | head -1')).trim()} in a QEMU TCG guest (2 vCPUs); both hosts in the one guest`,
  };
  // written after every phase, so an interrupted run keeps the figures it measured
  const save = (phase: string, figures: unknown) => {
    results[phase] = figures;
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
    log(`wrote bench/results.json (${phase})`);
  };
  if (phases.includes('overhead')) save('overhead', await overhead(list('BENCH_DATASETS', '10,50,100')));
  if (phases.includes('dataPath')) save('dataPath', await dataPath(Number(process.env.BENCH_MB ?? 1024)));
  if (phases.includes('memory')) save('memory', await memory(list('BENCH_RSS_MB', '100,2048')));
  if (phases.includes('history')) save('history', await history(list('BENCH_HISTORY', '10,1000')));
  if (phases.includes('restore')) save('restore', await restoreTimes(Number(process.env.BENCH_RESTORE_MB ?? 512)));
  if (phases.includes('allVms')) {
    const [vms, datasets] = (process.env.BENCH_VMS ?? '20x5').split('x').map(Number);
    save('allVms', await allVms(vms!, datasets!));
  }
  if (phases.includes('continuous')) save('continuous', await continuous(Number(process.env.BENCH_CYCLES ?? 6)));
}

main().catch((error: Error) => {
  process.stderr.write(`${error.stack ?? error.message}\n`);
  process.exit(1);
});
