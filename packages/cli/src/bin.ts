import { Command, CommanderError, Option } from 'commander';
import { pino } from 'pino';
import { createRootLogger, isMdError } from '@metrics-distributor/core';
import { buildConfig, OPTIONS, readConfigFile, type ServerConfig } from './config.js';
import { startServer } from './server.js';
import { isUdpWorker, runUdpWorker } from './workers.js';

const EXIT_USAGE = 2;

function usageError(msg: string): never {
  process.stderr.write(`metrics-distributor: ${msg}\n`);
  process.exit(EXIT_USAGE);
}

function buildProgram(): Command {
  const program = new Command('metrics-distributor')
    .description('Multi-protocol metrics ingest server: StatsD/DogStatsD in, windowed aggregates out.')
    .option('--config <file>', 'JSON or YAML config file; keys are the camelCase option names, or the Datadog agent\'s for the transform options')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .showHelpAfterError(false);
  for (const opt of OPTIONS) {
    if (opt.flag === undefined) continue;
    const o = new Option(opt.arg !== undefined ? `${opt.flag} ${opt.arg}` : opt.flag, opt.description);
    if (opt.repeatable === true) o.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    program.addOption(o);
  }
  return program;
}

async function main(): Promise<void> {
  if (isUdpWorker()) {
    const cfg = JSON.parse(process.env['METRICS_DISTRIBUTOR_WORKER_CONFIG'] ?? '{}') as { logLevel?: string };
    const root = createRootLogger({ level: cfg.logLevel ?? 'info', destination: pino.destination({ fd: 2, sync: true }) });
    await runUdpWorker(root.child({ workerPid: process.pid }));
    return;
  }
  const program = buildProgram();
  try {
    program.parse(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    }
    throw err;
  }
  const flags = program.opts<Record<string, unknown>>();
  const fromFlags: Partial<Record<keyof ServerConfig, unknown>> = {};
  for (const opt of OPTIONS) {
    if (opt.flag === undefined) continue;
    const attr = program.options.find((o) => o.long === opt.flag)?.attributeName();
    if (attr !== undefined && flags[attr] !== undefined) fromFlags[opt.key] = flags[attr];
  }
  let config: ServerConfig;
  try {
    const configPath = flags['config'];
    const fromFile = typeof configPath === 'string' ? readConfigFile(configPath) : {};
    config = buildConfig(fromFile, fromFlags, typeof configPath === 'string' ? configPath : 'config file');
  } catch (err) {
    if (isMdError(err)) usageError(err.message);
    throw err;
  }

  // Synchronous stderr so the last lines before exit are never lost; logging is rare by design.
  const logger = createRootLogger({ level: config.logLevel, destination: pino.destination({ fd: 2, sync: true }) });
  let server;
  try {
    server = await startServer(config, { logger });
  } catch (err) {
    if (isMdError(err) && err.code.startsWith('MD_ERR_CONFIG')) usageError(err.message);
    logger.fatal({ err }, 'Start-up failed.');
    process.exit(1);
  }

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'Second signal; exiting without waiting for sinks.');
      process.exit(1);
    }
    logger.info({ signal, shutdownTimeoutMs: config.shutdownTimeoutMs }, 'Shutting down: flushing the open window.');
    server.close().then(
      () => {
        logger.info('Shutdown complete.');
        process.exitCode = 0;
        // Anything still holding the loop open (a hung sink socket) must not keep us past the deadline.
        setTimeout(() => process.exit(0), 1000).unref();
      },
      (err: unknown) => {
        logger.error({ err }, 'Shutdown failed.');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((err: unknown) => {
  process.stderr.write(`metrics-distributor: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
