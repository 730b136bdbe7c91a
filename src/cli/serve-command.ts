import { ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { LocalHost } from '../host/local.js';
import type { Log } from '../log.js';
import { listenMetrics, renderMetrics, writeTextfile } from '../service/metrics.js';
import { Service } from '../service/service.js';
import { readServiceState, writeStateFile } from '../service/state-file.js';
import type { TransferState } from '../service/state.js';
import { activeStreams } from '../transfer/progress.js';
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from './exit-codes.js';
import { defaultConfigPath } from './paths.js';

export interface ServeFlags {
  config?: string;
  metricsListen?: string;
  once?: boolean;
  verbose?: boolean;
}

/** The service log (stderr, which SMF keeps in the service's log file): each line with its UTC time. */
function serviceLog(verbose: boolean): Log {
  const line = (text: string) => process.stderr.write(`${new Date().toISOString()} ${text}\n`);
  return {
    info: line,
    verbose: (m) => {
      if (verbose) line(m);
    },
    warn: (m) => line(`warning: ${m}`),
  };
}

function transfersNow(): TransferState[] {
  return activeStreams().map((s) => ({
    uuid: s.uuid ?? '',
    dataset: s.dataset,
    target: s.target,
    startedAt: Math.round(s.startedAt / 1000),
    bytes: s.bytes,
    ...(s.estimatedBytes !== undefined && { estimatedBytes: s.estimatedBytes }),
  }));
}

function loadServiceConfig(path: string): Config {
  const config = loadConfig(path);
  if (!config.policies?.length)
    throw new ConfigError(
      `${path}: no "policies": serve needs at least one, e.g. { "name": "nightly", "vms": { "all": true }, "schedule": "0 3 * * *", "group": "daily" } (src/config/README.md, Service)`,
    );
  return config;
}

/**
 * `zonecopy serve`: runs until SIGTERM (or SIGINT); SIGHUP reloads the configuration. `--once` runs
 * every policy once and exits 0 when every VM succeeded, else 1.
 */
export async function serveCommand(flags: ServeFlags): Promise<number> {
  const log = serviceLog(Boolean(flags.verbose));
  const configPath = flags.config ?? defaultConfigPath();
  let config: Config;
  try {
    config = loadServiceConfig(configPath);
  } catch (error) {
    if (error instanceof ConfigError) {
      log.info(`zonecopy: ${error.message}`);
      return EXIT_USAGE;
    }
    throw error;
  }
  const local = new LocalHost(false, (line) => log.info(line));
  // what the last run left: each VM's newest snapshot on each target, so its RPO lag is known before its first cycle ends
  const previous = await readServiceState(config.serviceStateFile);
  if ('error' in previous && !previous.missing)
    log.warn(`${previous.error}; the RPO lag of each VM is known again after its first success`);
  let textfileBusy = false;
  const service: Service = new Service(config, {
    configPath,
    load: loadServiceConfig,
    local,
    log,
    transfers: transfersNow,
    write: writeStateFile,
    agentCommand: [process.execPath, process.argv[1]!],
    ...('state' in previous && { previous: previous.state }),
    onWrite: (state) => {
      state.connects = service?.connects ?? 0;
      const path = service?.configNow.metricsTextfile;
      if (!path || textfileBusy) return;
      textfileBusy = true;
      writeTextfile(path, renderMetrics(state, Date.now() / 1000))
        .catch((error: Error) => log.warn(`cannot write the metrics textfile ${path}: ${error.message}`))
        .finally(() => {
          textfileBusy = false;
        });
    },
  });

  const address = flags.metricsListen ?? config.metricsListen;
  let metrics: { port: number; close(): Promise<void> } | undefined;
  if (address) {
    try {
      metrics = await listenMetrics(address, () => renderMetrics(service.state, Date.now() / 1000));
      log.info(`metrics on http://${address.replace(/:\d+$/, `:${metrics.port}`)}/metrics`);
    } catch (error) {
      log.info(`zonecopy: cannot serve metrics on ${address}: ${(error as Error).message}`);
      return EXIT_USAGE;
    }
  }

  if (flags.once) {
    try {
      return (await service.once()) ? EXIT_OK : EXIT_FAILED;
    } finally {
      await service.stop();
      await metrics?.close();
    }
  }

  log.info(
    `serving ${service.policies.map((p) => `${p.name} (${p.every ? `every ${p.every}` : p.schedule})`).join(', ')}; state in ${service.stateFile} (pid ${process.pid})`,
  );
  return new Promise<number>((resolve) => {
    let stopping = false;
    const hangup = () => service.reload();
    const terminate = (signal: string) => {
      if (stopping) {
        // a second signal: leave what runs (every receive is resumable; the next start resumes it)
        log.info(`${signal} again: exiting now, interrupted streams are resumed by the next start`);
        process.exit(EXIT_OK);
      }
      stopping = true;
      log.info(`${signal}: no new cycles; stopping once the running ones end`);
      void service
        .stop()
        .then(() => metrics?.close())
        .catch((error: Error) => log.warn(`while stopping: ${error.message}`))
        .finally(() => {
          process.off('SIGHUP', hangup);
          process.off('SIGTERM', onTerm);
          process.off('SIGINT', onInt);
          log.info('stopped');
          resolve(EXIT_OK);
        });
    };
    const onTerm = () => terminate('SIGTERM');
    const onInt = () => terminate('SIGINT');
    process.on('SIGHUP', hangup);
    process.on('SIGTERM', onTerm);
    process.on('SIGINT', onInt);
    service.start();
  });
}
