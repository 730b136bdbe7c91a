import type { HookSettings, HooksConfig } from '../config/hooks-schema.js';
import type { VmSpec } from '../smartos/vmadm.js';
import type { AgentCommand } from '../smartos/guest-agent.js';
import { guestAgentSocket } from '../smartos/guest-agent-socket.js';

/**
 * Which hooks run around one VM's snapshot, decided from the config and the VM's own
 * internal_metadata before anything runs. Pure: the runner (hook-run.ts) executes the result.
 */

export type HookKind = 'global' | 'zone' | 'guest-agent';
export type HookPhase = 'pre' | 'post';
export type PreFailureMode = 'fail' | 'crash-consistent';

export interface HookCall {
  phase: HookPhase;
  kind: HookKind;
  /** Where it was set: a config key path or an internal_metadata key. */
  source: string;
  /** What the operator wrote (or the agent command), for reports and the stored record. */
  command: string;
  /** What `--dry-run` prints; the guest agent's command runs in this process instead (see agent). */
  argv: string[];
  timeoutSeconds: number;
  /** A guest-agent hook: sent over the socket from this process, so the guest is not frozen while a second node starts. */
  agent?: { socket: string; command: AgentCommand };
}

export interface HookPlan {
  /** In run order: global, zone, then the freeze, so the guest is frozen for the shortest time. */
  pre: HookCall[];
  /** In run order: thaw first, then zone, then global (the reverse of pre). */
  post: HookCall[];
  onPreFailure: PreFailureMode;
  /** Hooks that could apply but do not, and why (a stopped VM, no agent socket). */
  notes: string[];
}

export const METADATA_PRE = 'zonecopy_pre_snapshot';
export const METADATA_POST = 'zonecopy_post_snapshot';
export const DEFAULT_TIMEOUT_SECONDS = 30;
/** A backup is worth more than none: like zrepl's err_is_fatal=false and Danube's failed freeze. */
export const DEFAULT_PRE_FAILURE: PreFailureMode = 'crash-consistent';

/** A VM whose own hook settings cannot be used: names the VM, the key and what to do. */
export class HookConfigError extends Error {
  override name = 'HookConfigError';
}

export interface HookInput {
  config?: HooksConfig;
  group: string;
  spec: Pick<VmSpec, 'uuid' | 'alias' | 'brand' | 'internal_metadata' | 'zfs_filesystem'> & {
    state?: unknown;
    zonepath?: unknown;
    qemu_extra_opts?: unknown;
  };
  snapshot: string;
  /** argv that starts `zonecopy guest-agent` (node and the CLI script). */
  agentCommand: readonly string[];
}

const HVM = new Set(['kvm', 'bhyve']);

/** The VM's hook settings: `vms.<uuid>` over `groups.<group>` over the top level, key by key. */
export function effectiveSettings(
  config: HooksConfig | undefined,
  group: string,
  uuid: string,
): HookSettings & { sources: Record<string, string> } {
  const levels: Array<[string, HookSettings | undefined]> = [
    ['hooks', config],
    [`hooks.groups.${group}`, config?.groups?.[group]],
    [`hooks.vms.${uuid}`, config?.vms?.[uuid]],
  ];
  const merged: HookSettings = {};
  const sources: Record<string, string> = {};
  for (const [path, level] of levels) {
    for (const key of ['timeoutSeconds', 'onPreFailure', 'zone', 'global', 'guestAgent'] as const) {
      if (level?.[key] === undefined) continue;
      (merged as Record<string, unknown>)[key] = level[key];
      sources[key] = `${path}.${key}`;
    }
  }
  return { ...merged, sources };
}

