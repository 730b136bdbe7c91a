import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The installation root: the parent of the folder holding the running script (dist/ in a
 * checkout, lib/ in /opt/zonecopy). configuration.json lives there, as with smartcopy.
 */
export function installRoot(): string {
  return dirname(dirname(fileURLToPath(import.meta.url)));
}

export function defaultConfigPath(): string {
  return process.env.ZONECOPY_CONFIG ?? join(installRoot(), 'configuration.json');
}
