/**
 * Where each config value comes from (file line, environment variable, systemd credential), and the
 * {@link Reader} that converts values with messages naming file, section, key, value and what is allowed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, errorCode } from '../errors.js';
import { parseIni } from './ini.js';
import * as v from './values.js';
import { Invalid, type Converter } from './values.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** Known sections and keys, canonical spelling (matching is case-insensitive). */
export const SCHEMA = {
  RabbitMQ: [
    'Url',
    'HostName',
    'Port',
    'VirtualHost',
    'UserName',
    'Password',
    'TLS',
    'TLSCAFile',
    'QueueName',
    'ResultsExchange',
    'DeadLetterQueue',
    'QueueType',
    'DeliveryLimit',
  ],
  AsteriskAMI: [
    'Addr',
    'Port',
    'User',
    'Secret',
    'Channel',
    'Context',
    'Exten',
    'AuthType',
    'TLS',
    'TLSCAFile',
    'TLSVerify',
    'PingInterval',
    'ActionTimeout',
  ],
  Worker: [
    'Concurrency',
    'JobTimeout',
    'MaxAttempts',
    'AllowedRoots',
    'RetryDelay',
    'RetryMaxDelay',
    'DrainTimeout',
    'SettleTime',
    'SettleMax',
    'InputExtension',
    'OutputExtension',
  ],
  Metrics: ['Listen'],
  Logging: ['MinimumLevel', 'Format'],
} as const;
export type Section = keyof typeof SCHEMA;
const SECTIONS = Object.keys(SCHEMA) as Section[];

/** Keys whose value is never shown: the message says "(hidden)" (a Url is shown with its password masked). */
const SECRET_KEYS = new Set(['AsteriskAMI.Secret', 'RabbitMQ.Password']);

/** Secrets that may come from outside the file. Precedence: environment, then systemd credential, then the file. */
const SECRET_SOURCES = [
  { section: 'AsteriskAMI', key: 'Secret', env: 'AUDIOCONVERT_AMI_SECRET', credential: 'ami-secret' },
  { section: 'RabbitMQ', key: 'Password', env: 'AUDIOCONVERT_AMQP_PASSWORD', credential: 'amqp-password' },
  { section: 'RabbitMQ', key: 'Url', env: 'AUDIOCONVERT_AMQP_URL', credential: undefined },
] as const;

/** Keys that describe the broker piece by piece; a file `Url` replaces all of them. */
const URL_PARTS = ['HostName', 'Port', 'VirtualHost', 'UserName', 'Password', 'TLS'] as const;

type Origin = { kind: 'file'; line: number } | { kind: 'env'; name: string } | { kind: 'credential'; path: string };
interface Source {
  readonly value: string;
  readonly origin: Origin;
}

/** Values by `Section.Key` (canonical), with where each came from; converts them with precise errors. */
export class Reader {
  constructor(
    readonly file: string,
    readonly values: Map<string, Source>,
  ) {}

  source(section: Section, key: string): Source | undefined {
    return this.values.get(`${section}.${key}`);
  }

  /** The converted value, or `fallback` when the key is absent. */
  get<T>(section: Section, key: string, convert: Converter<T>, fallback: T): T {
    const src = this.source(section, key);
    return src ? this.convert(section, key, src, convert) : fallback;
  }

  /** The converted value; a missing key is an error that says how to fix it. */
  required<T>(section: Section, key: string, convert: Converter<T>, howToFix: string): T {
    const src = this.source(section, key);
    if (!src) throw new ConfigError(`${this.file}: [${section}] ${key} is missing: ${howToFix}`);
    return this.convert(section, key, src, convert);
  }

  /** A message about a value that is present: `file: [S] K = "value": allowed (line N)`. */
  fail(section: Section, key: string, allowed: string): never {
    const src = this.source(section, key);
    const shown = src ? ` = ${show(section, key, src.value)}` : '';
    throw new ConfigError(`${this.file}: [${section}] ${key}${shown}: ${allowed}${src ? ` (${describe(src.origin)})` : ''}`);
  }

  private convert<T>(section: Section, key: string, src: Source, convert: Converter<T>): T {
    const result = convert(src.value);
    if (result instanceof Invalid) this.fail(section, key, result.allowed);
    return result;
  }
}

function show(section: string, key: string, value: string): string {
  if (SECRET_KEYS.has(`${section}.${key}`)) return '(hidden)';
  const text = section === 'RabbitMQ' && key === 'Url' ? v.redactUrl(value) : value;
  return JSON.stringify(text.length > 120 ? `${text.slice(0, 117)}...` : text);
}

function describe(origin: Origin): string {
  if (origin.kind === 'file') return `line ${origin.line}`;
  if (origin.kind === 'env') return `from environment variable ${origin.name}`;
  return `from credential file ${origin.path}`;
}