/** The hooks for one VM's snapshot, or undefined when it has none. Throws HookConfigError for unusable metadata. */
export function selectHooks(input: HookInput): HookPlan | undefined {
  const { spec } = input;
  const settings = effectiveSettings(input.config, input.group, spec.uuid);
  const timeoutSeconds = settings.timeoutSeconds ?? DEFAULT_TIMEOUT_SECONDS;
  const zone = zoneHooks(spec, settings);
  const running = spec.state === undefined || spec.state === 'running';
  const plan: HookPlan = { pre: [], post: [], onPreFailure: settings.onPreFailure ?? DEFAULT_PRE_FAILURE, notes: [] };
  const add = (
    phase: HookPhase,
    kind: HookKind,
    source: string,
    command: string,
    argv: string[],
    agent?: HookCall['agent'],
  ) => plan[phase].push({ phase, kind, source, command, argv, timeoutSeconds, ...(agent ? { agent } : {}) });

  if (settings.global) {
    const env = [
      'env',
      `ZONECOPY_VM_UUID=${spec.uuid}`,
      `ZONECOPY_VM_ALIAS=${spec.alias ?? ''}`,
      `ZONECOPY_VM_BRAND=${spec.brand}`,
      `ZONECOPY_SNAPSHOT=${input.snapshot}`,
    ];
    for (const phase of ['pre', 'post'] as const) {
      const command = settings.global[phase];
      if (command !== undefined)
        add(phase, 'global', `${settings.sources.global}.${phase}`, command, [
          ...env,
          `ZONECOPY_HOOK=${phase}`,
          '/bin/sh',
          '-c',
          command,
        ]);
    }
  }
  if (zone && !running)
    plan.notes.push(
      `in-zone hooks (${zone.source}) not run: the zone is ${String(spec.state)}, and a stopped zone's files are at rest`,
    );
  if (zone && running) {
    for (const phase of ['pre', 'post'] as const) {
      const command = zone[phase];
      // one argv element after the zone name: zlogin joins its arguments and gives them to the zone's shell once (zlogin.c prep_args)
      if (command !== undefined)
        add(
          phase,
          'zone',
          `${zone.source}${zone.source === 'internal_metadata' ? `.${phase === 'pre' ? METADATA_PRE : METADATA_POST}` : `.${phase}`}`,
          command,
          ['zlogin', spec.uuid, command],
        );
    }
  }
  if (settings.guestAgent && spec.brand === 'bhyve')
    plan.notes.push(
      `no guest agent freeze: ${settings.sources.guestAgent} is for KVM, whose qemu_extra_opts can give the guest an agent socket; bhyve has none`,
    );
  if (settings.guestAgent && spec.brand === 'kvm') {
    const socket = guestAgentSocket(spec);
    if (!socket)
      plan.notes.push(
        `no guest agent freeze: ${settings.sources.guestAgent} is true, but qemu_extra_opts configures no org.qemu.guest_agent.0 socket`,
      );
    else if (!running) plan.notes.push(`no guest agent freeze: the VM is ${String(spec.state)}`);
    else {
      add(
        'pre',
        'guest-agent',
        settings.sources.guestAgent!,
        `guest-fsfreeze-freeze (${socket})`,
        [...input.agentCommand, 'guest-agent', socket, 'guest-fsfreeze-freeze'],
        { socket, command: 'guest-fsfreeze-freeze' },
      );
      add(
        'post',
        'guest-agent',
        settings.sources.guestAgent!,
        `guest-fsfreeze-thaw (${socket})`,
        [...input.agentCommand, 'guest-agent', socket, 'guest-fsfreeze-thaw'],
        { socket, command: 'guest-fsfreeze-thaw' },
      );
    }
  }
  plan.post.reverse();
  return plan.pre.length + plan.post.length + plan.notes.length > 0 ? plan : undefined;
}

/** The in-zone pair: the VM's own internal_metadata keys win over the config (its owner knows the application). */
function zoneHooks(
  spec: HookInput['spec'],
  settings: ReturnType<typeof effectiveSettings>,
): { pre?: string; post?: string; source: string } | undefined {
  const metadata = spec.internal_metadata ?? {};
  const pre = metadataCommand(spec, METADATA_PRE, metadata[METADATA_PRE]);
  const post = metadataCommand(spec, METADATA_POST, metadata[METADATA_POST]);
  const hvm = HVM.has(spec.brand);
  if ((pre !== undefined || post !== undefined) && hvm) {
    const key = pre !== undefined ? METADATA_PRE : METADATA_POST;
    throw new HookConfigError(
      `VM ${spec.uuid} (${spec.brand}) has internal_metadata ${key}, but in-zone hooks run with zlogin, which reaches only OS and LX zones, not the guest of a ${spec.brand} VM. ` +
        `Remove it (vmadm update ${spec.uuid} <<< '{"remove_internal_metadata": ["${key}"]}') and use "hooks.guestAgent" (KVM with a guest agent socket) or a "hooks.global" command instead`,
    );
  }
  if (pre !== undefined || post !== undefined) return { pre, post, source: 'internal_metadata' };
  if (settings.zone && !hvm) return { ...settings.zone, source: settings.sources.zone! };
  return undefined;
}

function metadataCommand(spec: Pick<VmSpec, 'uuid'>, key: string, value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.trim() === '') {
    throw new HookConfigError(
      `VM ${spec.uuid}: internal_metadata ${key} must be a command line (a non-empty string run in the zone with zlogin); it is ${JSON.stringify(value)}. ` +
        `Set it with vmadm update ${spec.uuid} <<< '{"set_internal_metadata": {"${key}": "..."}}' or remove it`,
    );
  }
  return value;
}
