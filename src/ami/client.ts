/**
 * One AMI connection: connect (TCP or TLS), banner, login (plain or MD5 challenge), ActionID →
 * pending map, event fan-out, Ping deadline, reconnect forever with capped backoff + jitter.
 *
 * State: idle → connecting ⇄ open → closing → closed. `connecting` covers the TCP connect, the
 * login and the wait before a retry. The login is a small synchronous handshake (not awaited
 * promises) so that `connected` is emitted before the events Asterisk sends right after it.
 *
 * Read top to bottom: the options, events and states; the client; the ActionID → pending map;
 * one socket's record (open, name why it closed, close politely); the outage log and pacing.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { errorText } from '../errors.js';
import { expBackoff, type BackoffOptions } from '../util/backoff.js';
import {
  AmiActionTimeoutError,
  AmiAuthError,
  AmiClientStateError,
  AmiConnectionError,
  AmiProtocolError,
  AmiSerializeError,
} from './errors.js';
import { firstLoginStep, nextLoginStep, type LoginPhase, type LoginStep } from './login.js';
import { AmiParser, getHeader, serialize, type AmiMessage, type AmiPair } from './protocol.js';

// ---- Options, events, states ----

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

// ---- The client ----

const LOGOFF_TIMEOUT_MS = 1000;
/** The events the client itself follows, whatever its `keepEvents`. */
export const CLIENT_EVENTS: readonly string[] = ['FullyBooted', 'Shutdown'];
const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

export class AmiClient extends EventEmitter<AmiClientEvents> {
  private readonly opts: Required<Omit<AmiClientOptions, 'tls' | 'logger' | 'keepEvents'>> & Pick<AmiClientOptions, 'tls'>;
  /** The parser's event filter (keepEvents plus what the client itself needs), or undefined: all. */
  private readonly keepEvents: ReadonlySet<string> | undefined;
  private readonly log: AmiLogger;
  private readonly pending = new PendingMap<AmiMessage>();
  private current: Conn | undefined;
  private stateValue: AmiClientState = 'idle';
  private readonly outage: Outage;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private closing: Promise<void> | undefined;
  private lastErrorValue: Error | undefined;
  private readonly connHandlers: ConnHandlers = {
    onData: (conn, chunk) => this.onData(conn, chunk),
    onClose: (conn) => this.lose(conn, closeReason(conn), conn.error),
  };

  constructor(options: AmiClientOptions) {
    super();
    this.opts = { ...AMI_CLIENT_DEFAULTS, ...options };
    this.log = options.logger ?? silentLogger;
    this.keepEvents = options.keepEvents === undefined ? undefined : new Set([...options.keepEvents, ...CLIENT_EVENTS]);
    const { host, port } = this.opts;
    if (!Number.isInteger(port) || port < 1 || port > 65_535) throw new RangeError(`AMI port must be 1-65535, not ${port}`);
    this.outage = new Outage(this.opts, this.log, `${host}:${port}`);
  }

  get state(): AmiClientState {
    return this.stateValue;
  }
  /** Logged in and usable. */
  get connected(): boolean {
    return this.stateValue === 'open';
  }
  /** Why the last connection or attempt failed (undefined before the first failure). */
  get lastError(): Error | undefined {
    return this.lastErrorValue;
  }

  /** Starts connecting; reconnects forever until close(). Wait with `once(client, 'connected')`. */
  start(): void {
    if (this.stateValue !== 'idle') throw new AmiClientStateError(`AmiClient.start() in state ${this.stateValue}`);
    this.connect();
  }

  /**
   * Sends one action with a fresh ActionID; resolves with its Response (Success, Error, Goodbye:
   * the caller reads `Response:`). Rejects with AmiConnectionError when not open or when the
   * connection drops, AmiSerializeError (nothing written) for a bad value, AmiActionTimeoutError.
   */
  action(pairs: readonly AmiPair[], options: ActionOptions = {}): Promise<AmiMessage> {
    try {
      const conn = this.current;
      if (this.stateValue !== 'open' || conn === undefined) throw new AmiConnectionError(`AMI not connected (state ${this.stateValue})`);
      if (pairs.some(([key]) => key.toLowerCase() === 'actionid'))
        throw new AmiSerializeError('ActionID is set by AmiClient (use options.actionId)');
      const id = options.actionId ?? randomUUID();
      if (this.pending.has(id)) throw new AmiSerializeError(`ActionID ${id} is already pending`);
      return this.send(conn, pairs, options.timeoutMs ?? this.opts.actionTimeoutMs, id);
    } catch (err) {
      return Promise.reject(asError(err));
    }
  }