/**
 * INI text plus environment and credentials → a {@link Reader}. Unknown keys and repeated keys are
 * errors; unknown sections and overridden keys become `warnings`.
 */
export function readSources(text: string, file: string, env: Env, credentialsDir: string | undefined, warnings: string[]): Reader {
  const values = readValues(text, file, warnings);
  checkUrlOrParts(file, values);
  overlaySecrets(values, env, credentialsDir);
  if (values.get('RabbitMQ.Url')?.origin.kind === 'env') {
    const ignored = URL_PARTS.filter((k) => values.get(`RabbitMQ.${k}`)?.origin.kind === 'file');
    if (ignored.length > 0) {
      warnings.push(`${file}: [RabbitMQ] ${ignored.join(', ')} ignored: AUDIOCONVERT_AMQP_URL is set and replaces them`);
    }
  }
  return new Reader(file, values);
}

/** INI text → values by canonical `Section.Key`. Unknown keys and duplicates are errors; unknown sections are noted. */
function readValues(text: string, file: string, warnings: string[]): Map<string, Source> {
  const doc = parseIni(text);
  const known = (name: string | undefined): Section | undefined => SECTIONS.find((s) => s.toLowerCase() === name?.toLowerCase());
  for (const { section, problem } of doc.problems) {
    // Lines of ignored sections (other AuditorAI tools) are none of our business.
    if (section && !known(section.name)) continue;
    throw new ConfigError(`${file}: line ${problem.line}: ${problem.reason}`);
  }
  const values = new Map<string, Source>();
  for (const section of doc.sections) {
    const name = known(section.name);
    if (!name) {
      const near = v.nearest(section.name, SECTIONS);
      warnings.push(
        `${file}: section [${section.name}] (line ${section.line}) is not used by audio-convert and is ignored` +
          (near ? `; did you mean [${near}]?` : ''),
      );
      continue;
    }
    for (const entry of section.entries) {
      const keys: readonly string[] = SCHEMA[name];
      const key = keys.find((k) => k.toLowerCase() === entry.key.toLowerCase());
      if (!key) throw new ConfigError(`${file}: [${name}] ${entry.key} (line ${entry.line}): ${unknownKey(name, entry.key)}`);
      const previous = values.get(`${name}.${key}`);
      if (previous?.origin.kind === 'file') {
        throw new ConfigError(
          `${file}: [${name}] ${key} (line ${entry.line}): set twice ` + `(also on line ${previous.origin.line}); keep one`,
        );
      }
      values.set(`${name}.${key}`, { value: entry.value, origin: { kind: 'file', line: entry.line } });
    }
  }
  return values;
}

function unknownKey(section: Section, key: string): string {
  const elsewhere = SECTIONS.find((s) => s !== section && SCHEMA[s].some((k) => k.toLowerCase() === key.toLowerCase()));
  if (elsewhere) return `unknown key in [${section}]; it belongs in [${elsewhere}]`;
  const near = v.nearest(key, SCHEMA[section]);
  return `unknown key${near ? `; did you mean ${near}?` : ''} (keys of [${section}]: ${SCHEMA[section].join(', ')})`;
}

function checkUrlOrParts(file: string, values: Map<string, Source>): void {
  if (!values.has('RabbitMQ.Url')) return;
  const part = URL_PARTS.find((k) => values.has(`RabbitMQ.${k}`));
  if (part) {
    throw new ConfigError(
      `${file}: [RabbitMQ] Url and ${part} are both set: use either Url or the separate keys ` + `(${URL_PARTS.join(', ')}), not both`,
    );
  }
}

/** Secrets from the environment and systemd credentials replace the file's. */
function overlaySecrets(values: Map<string, Source>, env: Env, credentialsDir: string | undefined): void {
  for (const s of SECRET_SOURCES) {
    const fromEnv = env[s.env];
    if (fromEnv !== undefined && fromEnv !== '') {
      values.set(`${s.section}.${s.key}`, { value: fromEnv, origin: { kind: 'env', name: s.env } });
      continue;
    }
    if (credentialsDir === undefined || credentialsDir === '' || s.credential === undefined) continue;
    const path = join(credentialsDir, s.credential);
    const value = readCredential(path);
    if (value !== undefined) values.set(`${s.section}.${s.key}`, { value, origin: { kind: 'credential', path } });
  }
}

function readCredential(path: string): string | undefined {
  try {
    // `echo secret > file` leaves a newline that is not part of the secret.
    return readFileSync(path, 'utf8').replace(/[\r\n]+$/, '');
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new ConfigError(`${path}: cannot read the credential: ${code ?? String(err)}`, { cause: err });
  }
}
