/** packaging/zonecopy-cron.xml and zonecopy-serve.xml are manifests svccfg import accepts: valid against the service_bundle DTD. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PROJECT } from './illumos-stand-in.js';
import { NO_DTD, validateManifest, xmllint } from './smf-dtd.js';

const MANIFEST = join(PROJECT, 'packaging/zonecopy-cron.xml');
const SERVE_MANIFEST = join(PROJECT, 'packaging/zonecopy-serve.xml');

describe('SMF manifest', () => {
  for (const manifest of [MANIFEST, SERVE_MANIFEST]) {
    it(
      `packaging/${manifest.split('/').pop()} validates against service_bundle.dtd.1 (xmllint --dtdvalid)`,
      { skip: NO_DTD },
      () => {
        validateManifest(manifest);
      },
    );
  }

  it('the serve manifest is installed disabled, backgrounds serve, reloads by SIGHUP to zonecopy alone, stops by SIGTERM', () => {
    const xml = readFileSync(SERVE_MANIFEST, 'utf8');
    assert.match(xml, /<service name="site\/zonecopy" type="service"/);
    assert.match(xml, /<create_default_instance enabled="false"\/>/);
    // a contract service: the start method returns, the service runs on in the background
    assert.match(xml, /name="start" exec="@PREFIX@\/bin\/zonecopy serve &amp;"/);
    // refresh signals only the oldest process of the contract (zonecopy), never its zfs and ssh children
    assert.match(xml, /name="refresh" exec="\/usr\/bin\/pkill -HUP -o -c /);
    assert.match(xml, /name="stop" exec=":kill"/);
    assert.match(xml, /name="ZONECOPY_CONFIG" value="@PREFIX@\/configuration.json"/);
    // the element order the DTD demands (service: dependency*, method_context?, exec_method*, property_group*, stability?, template?)
    const order = ['<dependency ', '<method_context', '<exec_method', '<property_group', '<stability', '<template>'];
    const at = order.map((tag) => xml.indexOf(tag));
    assert.ok(
      at.every((i) => i > 0),
      `missing one of ${order.join(' ')}`,
    );
    assert.deepEqual(
      [...at].sort((a, b) => a - b),
      at,
      'elements out of the DTD order',
    );
  });

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
