/**
 * A stand-in for a SmartOS global zone's command line, to run the packaging scripts as the platform
 * would: the shell under test as `sh`, the illumos shims of test/illumos-shims, and links to only the
 * basic POSIX tools the scripts need, so that a GNU-only tool (sha256sum, printenv, timeout, flock,
 * stdbuf) is simply not there. Every folder it makes is removed when the test ends, failed or not.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';

export const PROJECT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
export const SHIMS = join(PROJECT, 'test/illumos-shims');

/** The shells a global zone's /bin/sh stands for: ksh93 is illumos' sh, posh the strictest POSIX one. */
export const SHELLS = ['ksh93', 'posh'] as const;

/**
 * What the scripts may use besides the shims; all are in POSIX and in the SmartOS platform (uname is
 * the host's unless the stand-in plays SunOS).
 */
const POSIX_TOOLS = [
  'cat',
  'cmp',
  'cp',
  'cut',
  'dd',
  'dirname',
  'grep',
  'gzip',
  'mkdir',
  'mktemp',
  'printf',
  'rm',
  'sed',
  'tar',
  'uname',
];

/** Commands a global zone lacks: none of them may be reachable on the stand-in's PATH. */
export const NOT_ON_ILLUMOS = ['sha256sum', 'printenv', 'timeout', 'flock', 'stdbuf'];

export function hostCommand(name: string): string {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    const candidate = join(dir, name);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`${name} is not installed on this machine (.ci/run installs it)`);
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface StandIn {
  /** The temporary folder everything lives in. */
  root: string;
  /** PATH: shims (and sunos/ when playing SunOS), then the tool links. */
  path: string;
  /** The shims' state: `crontab` (root's table), `smf.log` (svccfg/svcadm calls). */
  state: string;
  /** TMPDIR for the scripts, to see that they leave nothing behind. */
  tmp: string;
  /** The folder holding `node` (a link to this node), for a host where node is on PATH. */
  nodeDir: string;
  /** The environment a script gets: nothing but PATH, HOME, TMPDIR and SHIM_STATE (env -i). */
  env(extra?: Record<string, string>): Record<string, string>;
  /** Runs `shell script args` (as `sh script args` would on the platform). */
  run(script: string, args: readonly string[], extra?: Record<string, string>): RunResult;
}

export function makeStandIn(
  t: TestContext,
  shell: string,
  options: { sunos?: boolean; nodeOnPath?: boolean } = {},
): StandIn {
  const root = mkdtempSync(join(tmpdir(), 'zc-illumos-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const tools = join(root, 'tools');
  const state = join(root, 'state');
  const tmp = join(root, 'tmp');
  const nodeDir = join(root, 'node-bin');
  for (const dir of [tools, state, tmp, nodeDir]) mkdirSync(dir);
  const shellPath = hostCommand(shell);
  symlinkSync(shellPath, join(tools, 'sh'));
  for (const tool of POSIX_TOOLS) symlinkSync(hostCommand(tool), join(tools, tool));
  symlinkSync(process.execPath, join(nodeDir, 'node'));
  const dirs = [
    ...(options.sunos ? [join(SHIMS, 'sunos')] : []),
    SHIMS,
    tools,
    ...(options.nodeOnPath === false ? [] : [nodeDir]),
  ];
  const path = dirs.join(':');
  const env = (extra: Record<string, string> = {}) => ({
    PATH: path,
    HOME: '/root',
    TMPDIR: tmp,
    SHIM_STATE: state,
    ...extra,
  });
  return {
    root,
    path,
    state,
    tmp,
    nodeDir,
    env,
    run(script, args, extra) {
      const out = spawnSync(shellPath, [script, ...args], { env: env(extra), encoding: 'utf8', timeout: 60_000 });
      return { code: out.status, stdout: out.stdout, stderr: out.stderr };
    },
  };
}

/** What a script left in TMPDIR (should be nothing). */
export function leftovers(standIn: StandIn): string[] {
  return readdirSync(standIn.tmp);
}

/** Writes an executable shell script. */
export function writeScript(path: string, text: string): void {
  writeFileSync(path, text);
  chmodSync(path, 0o755);
}