  /** Idempotent: stops reconnecting, Logoff (bounded) if open, ends the socket, rejects what is pending. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.stateValue = 'closing';
    clearTimeout(this.reconnectTimer);
    const conn = this.current;
    if (conn !== undefined) {
      conn.closing = true;
      if (conn.phase === 'open') await this.send(conn, [['Action', 'Logoff']], LOGOFF_TIMEOUT_MS).catch(noop);
      await endSocket(conn.socket);
      this.lose(conn, 'closed');
    }
    this.pending.rejectAll(() => new AmiConnectionError('AMI client closed'));
    this.stateValue = 'closed';
  }

  private connect(): void {
    this.stateValue = 'connecting';
    const { host, port } = this.opts;
    let conn: Conn;
    try {
      conn = openConn({ host, port, tlsOptions: this.opts.tls, keepEvents: this.keepEvents }, this.connHandlers);
    } catch (err) {
      // e.g. unreadable TLS material: never throw from a timer; report it and keep trying.
      this.lastErrorValue = asError(err);
      return this.scheduleReconnect('connect-failed', this.lastErrorValue);
    }
    this.current = conn;
    const { connectTimeoutMs } = this.opts;
    this.deadline(
      conn,
      connectTimeoutMs,
      'connect-timeout',
      () => new Error(`no AMI banner from ${host}:${port} within ${connectTimeoutMs} ms`),
    );
  }

  private onData(conn: Conn, chunk: Buffer): void {
    let frames;
    try {
      frames = conn.parser.push(chunk);
    } catch (err) {
      // A hostile or broken peer: drop the connection, never the process.
      this.log.error('AMI protocol error; resetting the connection', { error: errorText(err) });
      this.fail(conn, 'protocol-error', asError(err));
      return;
    }
    for (const frame of frames) {
      if (this.current !== conn) return;
      try {
        if (frame.kind === 'message') this.dispatch(conn, frame.message);
        else this.onBanner(conn, frame.text);
      } catch (err) {
        this.log.error('AMI message handler threw', { error: errorText(err) });
      }
    }
  }

  /** Hot path: one compare for an event whose first header is Event (Asterisk's order). */
  private dispatch(conn: Conn, message: AmiMessage): void {
    const first = message.pairs[0];
    const eventName = first !== undefined && first[0] === 'Event' ? first[1] : getHeader(message, 'Event');
    if (eventName !== undefined) {
      if (eventName === 'FullyBooted') this.emit('fullyBooted', message);
      else if (eventName === 'Shutdown') this.onShutdown(conn, message);
      this.emit('event', message);
      return;
    }
    const id = getHeader(message, 'ActionID');
    if (id === undefined) return;
    if ((conn.phase === 'login' || conn.phase === 'challenge') && id === conn.handshakeId) {
      clearTimeout(conn.timer);
      this.loginStep(conn, nextLoginStep(this.opts, conn.phase, message));
    } else if (!this.pending.resolve(id, message)) this.log.debug('AMI response for no pending action (late?)', { action_id: id });
  }

  private onShutdown(conn: Conn, message: AmiMessage): void {
    conn.sawShutdown = true;
    this.log.warning('Asterisk is shutting down', { restart: getHeader(message, 'Restart') });
    this.emit('shutdown', message);
  }

  private onBanner(conn: Conn, banner: string): void {
    clearTimeout(conn.timer);
    this.loginStep(conn, firstLoginStep(this.opts, banner));
  }

