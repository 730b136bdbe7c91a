import { MbufferStrategy } from './mbuffer.js';
import { SshStrategy } from './ssh.js';
import type { StrategyName, StrategyOptions, TransferStrategy } from './strategy.js';

export function createStrategy(name: StrategyName, options: StrategyOptions): TransferStrategy {
  switch (name) {
    case 'ssh':
    case 'ssh_gzip':
      return new SshStrategy(name, options);
    case 'mbuffer':
    case 'mbuffer_gzip':
      return new MbufferStrategy(name, options);
  }
}
