/**
 * Validation of an SMF manifest against illumos' service_bundle DTD with xmllint, where the
 * platform's copy exists (an illumos host). The DTD is not in this repository: it is illumos's
 * file, and no Debian package ships it, so on Linux the tests using it say they are skipped.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const PLATFORM_DTD = '/usr/share/lib/xml/dtd/service_bundle.dtd.1';
export const SERVICE_BUNDLE_DTD = process.env.ZC_SERVICE_BUNDLE_DTD ?? PLATFORM_DTD;
/** Why a DTD check cannot run here, or undefined when it can. */
export const NO_DTD = existsSync(SERVICE_BUNDLE_DTD)
  ? undefined
  : `no ${SERVICE_BUNDLE_DTD} here (an illumos host has it; ZC_SERVICE_BUNDLE_DTD names another copy)`;

/** xmllint's verdict: exit status and what it said (validity errors only; its warnings are dropped). */
export function xmllint(manifest: string): { code: number | null; errors: string } {
  const out = spawnSync('xmllint', ['--noout', '--nonet', '--dtdvalid', SERVICE_BUNDLE_DTD, manifest], {
    encoding: 'utf8',
  });
  if (out.error) throw new Error(`xmllint: ${out.error.message} (Debian package libxml2-utils; .ci/run installs it)`);
  const errors = out.stderr
    .split('\n')
    .filter((line) => / (validity )?error ?:/.test(line))
    .join('\n');
  return { code: out.status, errors };
}

export function validateManifest(manifest: string): void {
  const verdict = xmllint(manifest);
  assert.equal(verdict.code, 0, `${manifest} does not validate against ${SERVICE_BUNDLE_DTD}:\n${verdict.errors}`);
}
