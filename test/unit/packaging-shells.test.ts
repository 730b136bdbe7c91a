/**
 * The installer (dist/install.sh as build_distribution.sh makes it) and the launchers under ksh93 and
 * posh, each run as a SmartOS global zone's /bin/sh would run them, with illumos' tail, digest,
 * crontab, svccfg and svcadm (test/illumos-shims) and without the GNU-only tools the platform lacks.
 * What the guest test (test/integration/packaging.test.ts) covers that needs no ZFS is here too:
 * install, upgrade, cron lines, damaged installer, uninstall. The SmartOS branch (SMF service in
 * /opt/custom/smf) runs in a private mount namespace where /opt and /usr/sbin are empty tmpfs.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  hostCommand,
  leftovers,
  makeStandIn,
  NOT_ON_ILLUMOS,
  PROJECT,
  SHELLS,
  SHIMS,
  writeScript,
  type StandIn,
} from './illumos-stand-in.js';
import { NO_DTD, validateManifest } from './smf-dtd.js';

const UUID = '8f3b9a1e-5d2c-4b7a-9e1f-0a1b2c3d4e5f';
const OTHER_LINE = '15 3 * * * /usr/sbin/logadm\n';

let builds: string;
let installer: string;

/** build_distribution.sh into OUTPUT (build/ is fresh: the unit tests run after npm run build). */
function buildInstaller(output: string, nodeBinary?: string): void {
  const env = { ...process.env, ZONECOPY_BUILT: '1', ...(nodeBinary ? { NODE_BINARY: nodeBinary } : {}) };
  const out = spawnSync('bash', ['build_distribution.sh', output], { cwd: PROJECT, env, encoding: 'utf8' });
  assert.equal(out.status, 0, `build_distribution.sh failed: ${out.stderr}`);
}

before(() => {
  builds = mkdtempSync(join(tmpdir(), 'zc-installer-'));
  installer = join(builds, 'install.sh');
  buildInstaller(installer);
});
after(() => rmSync(builds, { recursive: true, force: true }));

