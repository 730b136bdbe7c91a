/**
 * Drive the test guest by hand:  node build/test/guest/cli.js start|setup|sh 'script'|stop [--instance NAME]
 * `start` boots it (building the image first if needed) and sets up the two hosts; `sh` runs a
 * bash script in it and prints the output; `stop` powers it off.
 */
import { Guest } from './vm.js';

const args = process.argv.slice(2);
const at = args.indexOf('--instance');
const instance = at >= 0 ? args.splice(at, 2)[1] : undefined;
const [command, ...rest] = args;
const log = (line: string) => process.stderr.write(`${line}\n`);

async function main(): Promise<number> {
  switch (command) {
    case 'start': {
      const guest = await Guest.start({ instance, log });
      log(await guest.setupHosts());
      await guest.host.close();
      return 0;
    }
    case 'setup':
    case 'reset': {
      const guest = await Guest.attach(instance);
      log(await guest.setupHosts(command === 'reset' ? 'reset' : 'setup'));
      await guest.host.close();
      return 0;
    }
    case 'sh': {
      const guest = await Guest.attach(instance);
      const code = await guest.stream(rest.join(' '));
      await guest.host.close();
      return code;
    }
    case 'stop': {
      await (await Guest.attach(instance)).stop();
      return 0;
    }
    default:
      log('usage: node build/test/guest/cli.js start|setup|reset|sh SCRIPT|stop [--instance NAME]');
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    log(error.message);
    process.exit(1);
  },
);
