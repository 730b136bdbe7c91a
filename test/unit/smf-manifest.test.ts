/** packaging/zonecopy-cron.xml is a manifest svccfg import accepts: valid against the service_bundle DTD. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PROJECT } from './illumos-stand-in.js';
import { NO_DTD, validateManifest, xmllint } from './smf-dtd.js';

const MANIFEST = join(PROJECT, 'packaging/zonecopy-cron.xml');

describe('SMF manifest', () => {
  it(
    'packaging/zonecopy-cron.xml validates against service_bundle.dtd.1 (xmllint --dtdvalid)',
    { skip: NO_DTD },
    () => {
      validateManifest(MANIFEST);
    },
  );

  it(
    'the DTD check has teeth: an element out of order, an unknown value or a missing attribute fails',
    { skip: NO_DTD },
    (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'zc-smf-'));
      t.after(() => rmSync(dir, { recursive: true, force: true }));
      const xml = readFileSync(MANIFEST, 'utf8');
      const broken = {
        'stability first': xml
          .replace(/\s*<stability value="Unstable"\/>/, '')
          .replace('<single_instance/>', '<single_instance/>\n    <stability value="Unstable"/>'),
        'unknown grouping': xml.replace('grouping="require_all"', 'grouping="all"'),
        'no timeout': xml.replace(/ timeout_seconds="60"/g, ''),
      };
      for (const [name, text] of Object.entries(broken)) {
        assert.notEqual(text, xml, `${name}: the manifest changed, so this case no longer breaks it`);
        const file = join(dir, `${name.replace(/ /g, '-')}.xml`);
        writeFileSync(file, text);
        assert.notEqual(xmllint(file).code, 0, `${name} passed validation`);
      }
    },
  );
});
