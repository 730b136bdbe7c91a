/** Simulated `imgadm` list / get / import over the catalog in images.ts. */
import { readFileSync } from 'node:fs';
import { CATALOG, ImgadmError, importImage, installImage, installedImages, installedManifest } from './images.js';
import { POOL } from './host.js';

function main(argv: string[]): number {
  const [command, ...args] = argv;
  const uuid = args.find((a) => !a.startsWith('-'));
  switch (command) {
    case 'list': {
      const images = installedImages();
      if (args.includes('-j')) {
        process.stdout.write(
          `${JSON.stringify(
            images.map((manifest) => ({ manifest, zpool: POOL, source: 'https://images.smartos.org' })),
            null,
            2,
          )}\n`,
        );
        return 0;
      }
      const rows = [
        ['UUID', 'NAME', 'VERSION', 'OS', 'TYPE', 'PUB'],
        ...images.map((m) => [m.uuid, m.name, m.version, m.os, m.type, m.published_at.slice(0, 10)]),
      ];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const r of rows)
        process.stdout.write(
          `${r
            .map((c, i) => c.padEnd(widths[i]!))
            .join('  ')
            .trimEnd()}\n`,
        );
      return 0;
    }
    case 'get': {
      const manifest = uuid ? installedManifest(uuid) : undefined;
      if (!manifest) {
        process.stderr.write(
          `imgadm get: error (ImageNotInstalled): image "${uuid}" was not found on zpool "${POOL}"\n`,
        );
        return 3;
      }
      process.stdout.write(
        `${JSON.stringify({ manifest, zpool: POOL, source: 'https://images.smartos.org' }, null, 2)}\n`,
      );
      return 0;
    }
    case 'import': {
      if (!uuid) {
        process.stderr.write('imgadm import: error (Usage): no image UUID given\n');
        return 1;
      }
      const installed = installedManifest(uuid);
      if (installed) {
        process.stdout.write(`Image ${uuid} (${installed.name}@${installed.version}) is already installed, skipping\n`);
        return 0;
      }
      const entry = CATALOG[uuid];
      if (!entry) {
        process.stderr.write(
          `imgadm import: error (ActiveImageNotFound): an active image "${uuid}" was not found in image sources\n`,
        );
        return 1;
      }
      process.stdout.write(`Importing ${uuid} (${entry.name}@${entry.version}) from "https://images.smartos.org"\n`);
      importImage(uuid);
      process.stdout.write(`Imported image ${uuid} (${entry.name}@${entry.version})\n`);
      return 0;
    }
    case 'install': {
      // imgadm install -m <manifest> -f <file>: an image from a local manifest and zfs stream
      const manifestFile = args[args.indexOf('-m') + 1];
      const file = args[args.indexOf('-f') + 1];
      if (!args.includes('-m') || !args.includes('-f') || !manifestFile || !file) {
        process.stderr.write('imgadm install: error (Usage): -m MANIFEST and -f FILE are required\n');
        return 1;
      }
      const manifest = JSON.parse(readFileSync(manifestFile, 'utf8')) as {
        uuid: string;
        name: string;
        version: string;
      };
      if (installedManifest(manifest.uuid)) {
        process.stdout.write(
          `Image ${manifest.uuid} (${manifest.name}@${manifest.version}) is already installed, skipping\n`,
        );
        return 0;
      }
      process.stdout.write(`Installing image ${manifest.uuid} (${manifest.name}@${manifest.version})\n`);
      try {
        installImage(manifest as never, file);
      } catch (error) {
        if (!(error instanceof ImgadmError)) throw error;
        process.stderr.write(`imgadm install: error (${error.code}): ${error.message}\n`);
        return 1;
      }
      process.stdout.write(
        `Installed image ${manifest.uuid} (${manifest.name}@${manifest.version}) to "${POOL}/${manifest.uuid}".\n`,
      );
      return 0;
    }
    default:
      process.stderr.write('usage: imgadm list [-j] | get <uuid> | import <uuid> | install -m MANIFEST -f FILE\n');
      return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
