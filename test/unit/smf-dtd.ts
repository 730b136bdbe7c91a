/**
 * Validation of an SMF manifest against illumos' service_bundle DTD with xmllint: the platform's own
 * copy where it exists (an illumos host), else the cited subset in test/smf.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT } from './illumos-stand-in.js';

const PLATFORM_DTD = '/usr/share/lib/xml/dtd/service_bundle.dtd.1';
export const SERVICE_BUNDLE_DTD = existsSync(PLATFORM_DTD) ? PLATFORM_DTD : join(PROJECT, 'test/smf/service_bundle.subset.dtd');

/** xmllint's verdict: exit status and what it said (validity errors only; its warnings are dropped). */
export function xmllint(manifest: string): { code: number | null; errors: string } {
  const out = spawnSync('xmllint', ['--noout', '--nonet', '--dtdvalid', SERVICE_BUNDLE_DTD, manifest], { encoding: 'utf8' });
  if (out.error) throw new Error(`xmllint: ${out.error.message} (Debian package libxml2-utils; .ci/run installs it)`);
  const errors = out.stderr.split('\n').filter((line) => / (validity )?error ?:/.test(line)).join('\n');
  return { code: out.status, errors };
}

export function validateManifest(manifest: string): void {
  const verdict = xmllint(manifest);
  assert.equal(verdict.code, 0, `${manifest} does not validate against ${SERVICE_BUNDLE_DTD}:\n${verdict.errors}`);
}
