/**
 * `transcoding.conf` (INI) → one frozen, fully defaulted {@link Config}. The only module that knows
 * key names, defaults and ranges; nothing else reads `process.env` or the file (the caller passes
 * `env` in). Every bad value is one {@link ConfigError} naming file, section, key, value and what is
 * allowed; secret values are never put in a message.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, errorCode } from './errors.js';
import { readSources, type Env, type Reader } from './config/read.js';
import * as v from './config/values.js';
import type { LogFormat } from './log.js';

export { redactUrl } from './config/values.js';

export type LogLevelName = 'debug' | 'info' | 'warning' | 'error' | 'crit';

/** The effective configuration. Durations are milliseconds. Deeply frozen. */
export interface Config {
  readonly file: string;
  readonly rabbitmq: {
    /** The URL the client connects to, password included (see {@link redactedConfig} before printing). */
    readonly url: string;
    /** The first (or only) node: the one in `url`. */
    readonly hostname: string;
    readonly port: number;
    /**
     * Every node to try, in order, as `host:port` (`[v6]:port`): `[RabbitMQ] HostName` as a list, or
     * the one host of the Url. The client connects to the first that answers and fails over to the next.
     */
    readonly hosts: readonly string[];
    readonly vhost: string;
    readonly username: string;
    readonly password: string;
    /** amqps */
    readonly tls: boolean;
    /** PEM file of the CA that signed the broker's certificate (amqps with a private CA); absent: the system CAs. */
    readonly tlsCaFile?: string;
    readonly queueName: string;
    readonly resultsExchange: string;
    readonly deadLetterQueue: string;
    readonly queueType: 'classic' | 'quorum';
    /** Quorum queues: deliveries of one message before RabbitMQ dead-letters it (`x-delivery-limit`). */
    readonly deliveryLimit: number;
  };
  readonly ami: {
    readonly host: string;
    readonly port: number;
    readonly username: string;
    readonly secret: string;
    readonly channel: string;
    readonly context: string;
    readonly exten: string;
    readonly authType: 'plain' | 'md5';
    readonly tls: boolean;
    readonly tlsCaFile: string | undefined;
    readonly tlsRejectUnauthorized: boolean;
    readonly pingIntervalMs: number;
    readonly actionTimeoutMs: number;
  };
  readonly worker: {
    readonly concurrency: number;
    readonly jobTimeoutMs: number;
    readonly maxAttempts: number;
    readonly allowedRoots: readonly string[];
    readonly retryDelayMs: number;
    readonly retryMaxDelayMs: number;
    readonly drainTimeoutMs: number;
    /** An input is settled once its mtime is this old; a younger one waits (docs/messages.md, "settled inputs"). */
    readonly settleTimeMs: number;
    /** How long a job waits for its inputs to settle before it converts what is there, flagged `unsettled`. */
    readonly settleMaxMs: number;
    readonly inputExtension: string;
    readonly outputExtension: string;
  };
  readonly metrics: { readonly host: string; readonly port: number; readonly enabled: boolean };
  readonly logging: { readonly level: LogLevelName; readonly format: LogFormat };
  /** Notes worth a `warning` log line at startup: ignored sections, TLS settings that do nothing, overridden keys. */
  readonly warnings: readonly string[];
}

/** Where the service looks when neither `--config` nor `AUDIOCONVERT_CONFIG` is given. */
export const DEFAULT_CONFIG_FILE = '/etc/auditorai/transcoding.conf';

/**
 * Parse and validate the text of a config file. Pure apart from reading the two credential files
 * (`ami-secret`, `amqp-password`) from `credentialsDir` when given (systemd's `$CREDENTIALS_DIRECTORY`).
 */
export function parseConfig(text: string, file: string, env: Env, credentialsDir?: string): Config {
  return build(text, file, env, credentialsDir);
}

/**
 * Read `file` and parse it ({@link parseConfig}); credentials come from `env.CREDENTIALS_DIRECTORY`.
 * A missing or unreadable file is a {@link ConfigError} naming it.
 */
export function loadConfig(file: string, env: Env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = errorCode(err);
    const why =
      code === 'ENOENT'
        ? 'no such file (copy config/transcoding.conf there, or pass --config PATH)'
        : code === 'EACCES'
          ? 'permission denied (the service user needs read access: group reincar-auditorai, mode 0640)'
          : code === 'EISDIR'
            ? 'it is a directory, not a file'
            : String((err as Error).message);
    throw new ConfigError(`${file}: cannot read the configuration file: ${why}`, { cause: err });
  }
  return build(text, file, env, env.CREDENTIALS_DIRECTORY);
}

/**
 * A warning when the config file (which usually holds the AMI secret) is readable by every user
 * (`mode & 0o004`); undefined when it is not, or when `stat` is undefined (no such file).
 */
export function configFileWarnings(file: string, stat: { readonly mode: number } | undefined): string | undefined {
  if (stat === undefined || (stat.mode & 0o004) === 0) return undefined;
  const mode = (stat.mode & 0o777).toString(8).padStart(4, '0');
  return (
    `${file} is readable by every user (mode ${mode}) and may hold secrets: ` +
    `run chmod 640 ${file} (owner root, group reincar-auditorai), or move the secrets to systemd credentials`
  );
}

