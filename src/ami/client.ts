/**
 * One AMI connection: connect (TCP or TLS), banner, login (plain or MD5 challenge), ActionID →
 * pending map, event fan-out, Ping deadline, reconnect forever with capped backoff + jitter.
 *
 * State: idle → connecting ⇄ open → closing → closed. `connecting` covers the TCP connect, the
 * login and the wait before a retry. The login is a small synchronous handshake (not awaited
 * promises) so that `connected` is emitted before the events Asterisk sends right after it.
 */
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { errorText } from '../errors.js';
import { AmiActionTimeoutError, AmiAuthError, AmiConnectionError, AmiProtocolError, AmiSerializeError } from './errors.js';
import { AMI_CLIENT_DEFAULTS, AmiClientStateError, silentLogger } from './client-types.js';
import type { ActionOptions, AmiClientEvents, AmiClientOptions, AmiClientState, AmiLogger, DisconnectReason } from './client-types.js';
import { closeReason, endSocket, openConn, writeCorked, type Conn, type ConnHandlers } from './connection.js';
import { firstLoginStep, nextLoginStep, type LoginPhase, type LoginStep } from './login.js';
import { Outage } from './outage.js';
import { getHeader, type AmiMessage, type AmiPair } from './protocol.js';
import { serialize } from './serialize.js';

export * from './client-types.js';

const LOGOFF_TIMEOUT_MS = 1000;
/** The events the client itself follows, whatever its `keepEvents`. */
export const CLIENT_EVENTS: readonly string[] = ['FullyBooted', 'Shutdown'];
const noop = (): void => undefined;
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
    this.emitSafe('closed');
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
