/** Simulated `zonecfg -z <uuid> export`. */
import { POOL, readRecord, zonepath } from './host.js';

const args = process.argv.slice(2);
const zone = args[args.indexOf('-z') + 1];
const record = args.includes('-z') && zone ? readRecord(zone) : undefined;
if (!record || !args.includes('export')) {
  process.stderr.write(`${zone ?? ''}: No such zone configured\n`);
  process.exitCode = 1;
} else {
  const lines = [
    'create -b',
    `set zonepath=${zonepath(record.uuid)}`,
    `set brand=${record.brand}`,
    `set autoboot=${record.autoboot}`,
    'set ip-type=exclusive',
  ];
  if (record.delegated) lines.push('add dataset', `set name=${POOL}/${record.uuid}/data`, 'end');
  if (record.alias !== undefined)
    lines.push(
      'add attr',
      'set name=alias',
      'set type=string',
      `set value="${Buffer.from(String(record.alias)).toString('base64')}"`,
      'end',
    );
  lines.push(
    'add attr',
    'set name=create-timestamp',
    'set type=string',
    `set value="${String(record.create_timestamp)}"`,
    'end',
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}
