import { describePipeline } from '../host/host.js';
import { pipelineLine, type Argv } from '../host/quote.js';
import { opensshArgv } from './openssh.js';
import { pump } from './pump.js';
import type { StrategyOptions, TransferResult, TransferStrategy } from './strategy.js';

/**
 * `ssh`: the stream goes to `zfs receive` on the backup host over SSH: an OpenSSH client child by
 * default (the fastest path bench/ measures), or a channel of the run's ssh2 connection.
 * `ssh_gzip`: the same with compressionCmd after `zfs send` and decompressionCmd before receive.
 */
export class SshStrategy implements TransferStrategy {
  constructor(
    readonly name: 'ssh' | 'ssh_gzip',
    private readonly options: StrategyOptions,
  ) {}

  private pipelines(send: Argv, receive: Argv): { local: Argv[]; remote: Argv[] } {
    if (this.name === 'ssh') return { local: [send], remote: [receive] };
    return { local: [send, this.options.compress], remote: [this.options.decompress, receive] };
  }

  async transfer(send: Argv, receive: Argv): Promise<TransferResult> {
    const { local, remote } = this.pipelines(send, receive);
    const sink = this.options.bulk === 'openssh'
      ? this.options.local.spawn([opensshArgv(this.options.openssh, pipelineLine(remote))])
      : this.options.remote.spawn(remote);
    const source = this.options.local.spawn(local);
    source.stdin.end();
    return pump(source, sink, `\`${describePipeline(local)}\` to ${this.options.remote.label}`);
  }

  describe(send: Argv, receive: Argv): string {
    const { local, remote } = this.pipelines(send, receive);
    return `${describePipeline(local)} | ssh ${this.options.remote.label} '${describePipeline(remote)}'`;
  }
}
