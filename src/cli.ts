#!/usr/bin/env node
/**
 * `audio-convert`: argv → command. The only file that reads process.env for the app, installs
 * signal handlers and calls process.exit. Exit codes: 0 ok, 1 runtime failure, 2 usage/config error.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_CONFIG_FILE, loadConfig, redactedConfig, secretsOf, configFileWarnings, type Config } from './config.js';
import { ConfigError, StartupError, errorText } from './errors.js';
import { createLogger } from './log.js';
import { start } from './main.js';
import type { EnqueueArgs } from './tools/enqueue-plan.js';
import { runEnqueue, ENQUEUE_HELP } from './tools/enqueue.js';
import { runDoctor } from './tools/doctor.js';
import { bulkQueueName } from './worker/lanes.js';
import { REDRIVE_HELP, redriveArgs, RedriveUsageError, runRedrive } from './tools/redrive.js';
import { AsteriskEmulator } from './emulator/server.js';
import { followService, systemdNotifier } from './systemd/notify.js';

/** READY=1 at the latest this long after start-up, consuming or not (see followService). */
const READY_AT_THE_LATEST_MS = 20_000;

/** The log line for a SIGHUP: what it did (nothing) and what to do instead. */
const SIGHUP_IGNORED =
  'SIGHUP received and ignored: there is no reload, the config is read at start only; to apply a change: systemctl restart auditorai-transcoding (jobs in flight finish first)';

/** A usage error: printed with a hint, exit code 2. */
class UsageError extends Error {}

const HELP = `audio-convert — Asterisk AMI ↔ RabbitMQ transcoding bridge (GSM → WAV)

Usage:
  audio-convert [run] [--config PATH]          run the service (the default command)
  audio-convert enqueue IN.gsm OUT.wav [--wait] [--config PATH]
  audio-convert enqueue --dir GSM_DIR --out WAV_DIR [--recursive] [--skip-existing] [--dry-run] [--bulk] [--wait] [--config PATH]
  audio-convert redrive [--code CODE]... [--job-id ID]... [--limit N] [--dry-run] [--config PATH]
                                               move dead-lettered jobs back to the input queue
  audio-convert check-config [--config PATH]   validate and print the effective config (secrets redacted)
  audio-convert doctor [--config PATH]         check RabbitMQ, AMI login and the dialplan, with fixes
  audio-convert simulate-asterisk [--port 5038] [--user auditorai] [--secret simulator] [--root DIR] [--instant] [--convert-app]
                                               a local stand-in for Asterisk's AMI (loopback only)
  audio-convert COMMAND --help                 help for one command
  audio-convert --version

Config file: --config, else $AUDIOCONVERT_CONFIG, else ${DEFAULT_CONFIG_FILE}.
Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.
`;

const COMMAND_HELP: Record<string, string> = {
  run: `audio-convert run [--config PATH]

Runs the service: consumes jobs from RabbitMQ, converts them through Asterisk AMI, publishes a
result for each, then acks. SIGTERM/SIGINT: stop taking jobs, let jobs in flight finish within
[Worker] DrainTimeout, put the rest back in the queue, exit 0. A second signal exits at once
(jobs not finished stay in the queue: RabbitMQ redelivers them). SIGHUP is ignored, with a log
line: there is no reload, the config is read at start only; restart the service to apply a change.
`,
  'check-config': `audio-convert check-config [--config PATH]

Loads the config file, applies defaults and environment overrides, prints the effective config as
JSON with secrets redacted. Exit 0 when valid, 2 with one clear error when not.
`,
  doctor: `audio-convert doctor [--config PATH]

Checks, each with OK or the problem and a concrete fix: config valid; RabbitMQ reachable; the input,
dead-letter and delay queues and the results exchange as the service declares them at start-up;
AMI login with the configured user; the dialplan answers (the shipped 'ping' extension) and its
roots ([globals]) agree with [Worker] AllowedRoots.
Exit 0 when all pass, 1 otherwise.
`,
  'simulate-asterisk': `audio-convert simulate-asterisk [--port 5038] [--user auditorai] [--secret simulator] [--root DIR] [--instant] [--convert-app]

A local stand-in for Asterisk's AMI, for trying the product without a PBX. Listens on 127.0.0.1
only, accepts one user, behaves like the recordings of a real Asterisk 22 and really converts the
files with sox, applying the shipped dialplan's path rules under --root (default
/var/local/auditorai: GSM files below <root>/gsm, WAV files below <root>/wav, at any depth). --instant answers
without converting (for benchmarks). --convert-app behaves like an Asterisk with app_convert loaded
(the Convert() step and its outcomes) instead of the perl step. Try it: nc 127.0.0.1 5038
`,
  enqueue: '',
};