/** The secret strings in `config`, for log redaction. The well-known default password `guest` is left out. */
export function secretsOf(config: Config): string[] {
  const { secret } = config.ami;
  const { password } = config.rabbitmq;
  const all = [secret, encodeURIComponent(secret)];
  if (password !== 'guest') all.push(password, encodeURIComponent(password));
  return [...new Set(all.filter((s) => s !== ''))];
}

/** `config` with every secret replaced by `***` (also the password inside the AMQP URL): for `check-config`. */
export function redactedConfig(config: Config): Config {
  return {
    ...config,
    rabbitmq: { ...config.rabbitmq, password: '***', url: v.redactUrl(config.rabbitmq.url) },
    ami: { ...config.ami, secret: '***' },
  };
}

function build(text: string, file: string, env: Env, credentialsDir: string | undefined): Config {
  const warnings: string[] = [];
  const r = readSources(text, file, env, credentialsDir, warnings);
  const ami = amiSection(r);
  const rabbitmq = rabbitmqSection(r);
  if (rabbitmq.tlsCaFile !== undefined && !rabbitmq.tls)
    warnings.push(`${file}: [RabbitMQ] TLSCAFile is set but TLS is off: it is not used`);
  if (r.source('RabbitMQ', 'DeliveryLimit') && rabbitmq.queueType !== 'quorum') {
    warnings.push(`${file}: [RabbitMQ] DeliveryLimit is set but QueueType is classic: it is not used (classic queues count no deliveries)`);
  }
  if (ami.tlsCaFile !== undefined && !ami.tls) warnings.push(`${file}: [AsteriskAMI] TLSCAFile is set but TLS is off: it is not used`);
  if (ami.tls && !ami.tlsRejectUnauthorized) warnings.push(`${file}: [AsteriskAMI] TLSVerify = false: the AMI certificate is not checked`);
  const config: Config = {
    file,
    rabbitmq,
    ami,
    worker: workerSection(r),
    metrics: r.get('Metrics', 'Listen', v.listen(DEFAULT_LISTEN), DEFAULT_LISTEN),
    logging: {
      level: r.get('Logging', 'MinimumLevel', LEVEL, 'info'),
      format: r.get(
        'Logging',
        'Format',
        v.choice({ journald: 'journald', text: 'text', json: 'json' } as const, 'journald, text, json'),
        'journald',
      ),
    },
    warnings,
  };
  return deepFreeze(config);
}

const DEFAULT_LISTEN: v.Listen = { enabled: true, host: '127.0.0.1', port: 9464 };

const LEVEL = v.choice<LogLevelName>(
  { debug: 'debug', info: 'info', warning: 'warning', warn: 'warning', error: 'error', err: 'error', critical: 'crit', crit: 'crit' },
  'DEBUG, INFO, WARNING, ERROR, CRITICAL (any case)',
);

function rabbitmqSection(r: Reader): Config['rabbitmq'] {
  const names = {
    queueName: r.get('RabbitMQ', 'QueueName', v.amqpName, 'Asterisk.Transcoding'),
    resultsExchange: r.get('RabbitMQ', 'ResultsExchange', v.amqpName, 'Asterisk.Transcoding.results'),
    deadLetterQueue: r.get('RabbitMQ', 'DeadLetterQueue', v.amqpName, 'Asterisk.Transcoding.dead'),
    queueType: r.get('RabbitMQ', 'QueueType', v.choice({ classic: 'classic', quorum: 'quorum' } as const, 'classic, quorum'), 'classic'),
    deliveryLimit: r.get('RabbitMQ', 'DeliveryLimit', v.integer(1, 10_000), DEFAULT_DELIVERY_LIMIT),
  };
  if (names.queueName === names.deadLetterQueue) r.fail('RabbitMQ', 'DeadLetterQueue', 'must differ from QueueName');
  // A password from the environment or a credential wins over the one in the URL or the file.
  const passwordSource = r.source('RabbitMQ', 'Password');
  const password = r.get('RabbitMQ', 'Password', v.text(1024), 'guest');
  let parts: v.AmqpUrlParts;
  let nodes: readonly v.HostPort[];
  if (r.source('RabbitMQ', 'Url')) {
    const fromUrl = r.required('RabbitMQ', 'Url', v.amqpUrl, '');
    parts = passwordSource && passwordSource.origin.kind !== 'file' ? { ...fromUrl, password } : fromUrl;
    nodes = [{ hostname: parts.hostname, port: parts.port }];
  } else {
    const tls = r.get('RabbitMQ', 'TLS', v.bool, false);
    nodes = r.get('RabbitMQ', 'HostName', v.hostList, [{ hostname: 'localhost', port: undefined }]);
    const port = r.get('RabbitMQ', 'Port', v.port, tls ? 5671 : 5672);
    // A node without its own port takes [RabbitMQ] Port.
    nodes = nodes.map((n) => ({ hostname: n.hostname, port: n.port ?? port }));
    parts = {
      tls,
      hostname: nodes[0]?.hostname ?? 'localhost',
      port: nodes[0]?.port ?? port,
      vhost: r.get('RabbitMQ', 'VirtualHost', v.text(255), '/'),
      username: r.get('RabbitMQ', 'UserName', v.text(1024), 'guest'),
      password,
      search: '',
    };
  }
  const hosts = nodes.map((n) => `${n.hostname.includes(':') ? `[${n.hostname}]` : n.hostname}:${String(n.port)}`);
  const { search: _search, ...rest } = parts;
  const tlsCaFile = r.source('RabbitMQ', 'TLSCAFile')?.value === '' ? undefined : r.get('RabbitMQ', 'TLSCAFile', v.absolutePath, undefined);
  return { url: v.formatAmqpUrl(parts), ...rest, hosts, ...(tlsCaFile === undefined ? {} : { tlsCaFile }), ...names };
}

