/**
 * PURE: one converter per kind of config value. A converter turns the text of a value into the
 * typed value, or returns an `Invalid` saying what is allowed (the caller adds file, section, key
 * and value to the message). Imports nothing of ours but the character rules (characters.ts).
 */
import { isIP } from 'node:net';
import { posix } from 'node:path';
import { isAbsolutePathText } from '../characters.js';

/** What a rejected value should have been, phrased to follow `Key = "value": `. */
export class Invalid {
  constructor(readonly allowed: string) {}
}

/** Text of a value → typed value, or what is allowed. */
export type Converter<T> = (value: string) => T | Invalid;

const invalid = (allowed: string): Invalid => new Invalid(allowed);

// Control characters end AMI headers and have no business in any value of this file.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** A whole number in [min, max]. */
export const integer =
  (min: number, max: number, what = 'a whole number'): Converter<number> =>
  (v) => {
    const n = /^\+?\d{1,15}$/.test(v) ? Number(v) : NaN;
    return n >= min && n <= max ? n : invalid(`must be ${what} from ${min} to ${max}`);
  };

export const port: Converter<number> = integer(1, 65535, 'a TCP port number');

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A duration written in seconds (`120`, `0.5`) or with a unit (`500ms`, `2m`, `1h`); returns milliseconds. */
export const seconds =
  (min: number, max: number): Converter<number> =>
  (v) => {
    const m = /^(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)?$/i.exec(v);
    const unit = UNIT_MS[(m?.[2] ?? 's').toLowerCase()] ?? NaN;
    const ms = m ? Math.round(Number(m[1]) * unit) : NaN;
    return ms >= min * 1000 && ms <= max * 1000
      ? ms
      : invalid(`must be a number of seconds from ${min} to ${max} (units also work: 500ms, 2m, 1h)`);
  };

const TRUE = new Set(['true', 'yes', 'on', '1']);
const FALSE = new Set(['false', 'no', 'off', '0']);

export const bool: Converter<boolean> = (v) => {
  const s = v.toLowerCase();
  if (TRUE.has(s)) return true;
  if (FALSE.has(s)) return false;
  return invalid('must be true or false (yes/no, on/off and 1/0 also work)');
};

/** One of a fixed set of words, case-insensitive; `words` maps every accepted spelling to its value. */
export const choice =
  <T extends string>(words: Readonly<Record<string, T>>, allowedText: string): Converter<T> =>
  (v) =>
    Object.hasOwn(words, v.toLowerCase()) ? (words[v.toLowerCase()] as T) : invalid(`must be one of ${allowedText}`);

/** Free text (names, secrets): 1..max characters, no control characters. */
export const text =
  (max: number, what = 'characters'): Converter<string> =>
  (v) =>
    v.length >= 1 && v.length <= max && !CONTROL.test(v) ? v : invalid(`must be 1 to ${max} ${what} without control characters`);

/** A word: 1..max characters without spaces or control characters (an AMI user name). */
export const word =
  (max: number): Converter<string> =>
  (v) =>
    v.length >= 1 && v.length <= max && !/\s/.test(v) && !CONTROL.test(v) ? v : invalid(`must be 1 to ${max} characters without spaces`);

/** A host name or IP address (an IPv6 address may be written in brackets). Returned without brackets. */
export const host: Converter<string> = (v) => {
  const bare = /^\[(.*)\]$/.exec(v)?.[1] ?? v;
  if (isIP(bare) !== 0) return bare;
  // Underscores are not DNS but are common in container service names.
  return /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,252})$/.test(v) ? v : invalid('must be a host name or an IP address');
};

/** One broker address of a `HostName` list: the port is undefined when the item names none. */
export interface HostPort {
  readonly hostname: string;
  readonly port: number | undefined;
}

/**
 * `[RabbitMQ] HostName`: one host, or the nodes of a cluster as a comma-separated list of
 * `host[:port]` (`rmq1:5672, rmq2, [fd00::1]:5672`). Tried in turn by the client. In a list of more
 * than one, IPv6 literals are refused: rabbitmq-client splits each item at its first `:`.
 */
