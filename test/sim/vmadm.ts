/**
 * Simulated `vmadm` (smartos-live src/vm/sbin/vmadm.js): data on stdout, messages on stderr,
 * exit 0 ok / 1 error / 2 usage; success messages go to stderr too, as the real tool does.
 */
import { readFileSync, readSync } from 'node:fs';
import { allRecords, isUuid, readRecord, removeRecord } from './host.js';
import {
  createSnapshot,
  createVm,
  deleteVm,
  rollbackSnapshot,
  startVm,
  stopVm,
  updateVm,
  vmSnapshots,
  VmadmError,
} from './vm-lifecycle.js';
import { checkOrderFields, formatTable, matches, parseFilters, sortObjects } from './vm-list.js';
import { prefetchVmObjects, vmObject, withFakeFields } from './vm-object.js';

const USAGE = `Usage: vmadm <command> [options]

    create [-f <filename>]
    create-snapshot <uuid> <snapname>
    delete <uuid>
    get <uuid>
    list [-p] [-H] [-o field,...] [-s field,...] [field=value ...]
    lookup [-j|-1] [-o field,...] [field=value ...]
    rollback-snapshot <uuid> <snapname>
    start <uuid>
    stop <uuid> [-F] [-t timeout]
    update <uuid> [-f <filename>]
     -or- update <uuid> property=value [property=value ...]
`;

class UsageError extends Error {}

function takeOption(args: string[], flag: string): string | undefined {
  const i = args.indexOf(flag);
  if (i < 0) return undefined;
  const [, value] = args.splice(i, 2);
  return value;
}

function takeFlag(args: string[], flag: string): boolean {
  const i = args.indexOf(flag);
  if (i >= 0) args.splice(i, 1);
  return i >= 0;
}

function uuidArg(args: string[], command: string): string {
  const uuid = args.find((a) => !a.startsWith('-'));
  if (!isUuid(uuid)) throw new UsageError(`Invalid or missing UUID for ${command}`);
  return uuid;
}

/** fd 0 may be a non-blocking pipe or a socket; read it to the end either way. */
function readStdin(): string {
  const chunks: Buffer[] = [];
  const buffer = Buffer.alloc(1 << 16);
  for (;;) {
    try {
      const n = readSync(0, buffer);
      if (n === 0) break;
      chunks.push(Buffer.from(buffer.subarray(0, n)));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EOF') break;
      if (code !== 'EAGAIN') throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
  return Buffer.concat(chunks).toString('utf8');
}

function readPayload(args: string[]): Record<string, unknown> {
  const file = takeOption(args, '-f');
  let text: string;
  if (file) text = readFileSync(file, 'utf8');
  else if (process.stdin.isTTY) throw new UsageError('Will not create from stdin when stdin is a tty.');
  else text = readStdin();
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new VmadmError(`Invalid JSON payload: ${(error as Error).message}`);
  }
}

function main(argv: string[]): number {
  const [command, ...args] = argv;
  const out = (s: string) => process.stdout.write(s);
  const err = (s: string) => process.stderr.write(`${s}\n`);
  try {
    switch (command) {
      case 'get':
      case 'json': {
        const uuid = uuidArg(args, command);
        const record = readRecord(uuid);
        if (!record) throw new VmadmError(`zoneadm: ${uuid}: No such zone configured`);
        prefetchVmObjects([record], true);
        out(`${JSON.stringify({ ...vmObject(record), snapshots: vmSnapshots(record) }, null, 2)}\n`);
        return 0;
      }
      case 'list': {
        const parsable = takeFlag(args, '-p');
        const noHeader = takeFlag(args, '-H');
        const fields = (takeOption(args, '-o') ?? 'uuid,type,ram,state,alias').split(',');
        const sort = (takeOption(args, '-s') ?? 'ram,uuid').split(',');
        checkOrderFields(fields);
        const filters = parseFilters(args, (k) => `Invalid filter key: "${k}"`);
        const records = allRecords();
        prefetchVmObjects(records);
        const objects = records.map((r) => withFakeFields(vmObject(r))).filter((o) => matches(o, filters));
        sortObjects(objects, sort);
        out(formatTable(objects, fields, { parsable, header: !parsable && !noHeader }));
        return 0;
      }
      case 'lookup': {
        const json = takeFlag(args, '-j');
        const unique = takeFlag(args, '-1');
        const fields = takeOption(args, '-o')?.split(',');
        if (fields && !json) throw new VmadmError('Cannot specify -o without -j');
        const filters = parseFilters(args, (k) => `Invalid lookup key: "${k}"`);
        const records = allRecords();
        prefetchVmObjects(records);
        const found = records.map((r) => withFakeFields(vmObject(r))).filter((o) => matches(o, filters));
        if (unique && found.length !== 1)
          throw new VmadmError(`Requested unique lookup but found ${found.length} results.`);
        if (json) {
          const shaped = fields
            ? found.map((o) => Object.fromEntries(fields.filter((f) => f in o).map((f) => [f, o[f]])))
            : found;
          out(`${JSON.stringify(shaped, null, 2)}\n`);
        } else {
          for (const o of found) out(`${String(o.uuid)}\n`);
        }
        return 0;
      }
      case 'create': {
        const uuid = createVm(readPayload(args));
        err(`Successfully created VM ${uuid}`);
        return 0;
      }
      case 'create-snapshot':
      case 'rollback-snapshot': {
        const [uuid, snapname, ...extra] = args;
        if (!isUuid(uuid) || snapname === undefined || extra.length > 0)
          throw new UsageError(`Wrong number of parameters to "${command}"`);
        const record = readRecord(uuid);
        if (!record) throw new VmadmError(`VM ${uuid} not found`);
        err(command === 'create-snapshot' ? createSnapshot(record, snapname) : rollbackSnapshot(record, snapname));
        return 0;
      }
      case 'start':
      case 'boot':
      case 'stop':
      case 'halt':
      case 'delete':
      case 'destroy':
      case 'update': {
        const uuid = uuidArg(args, command);
        const record = readRecord(uuid);
        if (!record) {
          if (command === 'start' || command === 'boot')
            throw new VmadmError(`Unable to start VM ${uuid}: bad statusCode: 404`);
          if (command === 'delete' || command === 'destroy')
            throw new VmadmError(`Failed to delete VM ${uuid}: VM ${uuid} not found`);
          throw new VmadmError(`VM ${uuid} not found`);
        }
        if (command === 'start' || command === 'boot') err(startVm(record));
        else if (command === 'stop' || command === 'halt') err(stopVm(record));
        else if (command === 'update') {
          const rest = args.filter((a) => a !== uuid);
          const changes =
            rest.length > 0 && !rest.includes('-f')
              ? Object.fromEntries(rest.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
              : readPayload(rest);
          err(updateVm(record, changes));
        } else {
          err(deleteVm(record));
          removeRecord(uuid);
        }
        return 0;
      }
      default:
        throw new UsageError(command ? `Invalid command: "${command}"` : 'Missing command');
    }
  } catch (error) {
    if (error instanceof UsageError) {
      err(error.message);
      process.stderr.write(USAGE);
      return 2;
    }
    err((error as Error).message);
    return error instanceof VmadmError ? error.exitCode : 1;
  }
}

process.exitCode = main(process.argv.slice(2));
