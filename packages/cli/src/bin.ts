import { Command, CommanderError, Option } from 'commander';
import { pino } from 'pino';
import { createRootLogger, isMdError } from '@metrics-distributor/core';
import { buildConfig, OPTIONS, readConfigFile, type ServerConfig } from './config.js';
import { runCheckConfig } from './commands/check-config.js';
import { runTap } from './commands/tap.js';
import { LevelControl, reloadConfig } from './reload.js';
import { runTop } from './commands/top.js';
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

/**
 * `tap` and `top` talk to a running server's admin listener. They get a program of their own: the
 * server's program has no operands, and commander would show help for it if it had subcommands.
 */
function buildClientProgram(name: 'tap' | 'top'): Command {
  const program = new Command(`metrics-distributor ${name}`)
    .option('--admin <url>', 'the server\'s admin listener (default http://127.0.0.1:8126)')
    .option('--admin-auth <user:pass>', 'HTTP Basic credential of the admin listener')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  if (name === 'tap') {
    program
      .description('Print the samples a running server parses, sampled and rate-limited by the server, one line each.')
      .option('--match <glob>', 'only metric names matching this glob (* and ?)')
      .option('--type <list>', 'only these types, comma list of c,g,s,h,ms,d')
      .option('--rate <n>', 'samples per second at most (default 100, the server allows 1000)');
  } else {
    program.description('A terminal view of a running server, refreshed every second: rates, drops, sinks, top metric names.').option('--once', 'print one view and exit');
  }
  return program;
}

async function runClient(name: 'tap' | 'top'): Promise<void> {
  const program = buildClientProgram(name);
  try {
    program.parse(process.argv.slice(3), { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
    throw err;
  }
  const opts = program.opts<Record<string, string | boolean | undefined>>();
  const common = { ...(typeof opts['admin'] === 'string' ? { admin: opts['admin'] } : {}), ...(typeof opts['adminAuth'] === 'string' ? { adminAuth: opts['adminAuth'] } : {}) };
  const code =
    name === 'tap'
      ? await runTap({ ...common, ...(typeof opts['match'] === 'string' ? { match: opts['match'] } : {}), ...(typeof opts['type'] === 'string' ? { type: opts['type'] } : {}), ...(typeof opts['rate'] === 'string' ? { rate: opts['rate'] } : {}) })
      : await runTop({ ...common, once: opts['once'] === true });
  process.exit(code);
}

async function main(): Promise<void> {
  const sub = process.argv[2];
  if (sub === 'tap' || sub === 'top') return runClient(sub);
  if (sub === 'check-config') {
    const file = process.argv[3];
    if (file === undefined || process.argv.length > 4) usageError('usage: metrics-distributor check-config <file>');
    process.exit(runCheckConfig(file));
  }
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
  const levels = new LevelControl();
  const logger = createRootLogger({ level: config.logLevel, destination: pino.destination({ fd: 2, sync: true }), onChild: levels.onChild });
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
  // SIGHUP re-reads the config file (without one, the flags: certificates are re-read from their files).
  const configPath = typeof flags['config'] === 'string' ? flags['config'] : undefined;
  process.on('SIGHUP', () => {
    if (signals > 0) return;
    logger.info({ configPath }, 'SIGHUP: reloading the config.');
    const result = reloadConfig(config, { configPath, fromFlags, server, logger, levels, stats: server.stats });
    if (result.ok) config = result.config;
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`metrics-distributor: fatal: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
