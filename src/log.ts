/**
 * The one winston logger, with syslog levels (`log.warning`, not `log.warn`). Modules take a child:
 * `logger.child({ component: 'ami' })`. Formats:
 *
 * - `journald`: `<3>message key=value …` — the `<N>` syslog priority prefix lets journald file each
 *   line at its level (`journalctl -p err`); no timestamp, journald adds its own.
 * - `text`: `2026-11-26T10:00:00.000Z ERROR   message key=value …` for a terminal.
 * - `json`: one JSON object per line.
 *
 * Every configured secret is replaced by `***` anywhere in the message or the metadata, whatever the format.
 */
import type { Writable } from 'node:stream';
import winston from 'winston';

/** Syslog level names, most severe first (priority 0..7). */
export type LogLevel = 'emerg' | 'alert' | 'crit' | 'error' | 'warning' | 'notice' | 'info' | 'debug';
export type LogFormat = 'journald' | 'text' | 'json';

/** Syslog priority numbers (RFC 5424), as journald reads them from a `<N>` prefix. */
export const SYSLOG_PRIORITY: Readonly<Record<LogLevel, number>> = {
  emerg: 0,
  alert: 1,
  crit: 2,
  error: 3,
  warning: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

/** winston's npm-level methods do not exist on a syslog-level logger: calling `log.warn` would throw at run time. */
type NpmOnlyMethods = 'warn' | 'help' | 'data' | 'prompt' | 'http' | 'verbose' | 'input' | 'silly';

/** A winston logger with syslog levels only; `child` keeps that type. */
export type Logger = Omit<winston.Logger, NpmOnlyMethods | 'child'> & {
  child(meta: Readonly<Record<string, unknown>>): Logger;
};

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly format: LogFormat;
  /** Strings never to print (passwords, AMI secret): each becomes `***`. */
  readonly secrets?: readonly string[] | undefined;
  /** Where lines go; default stderr (journald collects it under systemd; stdout stays free for command output). */
  readonly stream?: Writable | undefined;
}

const LEVEL = Symbol.for('level');
const MESSAGE = Symbol.for('message');

type Info = winston.Logform.TransformableInfo & { [key: string | symbol]: unknown };

/** Create the logger. */
export function createLogger(options: LoggerOptions): Logger {
  const scrub = scrubber(options.secrets ?? []);
  const logger = winston.createLogger({
    levels: winston.config.syslog.levels,
    level: options.level,
    format: winston.format.combine(
      winston.format.errors(),
      winston.format((info) => cleanInfo(info, scrub))(),
      winston.format((info) => render(info, options.format, scrub))(),
    ),
    transports: [new winston.transports.Stream({ stream: options.stream ?? process.stderr })],
    exitOnError: false,
  });
  // A closed stderr (EPIPE) must not take the service down through an unhandled 'error' event.
  logger.on('error', () => undefined);
  return logger;
}

/** A logger that drops everything: for tests and for code paths that have no logger yet. */
export function nullLogger(): Logger {
  return winston.createLogger({ levels: winston.config.syslog.levels, silent: true });
}

/** `s` with every secret replaced by `***`; longest first, so a secret containing another is fully masked. */
function scrubber(secrets: readonly string[]): (s: string) => string {
  const needles = new Set<string>();
  for (const secret of secrets) {
    if (secret === '') continue;
    needles.add(secret);
    // The same secret as it appears inside a JSON string (quotes, backslashes, control characters escaped).
    needles.add(JSON.stringify(secret).slice(1, -1));
  }
  const sorted = [...needles].sort((a, b) => b.length - a.length);
  if (sorted.length === 0) return (s) => s;
  // includes() first: a secret is almost never there, and split/join copies every string.
  return (s) => sorted.reduce((acc, needle) => (acc.includes(needle) ? acc.split(needle).join('***') : acc), s);
}

/** Replace every value of `info` by a scrubbed, plain copy (errors become text; caller objects are not mutated). */
function cleanInfo(info: Info, scrub: (s: string) => string): Info {
  for (const key of Object.keys(info)) {
    if (key === 'level') continue;
    info[key] = clean(info[key], scrub, new Set(), 0);
  }
  return info;
}

function clean(value: unknown, scrub: (s: string) => string, path: Set<object>, depth: number): unknown {
  if (typeof value === 'string') return scrub(value);
  if (value instanceof Error) return scrub(describeError(value));
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'function' || typeof value === 'symbol') return String(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  if (path.has(value)) return '[circular]';
  if (depth >= 8) return '[…]';
  path.add(value);
  const out = Array.isArray(value)
    ? value.map((item) => clean(item, scrub, path, depth + 1))
    : Object.fromEntries(Object.entries(value).map(([k, v]) => [scrub(k), clean(v, scrub, path, depth + 1)]));
  path.delete(value);
  return out;
}

/** `Name: message (cause: Name: message)`: one line, enough to act on. */
export function describeError(err: Error): string {
  const text = `${err.name}: ${err.message}`;
  const { cause } = err;
  if (cause instanceof Error) return `${text} (cause: ${describeError(cause)})`;
  return cause === undefined ? text : `${text} (cause: ${JSON.stringify(cause) ?? typeof cause})`;
}

function render(info: Info, format: LogFormat, scrub: (s: string) => string): Info {
  const level = typeof info[LEVEL] === 'string' ? info[LEVEL] : info.level;
  const { level: _level, message, ...meta } = info;
  const text = typeof message === 'string' ? message : (JSON.stringify(message) ?? '');
  let line: string;
  if (format === 'json') {
    line = JSON.stringify({ timestamp: new Date().toISOString(), level, message: text, ...meta });
  } else {
    const head =
      format === 'journald'
        ? `<${SYSLOG_PRIORITY[level as LogLevel] ?? 6}>`
        : `${new Date().toISOString()} ${level.toUpperCase().padEnd(7)} `;
    line = `${head}${oneLine(text)}${fields(meta)}`;
  }
  // Belt and braces: nothing that reaches the stream may hold a secret, however it got into the line.
  info[MESSAGE] = scrub(line);
  return info;
}

/** ` key=value key2="with space"`: logfmt-ish, quoted only when needed. */
function fields(meta: Record<string, unknown>): string {
  let out = '';
  for (const [key, value] of Object.entries(meta)) {
    if (value === undefined) continue;
    const s = typeof value === 'string' ? value : (JSON.stringify(value) ?? typeof value);
    out += ` ${key}=${s !== '' && /^[^\s"=\\]+$/.test(s) ? s : JSON.stringify(s)}`;
  }
  return out;
}

/** journald splits entries at newlines: keep one entry per log call. */
function oneLine(s: string): string {
  return s.replace(/\r?\n/g, '\\n');
}
