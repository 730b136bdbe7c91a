import type { Host } from './host.js';

const KERNELS = new WeakMap<Host, Promise<string>>();

/**
 * The host's `uname -s` (`SunOS` on illumos, `Linux`, `FreeBSD`), asked once per Host and so once
 * per run. A host that cannot say counts as `unknown`: what depends on it is speed, never safety.
 */
export function kernelName(host: Host): Promise<string> {
  let known = KERNELS.get(host);
  if (!known) {
    known = host.run(['uname', '-s'], { mutates: false }).then(
      (out) => out.stdout.trim() || 'unknown',
      () => 'unknown',
    );
    KERNELS.set(host, known);
  }
  return known;
}
