/** `npm run demo`: boots the guest (building it once), runs test/guest/demo.sh in it, stops it. */
import { Guest } from './guest/vm.js';

const log = (line: string) => process.stdout.write(`${line}\n`);

async function main(): Promise<number> {
  const guest = await Guest.start({ instance: 'demo', log });
  try {
    log(await guest.setupHosts());
    return await guest.stream('bash /mnt/host/test/guest/demo.sh');
  } finally {
    await guest.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    log(`demo failed: ${error.message}`);
    process.exit(1);
  },
);
