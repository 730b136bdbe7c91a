import type { Host } from '../host/host.js';

/** The guid of a snapshot (or dataset) on `host`; empty when it does not exist. */
export async function guidOf(host: Host, snapshot: string): Promise<string> {
  const result = await host.run(['zfs', 'get', '-Hp', '-o', 'value', 'guid', snapshot], {
    mutates: false,
    allowExitCodes: [1],
  });
  return result.stdout.trim();
}