for (const shell of SHELLS) {
  describe(`install.sh under ${shell} as /bin/sh`, () => {
    it('runs where sha256sum, printenv, timeout, flock and stdbuf do not exist', (t) => {
      const standIn = makeStandIn(t, shell);
      for (const tool of NOT_ON_ILLUMOS) {
        const found = spawnSync(hostCommand(shell), ['-c', `command -v ${tool}`], {
          env: standIn.env(),
          encoding: 'utf8',
        });
        assert.notEqual(found.status, 0, `${tool} is reachable: ${found.stdout}`);
      }
    });

    it('installs into a prefix (payload cut off without tail -c, checked with digest) and leaves nothing in TMPDIR', (t) => {
      const standIn = makeStandIn(t, shell);
      const prefix = join(standIn.root, 'opt/zonecopy');
      const result = standIn.run(installer, ['--prefix', prefix]);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      for (const file of [
        'bin/backup',
        'bin/zonecopy',
        'dist/zonecopy.mjs',
        'configuration.json.example',
        'smf/zonecopy-cron.xml',
        'smf/zonecopy-cron.sh',
        'VERSION',
        'README',
      ]) {
        assert.ok(existsSync(join(prefix, file)), file);
      }
      assert.match(result.stdout, /backup --dry-run <vm-uuid>/);
      assert.equal(existsSync(join(prefix, 'configuration.json')), false);
      assert.deepEqual(leftovers(standIn), []);

      const version = standIn.run(join(prefix, 'bin/zonecopy'), ['--version']);
      assert.equal(version.code, 0, version.stderr);
      assert.equal(version.stdout.trim(), readFileSync(join(prefix, 'VERSION'), 'utf8').trim());
    });

    it("installs cron lines whose output goes to the log, not to root's mail; an upgrade replaces them; uninstall removes them", (t) => {
      const standIn = makeStandIn(t, shell);
      const prefix = join(standIn.root, 'opt/zonecopy');
      const table = join(standIn.state, 'crontab');
      writeFileSync(table, OTHER_LINE);

      const first = standIn.run(installer, [
        '--prefix',
        prefix,
        '--cron',
        '0 2 * * *',
        '--cron-args',
        `${UUID} --groupName daily`,
      ]);
      assert.equal(first.code, 0, first.stderr + first.stdout);
      assert.match(first.stdout, /not SmartOS/);
      const line = `0 2 * * * ${prefix}/bin/backup ${UUID} --groupName daily >>${prefix}/log/cron.log 2>&1 # zonecopy\n`;
      assert.equal(readFileSync(table, 'utf8'), OTHER_LINE + line);
      assert.equal(readFileSync(join(prefix, 'cron/root.cron'), 'utf8'), line);

      writeFileSync(join(prefix, 'configuration.json'), '{"mine": true}\n');
      const upgrade = standIn.run(installer, ['--prefix', prefix, '--cron', '30 1,13 * * 1-5', '--cron-args', UUID]);
      assert.equal(upgrade.code, 0, upgrade.stderr + upgrade.stdout);
      assert.match(upgrade.stdout, /upgrad/);
      assert.equal(readFileSync(join(prefix, 'configuration.json'), 'utf8'), '{"mine": true}\n');
      assert.equal(
        readFileSync(table, 'utf8'),
        `${OTHER_LINE}30 1,13 * * 1-5 ${prefix}/bin/backup ${UUID} >>${prefix}/log/cron.log 2>&1 # zonecopy\n`,
      );

      const removed = standIn.run(installer, ['--uninstall', '--prefix', prefix]);
      assert.equal(removed.code, 0, removed.stderr + removed.stdout);
      assert.equal(existsSync(join(prefix, 'dist/zonecopy.mjs')), false);
      assert.equal(existsSync(join(prefix, 'configuration.json')), true);
      assert.equal(readFileSync(table, 'utf8'), OTHER_LINE);
      assert.deepEqual(leftovers(standIn), []);
    });

    const refused: Array<[string, RegExp]> = [
      ['*/15 * * * *', /minute field '\*\/15'.*step.*write 0,15,30,45/],
      ['0 */6 * * *', /hour field '\*\/6'.*write 0,6,12,18/],
      ['0 8-18/5 * * *', /hour field '8-18\/5'.*write 8,13,18/],
      ['@daily', /'@daily'.*write '0 0 \* \* \*'/],
      ['0 2 * * mon', /day-of-week field 'mon'.*name.*write 1 /],
      ['0 2 1 Jan *', /month field 'Jan'.*name.*write 1\b/],
      ['0 24 * * *', /hour field '24'.*0-23/],
      ['0 2 * * 7', /day-of-week field '7'.*0-6.*0 is Sunday/],
      ['0 2 * *', /5 fields.*got 4/],
      ['0 2 ? * *', /day-of-month field '\?'/],
    ];
    it('refuses schedules illumos cron does not take, naming the field and what to write, before changing anything', (t) => {
      const standIn = makeStandIn(t, shell);
      const prefix = join(standIn.root, 'opt/zonecopy');
      const table = join(standIn.state, 'crontab');
      writeFileSync(table, OTHER_LINE);
      for (const [spec, message] of refused) {
        const result = standIn.run(installer, ['--prefix', prefix, '--cron', spec, '--cron-args', UUID]);
        assert.notEqual(result.code, 0, `${spec} accepted: ${result.stdout}`);
        assert.match(result.stderr, message, spec);
        assert.equal(existsSync(prefix), false, `${spec}: ${prefix} was created`);
        assert.equal(readFileSync(table, 'utf8'), OTHER_LINE, spec);
      }
      const percent = standIn.run(installer, [
        '--prefix',
        prefix,
        '--cron',
        '0 2 * * *',
        '--cron-args',
        `${UUID} --name 50%`,
      ]);
      assert.notEqual(percent.code, 0);
      assert.match(percent.stderr, /%/);
      assert.deepEqual(leftovers(standIn), []);
    });

    it('fails, and says so, when crontab refuses the table', (t) => {
      const standIn = makeStandIn(t, shell);
      const prefix = join(standIn.root, 'opt/zonecopy');
      writeFileSync(join(standIn.state, 'crontab.refuse'), '');
      const result = standIn.run(installer, ['--prefix', prefix, '--cron', '0 2 * * *', '--cron-args', UUID]);
      assert.notEqual(result.code, 0, result.stdout);
      assert.match(result.stderr, /crontab.*not authorized/s);
      assert.match(result.stderr, /not in root's crontab/);
      assert.equal(readFileSync(join(prefix, 'cron/root.cron'), 'utf8'), '', 'root.cron has lines crontab refused');
    });

    it('refuses a damaged installer and writes nothing', (t) => {
      const standIn = makeStandIn(t, shell);
      const damaged = join(standIn.root, 'damaged.sh');
      const bytes = readFileSync(installer);
      bytes[bytes.length - 100]! ^= 0xff;
      writeFileSync(damaged, bytes);
      const fresh = join(standIn.root, 'fresh');
      const result = standIn.run(damaged, ['--prefix', fresh]);
      assert.notEqual(result.code, 0);
      assert.match(result.stderr, /damaged/);
      assert.equal(existsSync(fresh), false);
      assert.deepEqual(leftovers(standIn), []);
    });
  });
}

describe('install.sh checks the node it will use before installing anything', () => {
  let broken: string;
  let old: string;
  before(() => {
    // a pkgsrc node copied to a host without pkgsrc: the runtime linker stops it before it starts
    const brokenNode = join(builds, 'broken-node');
    writeScript(
      brokenNode,
      "#!/bin/sh\necho 'ld.so.1: node: fatal: libuv.so.1: open failed: No such file or directory' >&2\nexit 137\n",
    );
    const oldNode = join(builds, 'old-node');
    writeScript(oldNode, '#!/bin/sh\n[ "$1" = --version ] && echo v18.20.4 && exit 0\nexit 1\n');
    broken = join(builds, 'install-broken-node.sh');
    old = join(builds, 'install-old-node.sh');
    buildInstaller(broken, brokenNode);
    buildInstaller(old, oldNode);
  });

  for (const shell of SHELLS) {
    it(`${shell}: a shipped node that does not run stops the installer with the reason`, (t) => {
      const standIn = makeStandIn(t, shell);
      const prefix = join(standIn.root, 'opt/zonecopy');
      const result = standIn.run(broken, ['--prefix', prefix]);
      assert.notEqual(result.code, 0, result.stdout);
      assert.match(result.stderr, /node shipped in this installer does not run here/);
      assert.match(result.stderr, /libuv\.so\.1/);
      assert.match(result.stderr, /\/opt\/local\/lib/);
      assert.equal(existsSync(prefix), false);
      assert.deepEqual(leftovers(standIn), []);
    });

    it(`${shell}: a shipped node older than 20 stops the installer`, (t) => {
      const standIn = makeStandIn(t, shell);
      const prefix = join(standIn.root, 'opt/zonecopy');
      const result = standIn.run(old, ['--prefix', prefix]);
      assert.notEqual(result.code, 0, result.stdout);
      assert.match(result.stderr, /node shipped in this installer is v18\.20\.4.*>= 20/);
      assert.equal(existsSync(prefix), false);
    });

    it(`${shell}: no node >= 20 anywhere stops the installer`, (t) => {
      const standIn = makeStandIn(t, shell, { nodeOnPath: false });
      const prefix = join(standIn.root, 'opt/zonecopy');
      const result = standIn.run(installer, ['--prefix', prefix], { ZONECOPY_NODE_SEARCH: '/nonexistent/node' });
      assert.notEqual(result.code, 0, result.stdout);
      assert.match(result.stderr, /needs Node\.js >= 20.*Nothing was installed/);
      assert.equal(existsSync(prefix), false);
    });
  }
});

describe("bin/zonecopy and bin/backup in cron's environment", () => {
  /** A copy of the launchers beside a program that prints the PATH and arguments it was given. */
  function launcherCopy(root: string): string {
    const copy = join(root, 'zonecopy');
    mkdirSync(join(copy, 'bin'), { recursive: true });
    mkdirSync(join(copy, 'dist'));
    writeScript(join(copy, 'bin/zonecopy'), readFileSync(join(PROJECT, 'bin/zonecopy'), 'utf8'));
    writeScript(join(copy, 'bin/backup'), readFileSync(join(PROJECT, 'bin/backup'), 'utf8'));
    writeFileSync(
      join(copy, 'dist/zonecopy.mjs'),
      'console.log(JSON.stringify({ path: process.env.PATH, argv: process.argv.slice(2) }));\n',
    );
    return copy;
  }

  /**
   * Runs a launcher as cron would (env -i, the stand-in's PATH) in a private mount namespace whose
   * /opt is an empty tmpfs holding only `optDirs`, so pkgsrc's folders exist or not as on the host being played.
   */
  function inNamespace(
    shell: string,
    standIn: StandIn,
    optDirs: readonly string[],
    launcher: string,
    args: readonly string[],
    extra: Record<string, string>,
  ) {
    const script = 'set -e; mount -t tmpfs zc-opt /opt; for d in $OPT_DIRS; do mkdir -p "$d"; done; exec env -i "$@"';
    const pairs = Object.entries(standIn.env(extra)).map(([k, v]) => `${k}=${v}`);
    const out = spawnSync(
      'unshare',
      ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', ...pairs, hostCommand(shell), launcher, ...args],
      {
        env: { ...process.env, OPT_DIRS: optDirs.join(' ') },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    return { code: out.status, stdout: out.stdout, stderr: out.stderr };
  }

  for (const shell of SHELLS) {
    it(
      `${shell}: pkgsrc's bin folders, where they exist (a SmartOS global zone), come after cron's PATH`,
      { skip: canUnshare() ? false : 'needs unshare -m (root)' },
      (t) => {
        const standIn = makeStandIn(t, shell, { sunos: true, nodeOnPath: false });
        const copy = launcherCopy(standIn.root);
        const pkgsrc = ['/opt/tools/bin', '/opt/local/bin'];
        const result = inNamespace(shell, standIn, pkgsrc, join(copy, 'bin/zonecopy'), ['status'], {
          ZONECOPY_NODE: process.execPath,
        });
        assert.equal(result.code, 0, result.stderr);
        assert.deepEqual(JSON.parse(result.stdout), {
          path: `${standIn.path}:/opt/tools/bin:/opt/local/bin`,
          argv: ['status'],
        });

        const already = inNamespace(shell, standIn, pkgsrc, join(copy, 'bin/zonecopy'), [], {
          ZONECOPY_NODE: process.execPath,
          PATH: `/opt/local/bin:${standIn.path}`,
        });
        assert.equal(JSON.parse(already.stdout).path, `/opt/local/bin:${standIn.path}:/opt/tools/bin`);

        const backup = inNamespace(shell, standIn, pkgsrc, join(copy, 'bin/backup'), [UUID, '--groupName', 'daily'], {
          ZONECOPY_NODE: process.execPath,
        });
        assert.equal(backup.code, 0, backup.stderr);
        assert.deepEqual(JSON.parse(backup.stdout).argv, ['backup', UUID, '--groupName', 'daily']);
      },
    );

    it(
      `${shell}: without pkgsrc's folders the PATH stays as it is`,
      { skip: canUnshare() ? false : 'needs unshare -m (root)' },
      (t) => {
        const standIn = makeStandIn(t, shell, { nodeOnPath: false });
        const copy = launcherCopy(standIn.root);
        const result = inNamespace(shell, standIn, [], join(copy, 'bin/zonecopy'), [], {
          ZONECOPY_NODE: process.execPath,
        });
        assert.equal(result.code, 0, result.stderr);
        assert.equal(JSON.parse(result.stdout).path, standIn.path);
      },
    );
  }
});

/** Whether this machine lets us make a private mount namespace (root, not in a locked-down container). */
function canUnshare(): boolean {
  return spawnSync('unshare', ['-m', 'true']).status === 0;
}

describe(
  'install.sh on a SmartOS global zone (SMF boot service)',
  { skip: canUnshare() ? false : 'needs unshare -m (root)' },
  () => {
    for (const shell of SHELLS) {
      it(`${shell}: installs the boot service, puts the cron line in, and uninstall stops the service before deleting it`, (t) => {
        const standIn = makeStandIn(t, shell, { sunos: true, nodeOnPath: false });
        const state = standIn.state;
        writeFileSync(join(state, 'crontab'), OTHER_LINE);
        // Inside the namespace /opt and /usr/sbin are empty tmpfs: /usr/sbin/vmadm, svccfg and svcadm are
        // the stubs, node is pkgsrc's /opt/tools/bin/node, and nothing reaches the host's /opt.
        const script = `
        set -e
        mount -t tmpfs zc-opt /opt
        mount -t tmpfs zc-usr-sbin /usr/sbin
        for stub in sunos/vmadm svccfg svcadm; do ln -s "$SHIMS/$stub" /usr/sbin/; done
        mkdir -p /opt/tools/bin
        ln -s "$NODE" /opt/tools/bin/node
        run() { env -i PATH="$STANDIN_PATH" HOME=/root TMPDIR="$STANDIN_TMP" SHIM_STATE="$STATE" "$SHELL_UNDER_TEST" "$INSTALLER" "$@"; }
        set +e
        run --cron '0 2 * * *' --cron-args "$UUID" >"$STATE/install.out" 2>&1
        echo $? >"$STATE/install.code"
        cp /opt/custom/smf/zonecopy-cron.xml "$STATE/installed.xml"
        cp /opt/custom/smf/zonecopy-serve.xml "$STATE/installed-serve.xml"
        cp /opt/zonecopy/cron/root.cron "$STATE/root.cron"
        run --uninstall >"$STATE/uninstall.out" 2>&1
        echo $? >"$STATE/uninstall.code"
        ls -A /opt/custom/smf >"$STATE/smf-dir-after"
      `;
        const env = {
          ...process.env,
          SHIMS,
          NODE: process.execPath,
          STANDIN_PATH: standIn.path,
          STANDIN_TMP: standIn.tmp,
          STATE: state,
          SHELL_UNDER_TEST: hostCommand(shell),
          INSTALLER: installer,
          UUID,
        };
        const ran = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], {
          env,
          encoding: 'utf8',
          timeout: 120_000,
        });
        assert.equal(ran.status, 0, ran.stderr);
        const installOut = readFileSync(join(state, 'install.out'), 'utf8');
        assert.equal(readFileSync(join(state, 'install.code'), 'utf8').trim(), '0', installOut);
        assert.match(installOut, /SMF service site\/zonecopy-cron/);

        const manifest = join(state, 'installed.xml');
        const xml = readFileSync(manifest, 'utf8');
        assert.doesNotMatch(xml, /@PREFIX@/);
        assert.match(xml, /exec="\/opt\/zonecopy\/smf\/zonecopy-cron\.sh \/opt\/zonecopy\/cron\/root\.cron"/);
        if (!NO_DTD) validateManifest(manifest);
        // serve's service is offered beside the cron lines: imported disabled, enabled by the operator
        const serveXml = readFileSync(join(state, 'installed-serve.xml'), 'utf8');
        assert.doesNotMatch(serveXml, /@PREFIX@/);
        assert.match(serveXml, /exec="\/opt\/zonecopy\/bin\/zonecopy serve &amp;"/);
        assert.match(serveXml, /<create_default_instance enabled="false"\/>/);
        if (!NO_DTD) validateManifest(join(state, 'installed-serve.xml'));
        assert.match(installOut, /svcadm enable zonecopy/);
        const line = `0 2 * * * /opt/zonecopy/bin/backup ${UUID} >>/opt/zonecopy/log/cron.log 2>&1 # zonecopy\n`;
        assert.equal(readFileSync(join(state, 'root.cron'), 'utf8'), line);

        const uninstallOut = readFileSync(join(state, 'uninstall.out'), 'utf8');
        assert.equal(readFileSync(join(state, 'uninstall.code'), 'utf8').trim(), '0', uninstallOut);
        const smf = readFileSync(join(state, 'smf.log'), 'utf8').trim().split('\n');
        const imported = smf.indexOf('svccfg import /opt/custom/smf/zonecopy-cron.xml');
        const disabled = smf.indexOf('svcadm disable -s svc:/site/zonecopy-cron:default');
        const deleted = smf.indexOf('svccfg delete svc:/site/zonecopy-cron');
        assert.ok(imported >= 0 && disabled > imported && deleted > disabled, smf.join('\n'));
        const serveImported = smf.indexOf('svccfg import /opt/custom/smf/zonecopy-serve.xml');
        const serveDisabled = smf.indexOf('svcadm disable -s svc:/site/zonecopy:default');
        const serveDeleted = smf.indexOf('svccfg delete svc:/site/zonecopy');
        assert.ok(serveImported >= 0 && serveDisabled > serveImported && serveDeleted > serveDisabled, smf.join('\n'));
        assert.ok(!smf.some((l) => l.startsWith('svcadm enable')), 'the service is never enabled by the installer');
        assert.equal(readFileSync(join(state, 'smf-dir-after'), 'utf8'), '');
        assert.equal(readFileSync(join(state, 'crontab'), 'utf8'), OTHER_LINE);
        assert.deepEqual(leftovers(standIn), []);
      });
    }
  },
);

describe('install.sh on SunOS: an SSH key that survives a reboot (issue 17, §2.1)', () => {
  /** ssh-keygen, as OpenSSH in the platform provides it, on the stand-in's PATH. */
  function withSshKeygen(standIn: ReturnType<typeof makeStandIn>): Record<string, string> {
    const dir = join(standIn.root, 'openssh');
    mkdirSync(dir);
    writeScript(join(dir, 'ssh-keygen'), `#!/bin/sh\nexec ${hostCommand('ssh-keygen')} "$@"\n`);
    return { PATH: `${standIn.path}:${dir}` };
  }

  for (const shell of SHELLS) {
    it(`${shell}: creates ${'<prefix>'}/etc/ssh/id_ed25519 (not under /root), prints its public key and the ssh-keyscan -p PORT and fingerprint steps; an upgrade keeps it`, (t) => {
      const standIn = makeStandIn(t, shell, { sunos: true });
      const prefix = join(standIn.root, 'opt/zonecopy');
      mkdirSync(prefix, { recursive: true });
      writeFileSync(
        join(prefix, 'configuration.json'),
        JSON.stringify({
          backupDestination: 'backup.example.com',
          backupDestinationPort: 2222,
          backupDestinationBasePath: 'backup/zones',
        }),
      );
      const env = withSshKeygen(standIn);
      const result = standIn.run(installer, ['--prefix', prefix], env);
      assert.equal(result.code, 0, result.stderr + result.stdout);
      const key = join(prefix, 'etc/ssh/id_ed25519');
      assert.ok(existsSync(key) && existsSync(`${key}.pub`), result.stdout);
      const publicKey = readFileSync(`${key}.pub`, 'utf8').trim();
      assert.match(publicKey, /^ssh-ed25519 /);
      assert.ok(result.stdout.includes(publicKey), result.stdout);
      assert.ok(
        result.stdout.includes(`ssh-keyscan -p 2222 -t ed25519 backup.example.com >> ${prefix}/etc/ssh/known_hosts`),
        result.stdout,
      );
      assert.match(result.stdout, /ssh-keygen -lf .*known_hosts/);
      assert.equal(
        spawnSync(hostCommand('ssh-keygen'), ['-y', '-P', '', '-f', key], { encoding: 'utf8' }).status,
        0,
        'the key has a passphrase',
      );

      const again = standIn.run(installer, ['--prefix', prefix], env);
      assert.equal(again.code, 0, again.stderr + again.stdout);
      assert.equal(readFileSync(`${key}.pub`, 'utf8').trim(), publicKey, 'the upgrade replaced the key');
      assert.match(again.stdout, /\(kept\)/);
      assert.deepEqual(leftovers(standIn), []);
    });
  }

  it("elsewhere the installer makes no key (the user's ~/.ssh persists)", (t) => {
    const standIn = makeStandIn(t, 'ksh93');
    const prefix = join(standIn.root, 'opt/zonecopy');
    const result = standIn.run(installer, ['--prefix', prefix], withSshKeygen(standIn));
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.equal(existsSync(join(prefix, 'etc/ssh/id_ed25519')), false);
  });
});
