/**
 * Where a KVM VM's QEMU guest agent listens, seen from the global zone. SmartOS itself configures
 * no agent channel (VM.js gives qemu only -qmp, serial0 and serial1); operators add one through
 * `qemu_extra_opts`, as Danube Cloud does (`-chardev socket,path=/tmp/vm.qga,server,nowait,id=qga0
 * -device virtio-serial -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0`). qemu
 * runs chrooted in the zone root, so a path inside it lies under `<zonepath>/root` (VM.js reads
 * vm.qmp as `zonepath + '/root/tmp/vm.qmp'`).
 */

export const GUEST_AGENT_PORT = 'org.qemu.guest_agent.0';

/** `a=1,b=2` after the leading type word of a qemu option value. */
function optionValue(value: string): { type: string; keys: Map<string, string> } {
  const [type = '', ...rest] = value.split(',');
  const keys = new Map<string, string>();
  for (const part of rest) {
    const at = part.indexOf('=');
    if (at > 0) keys.set(part.slice(0, at), part.slice(at + 1));
  }
  return { type, keys };
}

/** The agent socket's path inside the zone (as qemu sees it), or undefined when none is configured. */
export function guestAgentPathInZone(qemuExtraOpts: string): string | undefined {
  const words = qemuExtraOpts.trim().split(/\s+/);
  const chardevs = new Map<string, string>();
  let port: string | undefined;
  for (let i = 0; i + 1 < words.length; i++) {
    const { type, keys } = optionValue(words[i + 1]!);
    if (words[i] === '-chardev' && type === 'socket' && keys.has('id') && keys.has('path'))
      chardevs.set(keys.get('id')!, keys.get('path')!);
    if (words[i] === '-device' && type === 'virtserialport' && keys.get('name') === GUEST_AGENT_PORT)
      port = keys.get('chardev');
  }
  return port === undefined ? undefined : chardevs.get(port);
}

/** The socket as the global zone reaches it, or undefined. */
export function guestAgentSocket(spec: {
  zfs_filesystem: string;
  zonepath?: unknown;
  qemu_extra_opts?: unknown;
}): string | undefined {
  if (typeof spec.qemu_extra_opts !== 'string') return undefined;
  const inZone = guestAgentPathInZone(spec.qemu_extra_opts);
  if (!inZone || !inZone.startsWith('/')) return undefined;
  const zonepath = typeof spec.zonepath === 'string' ? spec.zonepath : `/${spec.zfs_filesystem}`;
  return `${zonepath}/root${inZone}`;
}