  private loginStep(conn: Conn, step: LoginStep): void {
    if (step.kind === 'send') this.handshake(conn, step.phase, step.pairs);
    else if (step.kind === 'logged-in') this.onLoggedIn(conn);
    else if (step.kind === 'not-ami') this.fail(conn, 'protocol-error', new AmiProtocolError(step.message));
    else if (step.kind === 'auth-failed') this.onAuthFailed(conn, `AMI login refused for user "${this.opts.username}": ${step.message}`);
    else this.fail(conn, 'login-failed', new AmiConnectionError(`AMI login refused: ${step.message}`));
  }

  /** Writes a login action; its Response comes back to loginStep through dispatch. */
  private handshake(conn: Conn, phase: LoginPhase, pairs: readonly AmiPair[]): void {
    const id = randomUUID();
    let wire: string;
    try {
      wire = serialize([...pairs, ['ActionID', id]]);
    } catch (err) {
      // A username or secret that cannot be sent is a deployment error, as a wrong one is.
      this.onAuthFailed(conn, `AMI login cannot be sent: ${errorText(err)}`);
      return;
    }
    conn.phase = phase;
    conn.handshakeId = id;
    const action = phase === 'login' ? 'Login' : 'Challenge';
    this.deadline(conn, this.opts.actionTimeoutMs, 'login-timeout', () => new AmiActionTimeoutError(action, this.opts.actionTimeoutMs));
    writeCorked(conn, wire);
  }

  private onAuthFailed(conn: Conn, text: string): void {
    // Not logged here: the outage's first failure is logged by scheduleReconnect, and the
    // composition root reports a deployment error at CRITICAL from this event.
    const error = new AmiAuthError(`${text} (check [AsteriskAMI] User/Secret and manager.conf)`);
    this.outage.authFailing = true;
    this.emitSafe('authFailed', error);
    this.fail(conn, 'auth-failed', error);
  }

  private onLoggedIn(conn: Conn): void {
    conn.phase = 'open';
    this.stateValue = 'open';
    this.outage.ended({ host: this.opts.host, port: this.opts.port, user: this.opts.username });
    this.schedulePing(conn);
    this.emit('connected');
  }

  private schedulePing(conn: Conn): void {
    if (this.opts.pingIntervalMs <= 0) return;
    this.pingTimer = setTimeout(() => {
      if (this.current !== conn || conn.phase !== 'open') return;
      this.send(conn, [['Action', 'Ping']], this.opts.pingTimeoutMs).then(
        () => {
          if (this.current === conn && !conn.closing) this.schedulePing(conn);
        },
        (err: unknown) => {
          if (err instanceof AmiActionTimeoutError)
            this.fail(conn, 'ping-timeout', new Error(`AMI peer silent: no Pong within ${this.opts.pingTimeoutMs} ms`));
        },
      );
    }, this.opts.pingIntervalMs);
  }

  /** Serializes first (a refusal writes nothing), registers the deadline, then one write. */
  private send(conn: Conn, pairs: readonly AmiPair[], timeoutMs: number, id: string = randomUUID()): Promise<AmiMessage> {
    const wire = serialize([...pairs, ['ActionID', id]]);
    const name = pairs.find(([key]) => key.toLowerCase() === 'action')?.[1] ?? '(no Action)';
    const response = this.pending.add(id, timeoutMs, () => new AmiActionTimeoutError(name, timeoutMs));
    writeCorked(conn, wire);
    return response;
  }

  /** The connection's one timer (banner, then each login step): fails it unless cleared in time. */
  private deadline(conn: Conn, ms: number, reason: DisconnectReason, error: () => Error): void {
    conn.timer = setTimeout(() => this.fail(conn, reason, error()), ms);
  }

  /** Ends this connection on our side with a reason; `lose` follows at once. */
  private fail(conn: Conn, reason: DisconnectReason, error: Error): void {
    conn.socket.destroy();
    this.lose(conn, reason, error);
  }

  /** The one place a connection ends: runs once per connection, whichever way it ended. */
  private lose(conn: Conn, reason: DisconnectReason, error?: Error): void {
    if (this.current !== conn) return;
    this.current = undefined;
    clearTimeout(conn.timer);
    clearTimeout(this.pingTimer);
    conn.socket.destroy();
    if (error !== undefined) this.lastErrorValue = error;
    const wasOpen = conn.phase === 'open';
    const stopping = this.stateValue === 'closing' || this.stateValue === 'closed';
    if (!stopping) this.stateValue = 'connecting';
    this.pending.rejectAll(() => new AmiConnectionError(`AMI connection lost (${reason})`, { cause: error }));
    if (wasOpen) this.emitSafe('disconnected', error === undefined ? { reason } : { reason, error });
    if (!stopping) this.scheduleReconnect(reason, error);
  }

