import { runStatus, type VmBackupResult } from '../report/types.js';

/** A VM's name in messages, as the reports give it. */
function vmName(vm: { uuid: string; alias?: string }): string {
  return vm.alias ? `${vm.alias} (${vm.uuid})` : vm.uuid;
}

/**
 * One `zonecopy:` line per VM that failed (or partly failed), for stderr: the report on stdout may
 * be piped away or be JSON, and stderr is where a user or cron looks for errors.
 */
export function vmErrorLines(
  what: string,
  vms: ReadonlyArray<{ uuid: string; alias?: string; errors: readonly string[] }>,
): string[] {
  const oneLine = (text: string) => text.trim().replace(/\s*\n\s*/g, ' / ');
  return vms
    .filter((vm) => vm.errors.length > 0)
    .map((vm) => `zonecopy: ${what} of VM ${vmName(vm)}: ${vm.errors.map(oneLine).join('; ')}`);
}

/** A backup result's errors: those of the VM, then each failed dataset's. */
export function backupErrors(result: VmBackupResult): { uuid: string; alias?: string; errors: string[] } {
  if (runStatus(result.errors, result.datasets) === 'success')
    return { uuid: result.uuid, alias: result.alias, errors: [] };
  const datasets = result.datasets
    .filter((d) => d.result === 'failed')
    .map((d) => `${d.dataset}: ${d.error ?? 'failed'}`);
  return { uuid: result.uuid, alias: result.alias, errors: [...result.errors, ...datasets] };
}