export const hostList: Converter<readonly HostPort[]> = (v) => {
  const allowed =
    'must be a host name or IP address, or a comma-separated list of host[:port] (the nodes of a ' +
    'RabbitMQ cluster), e.g. rmq1:5672, rmq2:5672, rmq3:5672';
  const items = v.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) return invalid(`${allowed}; an item is empty`);
  const out: HostPort[] = [];
  for (const item of items) {
    const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(item) ?? /^([^:[\]\s]+)(?::(\d{1,5}))?$/.exec(item);
    const h = m?.[1] === undefined ? undefined : host(m[1].includes(':') ? `[${m[1]}]` : m[1]);
    const p = m?.[2] === undefined ? undefined : Number(m[2]);
    // A bare IPv6 address without brackets (`::1`) is one host, not host:port.
    const bare = m === null && isIP(item) === 6 ? item : undefined;
    if (bare !== undefined) {
      out.push({ hostname: bare, port: undefined });
      continue;
    }
    if (h === undefined || h instanceof Invalid) return invalid(`${allowed}; "${item}" is not a host`);
    if (p !== undefined && (p < 1 || p > 65535)) return invalid(`${allowed}; "${item}": the port must be from 1 to 65535`);
    out.push({ hostname: h, port: p });
  }
  if (out.length > 1 && out.some((x) => isIP(x.hostname) === 6)) {
    return invalid(`${allowed}; an IPv6 address works as the only host, not in a list (use host names for the nodes)`);
  }
  const keys = out.map((x) => `${x.hostname}:${String(x.port)}`);
  if (new Set(keys).size !== keys.length) return invalid(`${allowed}; a node is listed twice`);
  return out;
};

/** An AMQP queue or exchange name: 1..255 bytes, no control characters, not in the broker's reserved `amq.` space. */
export const amqpName: Converter<string> = (v) =>
  Buffer.byteLength(v) >= 1 && Buffer.byteLength(v) <= 255 && !CONTROL.test(v) && !v.toLowerCase().startsWith('amq.')
    ? v
    : invalid('must be a name of 1 to 255 bytes without control characters, not starting with "amq." (reserved)');

