/** Faults injected into `zonecopy restore --force` through PATH, shared by the backup-host and bucket tests. */
import { chmodSync, writeFileSync } from 'node:fs';
import { PROJECT, run, sh, type TestConfig } from './harness.js';

/**
 * `restore` with faults injected through PATH, as cron runs it: `zfs receive` reading ZC_CUT bytes of
 * its stream and ending it; `vmadm ZC_FAIL_VMADM` failing the first time it is called. (The backup
 * host dropped mid-receive is a unit test: test/unit/restore-replace-faults.test.ts.)
 */
export async function forceFaults(uuid: string, config: TestConfig) {
  const dir = (await sh('mktemp -d /tmp/zc-force-XXXXXX')).trim();
  const zfs = (await sh('command -v zfs')).trim();
  const vmadm = (await sh('command -v vmadm')).trim();
  writeFileSync(
    `${dir}/zfs`,
    `#!/bin/sh
if [ "$1" = receive ] && [ -n "$ZC_CUT" ]; then
  head -c "$ZC_CUT" | ${zfs} "$@"
  exit 1
fi
exec ${zfs} "$@"
`,
  );
  writeFileSync(
    `${dir}/vmadm`,
    `#!/bin/sh
if [ "$1" = "$ZC_FAIL_VMADM" ] && [ ! -e "${dir}/failed-$1" ]; then
  touch "${dir}/failed-$1"; cat > /dev/null; echo "vmadm $1 failed (injected)" >&2; exit 1
fi
exec ${vmadm} "$@"
`,
  );
  chmodSync(`${dir}/zfs`, 0o755);
  chmodSync(`${dir}/vmadm`, 0o755);
  return {
    restore: (flags: string[], env: Record<string, string>) =>
      run('/usr/bin/env', [
        '-i',
        `PATH=${dir}:/usr/sbin:/usr/bin`,
        'HOME=/root',
        `ZONECOPY_CONFIG=${config.path}`,
        // the test object store's credentials, as harness.zonecopy passes them
        ...Object.entries(process.env)
          .filter(([key]) => key.startsWith('AWS_'))
          .map(([key, value]) => `${key}=${value}`),
        ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        `${PROJECT}/bin/zonecopy`,
        'restore',
        uuid,
        ...flags,
      ]),
    remove: () => sh(`rm -rf ${dir}`),
  };
}