  private scheduleReconnect(reason: DisconnectReason, error: Error | undefined): void {
    const { attempt, delayMs } = this.outage.next(reason, error);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.stateValue === 'connecting') this.connect();
    }, delayMs);
    this.emitSafe('reconnecting', { attempt, delayMs, reason });
  }

  /** Rare events: a throwing listener is logged, never thrown into a socket callback. */
  private emitSafe<K extends keyof AmiClientEvents>(name: K, ...args: AmiClientEvents[K]): void {
    try {
      (this.emit as (name: K, ...args: AmiClientEvents[K]) => boolean)(name, ...args);
    } catch (err) {
      this.log.error(`AmiClient '${name}' listener threw`, { error: errorText(err) });
    }
  }
}

// ---- Correlation: ActionID → the action's Response ----

interface Entry<T> {
  readonly deferred: PromiseWithResolvers<T>;
  readonly timer: NodeJS.Timeout;
}

/**
 * `Map<id, Deferred>` with a timer per entry. Every entry ends exactly once: settled by `resolve`,
 * by its deadline, or by `rejectAll` (a disconnect) — and leaves the map when it ends.
 */
export class PendingMap<T> {
  private readonly entries = new Map<string, Entry<T>>();

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /**
   * Registers `id`; its promise rejects with `onTimeout()` after `timeoutMs`. The caller checks
   * `has(id)` first: a duplicate id is a bug and throws here.
   */
  add(id: string, timeoutMs: number, onTimeout: () => Error): Promise<T> {
    if (this.entries.has(id)) throw new Error(`duplicate pending id ${id}`);
    const deferred = Promise.withResolvers<T>();
    const timer = setTimeout(() => {
      this.entries.delete(id);
      deferred.reject(onTimeout());
    }, timeoutMs);
    this.entries.set(id, { deferred, timer });
    return deferred.promise;
  }

  /** Settles `id` with `value`; false when nothing waits for it (late or unknown answer). */
  resolve(id: string, value: T): boolean {
    const entry = this.take(id);
    entry?.deferred.resolve(value);
    return entry !== undefined;
  }

  /** Removes `id` and stops its timer; the entry, or undefined when nothing waits for it. */
  private take(id: string): Entry<T> | undefined {
    const entry = this.entries.get(id);
    if (entry === undefined) return undefined;
    this.entries.delete(id);
    clearTimeout(entry.timer);
    return entry;
  }

  /** Rejects every entry at once and empties the map (the connection is gone). */
  rejectAll(makeError: () => Error): void {
    if (this.entries.size === 0) return;
    const entries = [...this.entries.values()];
    this.entries.clear();
    for (const entry of entries) {
      clearTimeout(entry.timer);
      entry.deferred.reject(makeError());
    }
  }
}

// ---- One socket ----
// One AMI socket's bookkeeping for AmiClient: the connection record, opening it (TCP or TLS,
// Nagle off: actions are small and latency matters), naming why it closed, closing it politely.

const CLOSE_GRACE_MS = 1000;

/** One TCP connection and its login progress. */
export interface Conn {
  readonly socket: net.Socket;
  readonly parser: AmiParser;
  phase: 'banner' | LoginPhase | 'open';
  handshakeId: string;
  timer: NodeJS.Timeout | undefined;
  error: Error | undefined;
  sawShutdown: boolean;
  closing: boolean;
  /** The socket is corked until the end of this turn of the event loop (see writeCorked). */
  corked: boolean;
}

/** What the client does with a connection's bytes and its end. */
export interface ConnHandlers {
  onData(conn: Conn, chunk: Buffer): void;
  /** Once, however the socket ended; `conn.error` holds the socket's first error, if any. */
  onClose(conn: Conn): void;
}

