/**
 * A local stand-in for Asterisk 22's AMI, for tests, benchmarks and `audio-convert simulate-asterisk`.
 * It behaves like the recordings in test/fixtures/ami-transcripts and runs the shipped dialplan
 * (config/asterisk/extensions.conf) — for real with sox, or instantly. Test controls reproduce
 * the failures the bridge must survive: restarts, drops, silence, refused logins, hung steps,
 * missing contexts, event reorderings.
 */
import { EventEmitter } from 'node:events';
import { createServer as createTcpServer, isIP, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import type { AmiMessage } from '../ami/protocol.js';
import type { OutcomeOverride } from './call.js';
import { EmulatorCore } from './core.js';
import { shutdown } from './events.js';
import { AmiSession } from './session.js';
import type { EmulatorEvents, EmulatorOptions, EmulatorStats, ReorderMode } from './types.js';

export type { EmulatorEvents, EmulatorOptions, EmulatorStats, EmulatorUser, ReorderMode } from './types.js';
export type { OutcomeOverride } from './call.js';

/** Options of restart(). */
export interface RestartOptions {
  /** How long the port refuses connections; default 1000 ms. */
  downMs?: number;
  /** true (default): `core restart now` — channel teardown events, then Event: Shutdown. false: kill -9, sockets just close. */
  graceful?: boolean;
  /**
   * Graceful only: time between the channel teardown and Shutdown, when every action gets
   * "Asterisk is shutting down" (16 s recorded). Default 0.
   */
  shuttingDownMs?: number;
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

export class AsteriskEmulator extends EventEmitter<EmulatorEvents> {
  readonly host: string;
  private portNumber = 0;
  private readonly core: EmulatorCore;
  private server: Server | undefined;
  private closed = false;
  /** Resolvers of restart()'s waits, so close() does not leave a restart pending forever. */
  private readonly wakers = new Set<() => void>();

  private constructor(private readonly opts: EmulatorOptions) {
    super();
    this.host = opts.host ?? '127.0.0.1';
    if (!isLoopback(this.host) && opts.allowNonLoopback !== true) {
      throw new Error(`AMI emulator: refusing to listen on non-loopback address ${this.host} (set allowNonLoopback)`);
    }
    // The core emits through us; the cast only bridges EventEmitter's conditional argument type.
    this.core = new EmulatorCore(opts, (name, ...args) => {
      (this.emit as (event: string, ...rest: unknown[]) => boolean)(name, ...args);
    });
  }

  /** Starts listening; resolves once the port is open. */
  static async start(opts: EmulatorOptions = {}): Promise<AsteriskEmulator> {
    const emulator = new AsteriskEmulator(opts);
    await emulator.listen(opts.port ?? 0);
    return emulator;
  }

  get port(): number {
    return this.portNumber;
  }

  get stats(): EmulatorStats {
    return this.core.stats;
  }

  /** The last 1000 messages received, oldest first (a copy). */
  get received(): AmiMessage[] {
    return this.core.received();
  }

  /** Sessions currently connected. */
  get sessionCount(): number {
    return this.core.sessions.size;
  }

  private listen(port: number): Promise<void> {
    const onSocket = (socket: Socket): void => {
      if (this.closed) {
        socket.destroy();
        return;
      }
      this.core.sessions.add(new AmiSession(socket, this.core));
    };
    const tls = this.opts.tls;
    const server = tls === undefined ? createTcpServer(onSocket) : createTlsServer({ key: tls.key, cert: tls.cert }, onSocket);
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.host, () => {
        server.off('error', reject);
        server.on('error', () => undefined);
        const address = server.address();
        this.portNumber = typeof address === 'object' && address !== null ? address.port : port;
        this.emit('listening', this.portNumber);
        resolve();
      });
    });
  }

  private stopListening(): void {
    this.server?.close();
    this.server = undefined;
  }

  /**
   * Abruptly closes every client socket (no Shutdown). Asterisk itself lives on: later events of
   * running jobs go to whoever logs in next.
   */
  dropConnections(): void {
    for (const session of this.core.sessions) session.close('abrupt');
  }

  /**
   * Restarts "Asterisk": graceful = `core restart now` (restart-core-restart-now.txt): the live
   * channels' teardown events, Event: Shutdown to every session reading system events, close;
   * or kill -9 (restart-kill-9.txt): sockets just close. Then the port refuses connections for
   * downMs and opens again with Uptime 0. Steps in flight run on as orphans; nobody hears of them.
   */
  async restart(options: RestartOptions = {}): Promise<void> {
    const core = this.core;
    const graceful = options.graceful ?? true;
    if (graceful) {
      const parts = [...core.calls].map((call) => call.restartEvents());
      core.broadcast(parts.flatMap((p) => p.first));
      core.broadcast(parts.flatMap((p) => p.then));
    }
    core.forgetCalls(); // from here on, running steps are orphans
    if (graceful) {
      const wait = options.shuttingDownMs ?? 0;
      if (wait > 0) {
        core.shuttingDown = true;
        await this.pause(wait);
      }
      core.broadcast([shutdown()]);
      for (const session of core.sessions) session.close('graceful');
    } else {
      for (const session of core.sessions) session.close('abrupt');
    }
    core.shuttingDown = false;
    this.stopListening();
    this.emit('restart', 'down');
    await this.pause(options.downMs ?? 1000);
    if (this.closed) return;
    core.startedAt = Date.now();
    await this.listen(this.portNumber);
    this.emit('restart', 'up');
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.wakers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.wakers.add(wake);
    });
  }

  /** A hung Asterisk: bytes are read, nothing is answered, no events are sent. */
  goSilent(on: boolean): void {
    this.core.silent = on;
  }

  /** Every Login is refused ("Authentication failed" after loginFailDelayMs, then close). */
  refuseLogins(on: boolean): void {
    this.core.refuseLogins = on;
  }

  /** Conversion steps never end by themselves: after conversionTimeoutMs, Status FAILED / Detail APPERROR (final-timeout.txt). */
  hangConversions(on: boolean): void {
    this.core.hangConversions = on;
  }

  /**
   * Removes (or restores) a context: Originate into it → "Extension does not exist."; a Local
   * channel into a missing hold context fails after queuing (recorded).
   */
  setDialplan(opts: { convertContextPresent?: boolean; holdContextPresent?: boolean }): void {
    if (opts.convertContextPresent !== undefined) this.core.dialplan.convertContextPresent = opts.convertContextPresent;
    if (opts.holdContextPresent !== undefined) this.core.dialplan.holdContextPresent = opts.holdContextPresent;
  }

  /** Which recorded event reordering new jobs use. */
  setReorder(mode: ReorderMode): void {
    this.core.reorder = mode;
  }

  /** Drops every connection right after the n-th Originate accepted from now (its Response is sent, its events are not). 0 disarms. */
  dropAfterOriginates(n: number): void {
    this.core.armDrop(n);
  }

  /** Extra time each conversion step takes. */
  setLatency(ms: number): void {
    this.core.latencyMs = Math.max(0, ms);
  }

  /** Forces the outcome of matching jobs after the path checks (works in instant mode too); undefined clears it. */
  setOutcomeOverride(fn: OutcomeOverride | undefined): void {
    this.core.outcomeOverride = fn;
  }

  /** Stops listening, closes every session, kills running sox processes. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.core.stopAll();
    for (const wake of [...this.wakers]) wake();
    const server = this.server;
    this.server = undefined;
    for (const session of this.core.sessions) session.close('abrupt');
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