function configPath(explicit: string | undefined): string {
  return explicit ?? process.env.AUDIOCONVERT_CONFIG ?? DEFAULT_CONFIG_FILE;
}

function readConfig(explicit: string | undefined): Config {
  return loadConfig(configPath(explicit), process.env);
}

/** package.json's version: src/cli.ts (tsx) and dist/cli.js (built, shipped) both sit one level below it. */
function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

function parse(args: string[], options: ParseArgsConfig['options'], positionals = false): ReturnType<typeof parseArgs> {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: positionals, strict: true });
  } catch (error) {
    throw new UsageError(errorText(error));
  }
}

async function cmdRun(args: string[]): Promise<number> {
  const { values } = parse(args, { config: { type: 'string', short: 'c' } });
  if (values.help) return help('run');
  const config = readConfig(values.config as string | undefined);
  const logger = createLogger({ level: config.logging.level, format: config.logging.format, secrets: secretsOf(config) });
  const warning = configFileWarnings(config.file, statSync(config.file, { throwIfNoEntry: false }));
  if (warning !== undefined) logger.warning(warning);
  for (const note of config.warnings) logger.warning(note);
  // start() is async: the handlers below are installed in the same tick, before any signal can be
  // delivered, so a SIGTERM while start() runs (AMQP and AMI may already be connecting) drains and
  // exits 0 too, instead of killing the process by the signal's default action.
  const starting = start(config, { logger, version: version() });
  const { promise: stopping, resolve: stopped } = Promise.withResolvers<void>();
  // Type=notify under systemd (READY, STATUS, WATCHDOG, STOPPING); nothing at all outside it.
  const notifier = systemdNotifier(process.env, { onError: (error) => logger.warning('sd_notify failed', { error: error.message }) });
  let supervision: { stopping(): void } | undefined;
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals++;
    if (signals > 1) {
      logger.warning(`second ${signal}: exiting now; unfinished jobs stay in RabbitMQ and will be redelivered`);
      process.exit(1);
    }
    logger.notice(`${signal} received: draining (send it again to exit at once)`);
    supervision?.stopping();
    void starting
      .then((service) => service.close())
      .then(
        () => stopped(),
        () => stopped(),
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  // SIGHUP's default action ends node, and systemd counts a death by SIGHUP as a clean exit
  // (Restart=on-failure does nothing): a reflex `kill -HUP` would stop the service for good,
  // silently. There is no reload: the config is read once, at start (a reload would have to swap
  // the AMI and AMQP connections under jobs in flight); a restart drains and applies it.
  process.on('SIGHUP', () => logger.warning(SIGHUP_IGNORED));
  const service = await starting;
  if (signals === 0) supervision = followService(service, notifier, READY_AT_THE_LATEST_MS);
  await stopping;
  await notifier.close();
  return 0;
}

function cmdCheckConfig(args: string[]): number {
  const { values } = parse(args, { config: { type: 'string', short: 'c' } });
  if (values.help) return help('check-config');
  const config = readConfig(values.config as string | undefined);
  process.stdout.write(JSON.stringify(redactedConfig(config), null, 2) + '\n');
  const warning = configFileWarnings(config.file, statSync(config.file, { throwIfNoEntry: false }));
  if (warning !== undefined) process.stderr.write(`warning: ${warning}\n`);
  for (const note of config.warnings) process.stderr.write(`note: ${note}\n`);
  return 0;
}

async function cmdSimulate(args: string[]): Promise<number> {
  const { values } = parse(args, {
    port: { type: 'string', short: 'p' },
    user: { type: 'string' },
    secret: { type: 'string' },
    root: { type: 'string' },
    instant: { type: 'boolean' },
    'convert-app': { type: 'boolean' },
  });
  if (values.help) return help('simulate-asterisk');
  const port = values.port === undefined ? 5038 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--port ${String(values.port)}: must be a port number from 0 to 65535`);
  const user = (values.user as string | undefined) ?? 'auditorai';
  const emulator = await AsteriskEmulator.start({
    port,
    users: { [user]: (values.secret as string | undefined) ?? 'simulator' },
    mode: values.instant ? 'instant' : 'real',
    step: values['convert-app'] ? 'convert-app' : 'perl',
    ...(values.root === undefined ? {} : { root: values.root as string }),
  });
  process.stdout.write(`simulated Asterisk AMI listening on ${emulator.host}:${emulator.port} (user ${user}); Ctrl-C to stop\n`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await emulator.close();
  return 0;
}

async function cmdRedrive(rest: string[]): Promise<number> {
  const { values } = parse(rest, {
    config: { type: 'string', short: 'c' },
    code: { type: 'string', multiple: true },
    'job-id': { type: 'string', multiple: true },
    limit: { type: 'string' },
    'dry-run': { type: 'boolean' },
  });
  if (values.help) return help('redrive');
  let args;
  try {
    args = redriveArgs(values);
  } catch (error) {
    if (error instanceof RedriveUsageError) throw new UsageError(error.message);
    throw error;
  }
  const config = readConfig(values.config as string | undefined);
  return runRedrive(config, args, { stdout: process.stdout, stderr: process.stderr }, [
    config.rabbitmq.queueName,
    bulkQueueName(config.rabbitmq.queueName),
  ]);
}

function help(command: string): number {
  process.stdout.write(command === 'enqueue' ? ENQUEUE_HELP : command === 'redrive' ? REDRIVE_HELP : (COMMAND_HELP[command] ?? HELP));
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--help' || first === '-h' || first === 'help') return help('');
  if (first === '--version' || first === '-V') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (first === undefined || first.startsWith('-')) return cmdRun(argv);
  switch (first) {
    case 'run':
      return cmdRun(rest);
    case 'check-config':
      return cmdCheckConfig(rest);
    case 'simulate-asterisk':
      return cmdSimulate(rest);
    case 'enqueue': {
      const { values, positionals } = parse(
        rest,
        {
          config: { type: 'string', short: 'c' },
          dir: { type: 'string' },
          out: { type: 'string' },
          wait: { type: 'boolean', short: 'w' },
          timeout: { type: 'string' },
          recursive: { type: 'boolean', short: 'r' },
          'skip-existing': { type: 'boolean' },
          'dry-run': { type: 'boolean' },
          bulk: { type: 'boolean' },
        },
        true,
      );
      if (values.help) return help('enqueue');
      const config = readConfig(values.config as string | undefined);
      const { 'skip-existing': skipExisting, 'dry-run': dryRun, ...others } = values;
      return runEnqueue(config, { ...others, skipExisting, dryRun, positionals } as EnqueueArgs, {
        stdout: process.stdout,
        stderr: process.stderr,
      });
    }
    case 'redrive':
      return cmdRedrive(rest);
    case 'doctor': {
      const { values } = parse(rest, { config: { type: 'string', short: 'c' } });
      if (values.help) return help('doctor');
      return runDoctor(configPath(values.config as string | undefined), process.env, process.stdout);
    }
    default:
      throw new UsageError(`unknown command '${first}'`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(`audio-convert: ${error.message}\nTry 'audio-convert --help'.\n`);
      process.exit(2);
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`audio-convert: ${error.message}\n`);
      process.exit(2);
    }
    if (error instanceof StartupError) {
      // One line saying what and how to fix it (start() has closed what it had opened).
      process.stderr.write(`audio-convert: ${error.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`audio-convert: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
