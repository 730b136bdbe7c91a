import { openTarget, type OpenedTarget, type TargetOptions } from '../backup/open-targets.js';
import type { ResolvedTarget } from '../config/targets.js';
import { UnreachableError, type RemoteHost } from '../host/remote.js';
import { backupHostLabel, connectBackupHost } from '../cli/session.js';

/**
 * The service's connections, kept across cycles: one SSH connection per backup host, shared by every
 * policy's targets on it (each policy has its own hold tag and retention, so its own Target), opened
 * again when it dropped. A set of targets in use by a cycle is closed only when that cycle is done.
 */
export interface TargetLease {
  opened: readonly OpenedTarget[];
  release: () => Promise<void>;
}

interface OpenSet {
  key: string;
  opened: OpenedTarget[];
  users: number;
  stale: boolean;
}

interface Connection {
  host: RemoteHost;
  /** The configuration it was made with: a reload that changes it connects again. */
  endpoint: string;
}

export class Connections {
  private readonly connections = new Map<string, Connection>();
  private readonly sets = new Map<string, OpenSet>();
  private retired: OpenSet[] = [];
  private retiredHosts: RemoteHost[] = [];
  /** Connections made, for the state file and tests (the first one and every reconnect). */
  connects = 0;
  /** Openings one at a time, so two policies firing together share one new connection. */
  private opening: Promise<unknown> = Promise.resolve();

  /**
   * The targets for one policy's cycle: the open ones again while their connection is up and they
   * opened without error; otherwise opened anew (a target that failed is tried again every cycle).
   */
  async lease(key: string, targets: readonly ResolvedTarget[], options: TargetOptions): Promise<TargetLease> {
    let set = this.sets.get(key);
    if (set && (set.stale || set.opened.some((o) => o.error !== undefined || o.remote?.closed))) {
      this.retire(set);
      set = undefined;
    }
    if (!set) {
      const opening = this.opening.then(() => Promise.all(targets.map((t) => this.open(t, options))));
      this.opening = opening.catch(() => undefined);
      const opened = await opening;
      set = { key, opened, users: 0, stale: false };
      // another cycle of this key may have opened one meanwhile: keep the newest, retire the other
      const other = this.sets.get(key);
      if (other) this.retire(other);
      this.sets.set(key, set);
    }
    const leased = set;
    leased.users += 1;
    return {
      opened: leased.opened,
      release: async () => {
        leased.users -= 1;
        await this.sweep();
      },
    };
  }

  /** A reload: every target is opened again at its next cycle (connections to unchanged hosts are kept). */
  invalidate(): void {
    for (const set of this.sets.values()) set.stale = true;
  }

  /** Closes everything (SIGTERM, after the last cycle). */
  async closeAll(): Promise<void> {
    for (const set of this.sets.values()) this.retire(set);
    await this.sweep(true);
    for (const { host } of this.connections.values()) await host.close();
    for (const host of this.retiredHosts) await host.close();
    this.connections.clear();
  }

  private async open(target: ResolvedTarget, options: TargetOptions): Promise<OpenedTarget> {
    if (target.type !== 'ssh' || options.local.dryRun) return openTarget(target, options);
    const endpoint = JSON.stringify([
      target.config.backupDestination,
      target.config.backupDestinationPort,
      target.config.backupDestinationUsername,
      target.config.backupDestinationPrivateKeyPath,
      target.config.knownHostsPath,
    ]);
    let connection = this.connections.get(target.name);
    if (connection && (connection.host.closed || connection.endpoint !== endpoint)) {
      // sets still using it finish on it; it is closed once they are done
      this.retiredHosts.push(connection.host);
      this.connections.delete(target.name);
      connection = undefined;
    }
    if (!connection) {
      try {
        const host = await connectBackupHost(target.config, { dryRun: false, print: options.print });
        this.connects += 1;
        connection = { host, endpoint };
        this.connections.set(target.name, connection);
      } catch (error) {
        const down = error instanceof UnreachableError;
        const nothing = async () => undefined;
        return {
          name: target.name,
          config: target.config,
          label: backupHostLabel(target.config),
          error: (error as Error).message,
          down,
          close: nothing,
        };
      }
    }
    return openTarget(target, { ...options, connection: connection.host });
  }

  private retire(set: OpenSet): void {
    set.stale = true;
    if (this.sets.get(set.key) === set) this.sets.delete(set.key);
    if (!this.retired.includes(set)) this.retired.push(set);
  }

  private async sweep(all = false): Promise<void> {
    const idle = this.retired.filter((set) => all || set.users === 0);
    this.retired = this.retired.filter((set) => !idle.includes(set));
    for (const set of idle) for (const o of set.opened) await o.close().catch(() => undefined);
    const inUse = new Set(
      [...this.sets.values(), ...this.retired].flatMap((s) => s.opened.flatMap((o) => (o.remote ? [o.remote] : []))),
    );
    const unused = this.retiredHosts.filter((host) => all || !inUse.has(host));
    this.retiredHosts = this.retiredHosts.filter((host) => !unused.includes(host));
    for (const host of unused) await host.close();
  }
}