/** A dialplan context or extension name as written in extensions.conf. */
export const dialplanName: Converter<string> = (v) =>
  /^[A-Za-z0-9_.+*#-]{1,79}$/.test(v) ? v : invalid('must be 1 to 79 letters, digits or _ . + - * #');

/** An AMI Originate channel, e.g. `Local/s@audio-convert-hold` (Technology/resource). */
export const channel: Converter<string> = (v) =>
  /^[A-Za-z][A-Za-z0-9_-]*\/[A-Za-z0-9_.@/+:*#-]+$/.test(v)
    ? v
    : invalid('must be a channel such as Local/s@audio-convert-hold (Technology/resource, no spaces, commas or quotes)');

/** A file extension with its dot: `.gsm`. Returned lower-case. */
export const extension: Converter<string> = (v) =>
  /^\.[A-Za-z0-9]{1,16}$/.test(v) ? v.toLowerCase() : invalid('must be a dot and 1 to 16 letters or digits, e.g. .gsm');

/** An absolute file path. */
export const absolutePath: Converter<string> = (v) =>
  v.startsWith('/') && !CONTROL.test(v) ? v : invalid('must be an absolute path, e.g. /etc/ssl/certs/asterisk-ca.pem');

/**
 * Allowed roots: absolute, normalised directory paths separated by commas or spaces, in the job path
 * character set (characters.ts). `/` itself is refused: it would allow jobs to write anywhere.
 */
export const roots: Converter<readonly string[]> = (v) => {
  const items = v.split(/[\s,]+/).filter((s) => s !== '');
  const allowed = 'must be one or more absolute directory paths separated by commas or spaces, e.g. /var/local/auditorai';
  if (items.length === 0) return invalid(allowed);
  for (const item of items) {
    if (!isAbsolutePathText(item)) {
      return invalid(`${allowed}; "${item}" is not absolute or has a character other than letters, digits, . _ - /`);
    }
    const normal = posix.normalize(item).replace(/\/+$/, '');
    if (normal !== item) return invalid(`${allowed}; "${item}" is not normalised (write ${normal || '/'})`);
  }
  return [...new Set(items)];
};

/** `host:port`, `[v6]:port`, a bare port (loopback), or `off`. Port 0 asks the OS for a free port. */
export interface Listen {
  readonly enabled: boolean;
  readonly host: string;
  readonly port: number;
}

export const listen =
  (defaults: Listen): Converter<Listen> =>
  (v) => {
    const allowed = 'must be host:port (e.g. 127.0.0.1:9464 or [::1]:9464), a port number, or off';
    if (/^(off|no|false|disabled?|none)$/i.test(v)) return { ...defaults, enabled: false };
    const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(v) ?? /^([^:[\]\s]+):(\d{1,5})$/.exec(v) ?? /^:?()(\d{1,5})$/.exec(v);
    if (!m) return invalid(allowed);
    const h = m[1] === '' || m[1] === undefined ? defaults.host : host(m[1]);
    const p = Number(m[2]);
    if (h instanceof Invalid || p > 65535) return invalid(allowed);
    return { enabled: true, host: h, port: p };
  };

/** The parts of an `amqp://` or `amqps://` URL (defaults as in the AMQP URI spec). */
export interface AmqpUrlParts {
  readonly tls: boolean;
  readonly hostname: string;
  readonly port: number;
  readonly vhost: string;
  readonly username: string;
  readonly password: string;
  /** `?heartbeat=…` etc., passed through unchanged ('' when none). */
  readonly search: string;
}

export const amqpUrl: Converter<AmqpUrlParts> = (v) => {
  const allowed = 'must be an amqp:// or amqps:// URL, e.g. amqp://user:password@localhost:5672/%2F';
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    return invalid(allowed);
  }
  if ((u.protocol !== 'amqp:' && u.protocol !== 'amqps:') || u.hostname === '') return invalid(allowed);
  const tls = u.protocol === 'amqps:';
  try {
    return {
      tls,
      hostname: u.hostname.replace(/^\[(.*)\]$/, '$1'),
      port: u.port === '' ? (tls ? 5671 : 5672) : Number(u.port),
      // AMQP URI spec: no path (or just "/") is the default virtual host "/"; "/%2F" is "/" too.
      vhost: u.pathname === '' || u.pathname === '/' ? '/' : decodeURIComponent(u.pathname.slice(1)),
      username: u.username === '' ? 'guest' : decodeURIComponent(u.username),
      password: u.password === '' ? 'guest' : decodeURIComponent(u.password),
      search: u.search,
    };
  } catch {
    return invalid(`${allowed} (a %-escape in it is broken)`);
  }
};

/** Build the URL the AMQP client connects to; every part escaped. */
export function formatAmqpUrl(p: AmqpUrlParts): string {
  const h = p.hostname.includes(':') ? `[${p.hostname}]` : p.hostname;
  const auth = `${encodeURIComponent(p.username)}:${encodeURIComponent(p.password)}`;
  return `${p.tls ? 'amqps' : 'amqp'}://${auth}@${h}:${p.port}/${encodeURIComponent(p.vhost)}${p.search}`;
}

/** `amqp://user:secret@host` → `amqp://user:***@host` (works on text that is not a valid URL, too). */
export function redactUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/[^:@/?#]*:)[^@]*@/, '$1***@');
}

/** Levenshtein distance, case-insensitive: for "did you mean". */
export function distance(a: string, b: string): number {
  const s = a.toLowerCase();
  const t = b.toLowerCase();
  let prev = Array.from({ length: t.length + 1 }, (_, j) => j);
  for (let i = 1; i <= s.length; i++) {
    const row = [i];
    for (let j = 1; j <= t.length; j++) {
      const cost = s[i - 1] === t[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[t.length] ?? 0;
}

/**
 * The candidate nearest to `word`, when it is a plausible typo (small edit distance) or abbreviation
 * (`MinLevel` for `MinimumLevel`: its letters appear in order in the candidate).
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.max(2, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(word, c);
    const plausible = d <= limit || (word.length >= 3 && isSubsequence(word.toLowerCase(), c.toLowerCase()));
    if (plausible && d < bestDistance) [best, bestDistance] = [c, d];
  }
  return best;
}

function isSubsequence(short: string, long: string): boolean {
  let i = 0;
  for (const ch of long) if (ch === short[i]) i++;
  return i === short.length;
}
