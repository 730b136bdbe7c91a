/**
 * Host-side driver of the real-OpenZFS test guest: build (cached), boot under QEMU TCG, run
 * commands in it over one ssh2 connection (our own RemoteHost), stop. The project checkout is
 * shared into the guest at /mnt/host over 9p, so tests run the code under test, not a copy.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  createReadStream,
  createWriteStream,
} from 'node:fs';
import { createServer } from 'node:net';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { RemoteHost } from '../../src/host/remote.js';
import type { CommandResult } from '../../src/host/host.js';

export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const GUEST_DIR = join(PROJECT_ROOT, 'test/guest');
export const CACHE = process.env.ZC_CACHE ?? join(homedir(), '.cache/zonecopy');

/** Pool disks, seen in the guest as /dev/disk/by-id/virtio-zc-<name>. */
const DISKS = [
  { name: 'zones', size: '8G' },
  { name: 'backup', size: '8G' },
  { name: 'spare', size: '4G' },
];

export interface GuestOptions {
  instance?: string;
  memory?: string;
  bootTimeoutMs?: number;
  log?: (line: string) => void;
}

/** Builds the guest image if its inputs changed; returns the image directory. */
export function buildImage(log: (line: string) => void = () => {}): string {
  const started = Date.now();
  const result = spawnSync('bash', [join(GUEST_DIR, 'build.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  if (result.status !== 0) throw new Error(`guest image build failed (exit ${result.status}); see the output above`);
  const out = result.stdout.trim().split('\n').pop()!;
  const seconds = (Date.now() - started) / 1000;
  if (seconds > 5) log(`guest image built in ${seconds.toFixed(0)} s: ${out}`);
  return out;
}

/** The host's node binary as a second initramfs archive, so the image need not change with node. */
async function nodeLayer(): Promise<string> {
  const node = process.execPath;
  const key = createHash('sha256')
    .update(`${process.version}:${statSync(node).size}`)
    .digest('hex')
    .slice(0, 12);
  const layer = join(CACHE, `node-${key}.cpio.zst`);
  if (existsSync(layer)) return layer;
  const staging = scratchPath(join(CACHE, `node-${key}.staging`));
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(join(staging, 'usr/local/bin'), { recursive: true });
  execFileSync('cp', [node, join(staging, 'usr/local/bin/node')]);
  execFileSync('sh', [
    '-c',
    `cd "$1" && find . | cpio -o -H newc --quiet -R 0:0 | zstd -q -T0 -3 > "$1.cpio" && mv "$1.cpio" "$2"`,
    'sh',
    staging,
    layer,
  ]);
  rmSync(staging, { recursive: true, force: true });
  return layer;
}

/** A path beside `path` no other process or guest start will pick (guests may start side by side). */
function scratchPath(path: string): string {
  return `${path}.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`;
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port')),
      );
    });
  });
}

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export class Guest {
  private constructor(
    readonly runDir: string,
    readonly pid: number,
    readonly host: RemoteHost,
    readonly zfsVersion: string,
    readonly bootSeconds: number,
  ) {}

  static async start(options: GuestOptions = {}): Promise<Guest> {
    const log = options.log ?? (() => {});
    const image = buildImage(log);
    const initrd = join(
      CACHE,
      `initrd-${createHash('sha256')
        .update(image + (await nodeLayer()))
        .digest('hex')
        .slice(0, 12)}.img`,
    );
    if (!existsSync(initrd)) {
      const scratch = scratchPath(initrd);
      await pipeline(createReadStream(join(image, 'initrd.img')), createWriteStream(scratch));
      await pipeline(createReadStream(await nodeLayer()), createWriteStream(scratch, { flags: 'a' }));
      execFileSync('mv', [scratch, initrd]);
    }
    const runDir = join(CACHE, `run-${options.instance ?? 'default'}`);
    const stale = join(runDir, 'qemu.pid');
    if (existsSync(stale)) {
      const old = Number(readFileSync(stale, 'utf8'));
      if (alive(old)) process.kill(old, 'SIGKILL');
    }
    rmSync(runDir, { recursive: true, force: true });
    mkdirSync(runDir, { recursive: true });
    const port = await freePort();
    const args = [
      '-accel',
      'tcg,thread=multi',
      '-cpu',
      'max',
      '-m',
      options.memory ?? '3G',
      '-smp',
      '2',
      '-nographic',
      '-nodefaults',
      '-no-reboot',
      '-monitor',
      'none',
      '-kernel',
      join(image, 'vmlinuz'),
      '-initrd',
      initrd,
      '-append',
      'console=ttyS0 quiet loglevel=3 panic=-1 net.ifnames=0',
      '-serial',
      `file:${join(runDir, 'serial.log')}`,
      '-netdev',
      `user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:${port}-:22`,
      '-device',
      'virtio-net-pci,netdev=n0,romfile=',
      '-device',
      'virtio-rng-pci',
      '-virtfs',
      `local,path=${PROJECT_ROOT},mount_tag=host,security_model=none,id=host0`,
      '-daemonize',
      '-pidfile',
      stale,
    ];
    for (const disk of DISKS) {
      const file = join(runDir, `${disk.name}.img`);
      execFileSync('truncate', ['-s', disk.size, file]);
      args.push('-drive', `file=${file},if=none,id=${disk.name},format=raw,cache=unsafe,discard=unmap`);
      args.push('-device', `virtio-blk-pci,drive=${disk.name},serial=zc-${disk.name}`);
    }
    const started = Date.now();
    execFileSync('qemu-system-x86_64', args, { stdio: ['ignore', 'inherit', 'inherit'] });
    const pid = Number(readFileSync(stale, 'utf8'));
    const timeout = options.bootTimeoutMs ?? 300_000;
    const serial = join(runDir, 'serial.log');
    while (!(existsSync(serial) && readFileSync(serial, 'utf8').includes('ZVM-READY'))) {
      if (!alive(pid))
        throw new Error(`the guest died while booting; serial console:\n${readFileSync(serial, 'utf8')}`);
      if (Date.now() - started > timeout)
        throw new Error(`the guest did not boot within ${timeout / 1000} s; see ${serial}`);
      await sleep(250);
    }
    writeFileSync(
      join(runDir, 'known_hosts'),
      `[127.0.0.1]:${port} ${readFileSync(join(image, 'host_key.pub'), 'utf8')}`,
    );
    writeFileSync(join(runDir, 'access.json'), JSON.stringify({ port, pid, key: join(image, 'id_ed25519') }));
    const guest = await Guest.attach(options.instance, timeout - (Date.now() - started));
    const bootSeconds = (Date.now() - started) / 1000;
    log(`guest up in ${bootSeconds.toFixed(1)} s (OpenZFS ${guest.zfsVersion}, pid ${pid}, ssh 127.0.0.1:${port})`);
    return new Guest(runDir, pid, guest.host, guest.zfsVersion, bootSeconds);
  }

  /** Connects to a guest that `start` booted (possibly from another process). */
  static async attach(instance = 'default', timeoutMs = 60_000): Promise<Guest> {
    const runDir = join(CACHE, `run-${instance}`);
    const access = JSON.parse(readFileSync(join(runDir, 'access.json'), 'utf8')) as {
      port: number;
      pid: number;
      key: string;
    };
    const started = Date.now();
    let host: RemoteHost | undefined;
    while (!host) {
      try {
        host = await RemoteHost.connect({
          host: '127.0.0.1',
          port: access.port,
          username: 'root',
          privateKeyPath: access.key,
          knownHostsPath: join(runDir, 'known_hosts'),
          disableHostKeyChecking: false,
          dryRun: false,
          connectTimeoutMs: 30_000,
        });
      } catch (error) {
        if (Date.now() - started > timeoutMs || !alive(access.pid)) throw error;
        await sleep(500);
      }
    }
    const zfsVersion = (await host.run(['cat', '/sys/module/zfs/version'], { mutates: false })).stdout.trim();
    return new Guest(runDir, access.pid, host, zfsVersion, 0);
  }

  /**
   * Makes the guest two hosts (pools, backup sshd, simulators); `reset` recreates the pools.
   * `backupShell`: the login shell of the user zonecopy logs in as on the backup host (csh or dash).
   */
  async setupHosts(mode: 'setup' | 'reset' = 'setup', backupShell: 'csh' | 'dash' = 'csh'): Promise<string> {
    return (
      await this.sh(`ZC_BACKUP_SHELL=${backupShell} bash /mnt/host/test/guest/hosts-setup.sh ${mode}`)
    ).stdout.trim();
  }

  /** Runs a shell script in the guest; output is collected. */
  async sh(script: string, options: { allowFailure?: boolean } = {}): Promise<CommandResult> {
    return this.host.run(['bash', '-c', script], {
      mutates: true,
      allowExitCodes: options.allowFailure ? range(1, 255) : [],
    });
  }

  /** Runs a shell script in the guest with its output streamed to ours; resolves to its exit code. */
  async stream(script: string, write: (text: string) => void = (text) => process.stdout.write(text)): Promise<number> {
    const child = this.host.spawn([['bash', '-c', script]]);
    child.stdin.end();
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', write);
    child.onStderr(write);
    return (await child.done).exitCode;
  }

  async stop(): Promise<void> {
    await this.host
      .run(['sh', '-c', '(sleep 0.2; zpool export -a; sync; echo o > /proc/sysrq-trigger) >/dev/null 2>&1 &'], {
        mutates: true,
      })
      .catch(() => undefined);
    await this.host.close();
    for (let i = 0; i < 120 && alive(this.pid); i++) await sleep(250);
    if (alive(this.pid)) process.kill(this.pid, 'SIGKILL');
    rmSync(this.runDir, { recursive: true, force: true });
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}
