/**
 * Public surface of AmiClient (ami/client.ts): options, events, errors. Split from client.ts to
 * keep each file readable; import from client.ts, which re-exports all of it.
 */
import type tls from 'node:tls';
import type { AmiAuthError } from './errors.js';
import type { BackoffOptions } from '../util/backoff.js';
import type { AmiMessage } from './protocol.js';

export type AmiClientState = 'idle' | 'connecting' | 'open' | 'closing' | 'closed';

/** Why a connection (or an attempt) ended. */
export type DisconnectReason =
  | 'connect-failed'
  | 'connect-timeout'
  | 'login-timeout'
  | 'login-failed'
  | 'auth-failed'
  | 'peer-closed'
  | 'socket-error'
  | 'protocol-error'
  | 'ping-timeout'
  | 'shutdown'
  | 'closed';

/** Syslog-level logger; the client never passes the secret to it. */
export interface AmiLogger {
  debug(msg: string, meta?: object): void;
  info(msg: string, meta?: object): void;
  warning(msg: string, meta?: object): void;
  error(msg: string, meta?: object): void;
  crit(msg: string, meta?: object): void;
}

const noop = (): void => undefined;
/** The default: logs nothing. */
export const silentLogger: AmiLogger = { debug: noop, info: noop, warning: noop, error: noop, crit: noop };

export interface AmiClientOptions {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly secret: string;
  /** 'md5': Challenge, then Login with Key = md5(challenge + secret). Default 'plain'. */
  readonly authType?: 'plain' | 'md5';
  /** Connect with node:tls using these options when set. */
  readonly tls?: tls.ConnectionOptions | undefined;
  /** Login `Events:` value. Default 'call,user,system'. */
  readonly events?: string;
  /** Default deadline of an action. Default 10000. */
  readonly actionTimeoutMs?: number;
  /** Pause between a Pong and the next Ping; 0 disables pings. Default 5000. */
  readonly pingIntervalMs?: number;
  /** A Ping unanswered this long means a silent peer: the socket is reset. Default 5000. */
  readonly pingTimeoutMs?: number;
  /** From the TCP/TLS connect until the banner. Default 5000. */
  readonly connectTimeoutMs?: number;
  /** Between reconnect attempts. Default { baseMs: 200, capMs: 15000 }. */
  readonly backoff?: BackoffOptions;
  /** After a refused login (nothing changes until a person fixes it). Default { baseMs: 5000, capMs: 60000 }. */
  readonly authBackoff?: BackoffOptions;
  readonly logger?: AmiLogger | undefined;
  /** Jitter source in [0, 1). Default Math.random. */
  readonly random?: () => number;
  /**
   * Only these events reach 'event' listeners (FullyBooted and Shutdown are always kept: the
   * client needs them); the rest are read but never turned into messages. Default: every event.
   * The bridge follows 3 of the 14 events a job produces; skipping the others halves the parsing
   * and its garbage (docs/benchmarks.md).
   */
  readonly keepEvents?: readonly string[] | undefined;
}

/** The options AmiClient fills in when they are not given (each documented on AmiClientOptions). */
export const AMI_CLIENT_DEFAULTS = {
  authType: 'plain',
  events: 'call,user,system',
  actionTimeoutMs: 10_000,
  pingIntervalMs: 5000,
  pingTimeoutMs: 5000,
  connectTimeoutMs: 5000,
  backoff: { baseMs: 200, capMs: 15_000 },
  authBackoff: { baseMs: 5000, capMs: 60_000 },
  random: Math.random,
} as const satisfies Required<Omit<AmiClientOptions, 'host' | 'port' | 'username' | 'secret' | 'tls' | 'logger' | 'keepEvents'>>;

export interface DisconnectInfo {
  readonly reason: DisconnectReason;
  readonly error?: Error;
}

export interface ReconnectInfo {
  /** Failed attempts since the last successful login (1 for the first retry). */
  readonly attempt: number;
  readonly delayMs: number;
  readonly reason: DisconnectReason;
}

/** Events of AmiClient. Nothing is emitted as 'error': a client never crashes its process. */
export interface AmiClientEvents {
  /** Logged in; actions may be sent. */
  connected: [];
  /** A logged-in session ended; every pending action has already been rejected. */
  disconnected: [info: DisconnectInfo];
  /** The next attempt is scheduled after `delayMs`. */
  reconnecting: [info: ReconnectInfo];
  /** Asterisk answered "Authentication failed"; retrying continues with the slow authBackoff. */
  authFailed: [error: AmiAuthError];
  fullyBooted: [event: AmiMessage];
  /** Asterisk is stopping or restarting; the socket closes next. */
  shutdown: [event: AmiMessage];
  /** Every message with an `Event:` header, including those carrying an ActionID (OriginateResponse). */
  event: [event: AmiMessage];
  /** close() finished. */
  closed: [];
}

export interface ActionOptions {
  /** Deadline for the Response. Default: the client's actionTimeoutMs. */
  readonly timeoutMs?: number;
  /**
   * The ActionID to use, for callers that must register it before the action is written (events
   * may arrive before the Response). Must be unique: a pending one is refused. Default: a fresh UUID.
   */
  readonly actionId?: string;
}

/** Defined with the other error classes; re-exported here for AmiClient's users. */
export { AmiActionTimeoutError } from './errors.js';

/** A method called in a state that does not allow it (e.g. start() twice). */
export class AmiClientStateError extends Error {
  readonly code = 'AMI_STATE' as const;
  constructor(message: string) {
    super(message);
    this.name = 'AmiClientStateError';
  }
}