/**
 * Opens a socket (TLS when `tlsOptions` is set) with a fresh parser (keeping only `keepEvents`,
 * when set), wired to `handlers` before any byte can arrive.
 */
export function openConn(
  where: { host: string; port: number; tlsOptions: tls.ConnectionOptions | undefined; keepEvents: ReadonlySet<string> | undefined },
  handlers: ConnHandlers,
): Conn {
  const { host, port, tlsOptions, keepEvents } = where;
  const socket = tlsOptions ? tls.connect({ ...tlsOptions, host, port }) : net.connect({ host, port });
  socket.setNoDelay(true);
  const conn: Conn = {
    socket,
    parser: new AmiParser({ expectBanner: true, keepEvents }),
    phase: 'banner',
    handshakeId: '',
    timer: undefined,
    error: undefined,
    sawShutdown: false,
    closing: false,
    corked: false,
  };
  socket.on('data', (chunk: Buffer) => handlers.onData(conn, chunk));
  socket.on('error', (err) => {
    conn.error ??= err;
  });
  socket.on('close', () => handlers.onClose(conn));
  return conn;
}

/** Why a socket that closed by itself closed, from what was seen on it. */
export function closeReason(conn: Conn): DisconnectReason {
  if (conn.closing) return 'closed';
  if (conn.phase === 'banner') return 'connect-failed';
  if (conn.sawShutdown) return 'shutdown';
  return conn.error === undefined ? 'peer-closed' : 'socket-error';
}

/** Half-closes and waits for the peer to close, at most `graceMs`; then destroys. */
export function endSocket(socket: net.Socket, graceMs = CLOSE_GRACE_MS): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, graceMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.end();
  });
}

/**
 * Writes through a cork that opens on the first write of a turn and closes at setImmediate: the
 * actions of every job started in one turn of the event loop leave in one writev, not one
 * syscall each (under load several Originates share one; docs/benchmarks.md). end() flushes a cork.
 */
export function writeCorked(conn: Conn, wire: string): void {
  if (!conn.corked) {
    conn.corked = true;
    conn.socket.cork();
    setImmediate(() => {
      conn.corked = false;
      conn.socket.uncork();
    });
  }
  conn.socket.write(wire);
}

// ---- Outages ----
// One AMI outage at a time: how many attempts it took, since when, and how long to wait before
// the next one. It logs the first failure of an outage at warning and the rest at debug, so a
// long outage is one line, not one per retry. No timers: the client schedules.

export interface OutagePacing {
  /** Between reconnect attempts. */
  readonly backoff: BackoffOptions;
  /** After a refused login (nothing changes until a person fixes it). */
  readonly authBackoff: BackoffOptions;
  /** Jitter source in [0, 1). */
  readonly random: () => number;
}

export class Outage {
  /** Attempts since the last successful login. */
  private attempts = 0;
  private since: number | undefined;
  /** The last failure was a refused login: wait with the slow authBackoff. */
  authFailing = false;

  constructor(
    private readonly pacing: OutagePacing,
    private readonly log: AmiLogger,
    private readonly peer: string,
  ) {}

  /** Counts a failed or lost connection and returns the delay before the next attempt. */
  next(reason: DisconnectReason, error: Error | undefined): { attempt: number; delayMs: number } {
    const { backoff, authBackoff, random } = this.pacing;
    const delayMs = expBackoff(this.attempts, this.authFailing ? authBackoff : backoff, random);
    this.attempts++;
    const meta = { reason, error: error?.message, attempt: this.attempts, delay_ms: delayMs };
    if (this.since === undefined) {
      this.since = Date.now();
      this.log.warning(`AMI connection to ${this.peer} unavailable; reconnecting`, meta);
    } else this.log.debug('AMI reconnect attempt failed', meta);
    return { attempt: this.attempts, delayMs };
  }

  /** Logged in: logs the connection (or its restoration, with how long the outage lasted) and resets. */
  ended(meta: Record<string, unknown>): void {
    if (this.since === undefined) this.log.info('AMI connected', meta);
    else this.log.info('AMI connection restored', { ...meta, duration_ms: Date.now() - this.since, attempts: this.attempts });
    this.attempts = 0;
    this.authFailing = false;
    this.since = undefined;
  }
}