/** RabbitMQ 4.x's own default for quorum queues; ample for the faults that return a message (docs/reliability.md). */
const DEFAULT_DELIVERY_LIMIT = 20;

const AMI_USER_FIX = 'add it to [AsteriskAMI] (the [user] of manager.conf, e.g. User = auditorai)';
const AMI_SECRET_FIX =
  'set Secret = "..." in [AsteriskAMI], or the environment variable AUDIOCONVERT_AMI_SECRET, or a systemd ' +
  'credential named ami-secret (LoadCredential=ami-secret:/etc/auditorai/credentials/ami-secret in the unit)';

function amiSection(r: Reader): Config['ami'] {
  const tlsCaFile =
    r.source('AsteriskAMI', 'TLSCAFile')?.value === '' ? undefined : r.get('AsteriskAMI', 'TLSCAFile', v.absolutePath, undefined);
  return {
    host: r.get('AsteriskAMI', 'Addr', v.host, '127.0.0.1'),
    port: r.get('AsteriskAMI', 'Port', v.port, 5038),
    username: r.required('AsteriskAMI', 'User', v.word(79), AMI_USER_FIX),
    secret: r.required('AsteriskAMI', 'Secret', v.text(512), AMI_SECRET_FIX),
    channel: r.get('AsteriskAMI', 'Channel', v.channel, 'Local/s@audio-convert-hold'),
    context: r.get('AsteriskAMI', 'Context', v.dialplanName, 'audio-convert'),
    exten: r.get('AsteriskAMI', 'Exten', v.dialplanName, 'convert'),
    authType: r.get('AsteriskAMI', 'AuthType', v.choice({ plain: 'plain', md5: 'md5' } as const, 'plain, md5'), 'plain'),
    tls: r.get('AsteriskAMI', 'TLS', v.bool, false),
    tlsCaFile,
    tlsRejectUnauthorized: r.get('AsteriskAMI', 'TLSVerify', v.bool, true),
    pingIntervalMs: r.get('AsteriskAMI', 'PingInterval', v.seconds(0.01, 3600), 5000),
    actionTimeoutMs: r.get('AsteriskAMI', 'ActionTimeout', v.seconds(0.01, 600), 10_000),
  };
}

function workerSection(r: Reader): Config['worker'] {
  const w = {
    concurrency: r.get('Worker', 'Concurrency', v.integer(1, 256), 4),
    jobTimeoutMs: r.get('Worker', 'JobTimeout', v.seconds(0.01, 86_400), 120_000),
    maxAttempts: r.get('Worker', 'MaxAttempts', v.integer(1, 100), 5),
    allowedRoots: r.get('Worker', 'AllowedRoots', v.roots, ['/var/local/auditorai']),
    retryDelayMs: r.get('Worker', 'RetryDelay', v.seconds(0, 3600), 5000),
    retryMaxDelayMs: r.get('Worker', 'RetryMaxDelay', v.seconds(0, 86_400), 300_000),
    drainTimeoutMs: r.get('Worker', 'DrainTimeout', v.seconds(0, 3600), 30_000),
    settleTimeMs: r.get('Worker', 'SettleTime', v.seconds(0, 3600), 2000),
    settleMaxMs: r.get('Worker', 'SettleMax', v.seconds(0, 86_400), 600_000),
    inputExtension: r.get('Worker', 'InputExtension', v.extension, '.gsm'),
    outputExtension: r.get('Worker', 'OutputExtension', v.extension, '.wav'),
  };
  if (w.retryMaxDelayMs < w.retryDelayMs) {
    r.fail(
      'Worker',
      r.source('Worker', 'RetryMaxDelay') ? 'RetryMaxDelay' : 'RetryDelay',
      `RetryMaxDelay (${w.retryMaxDelayMs / 1000} s) must not be less than RetryDelay (${w.retryDelayMs / 1000} s)`,
    );
  }
  if (w.inputExtension === w.outputExtension) {
    r.fail('Worker', 'OutputExtension', 'must differ from InputExtension (the output would overwrite the input)');
  }
  return w;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}
