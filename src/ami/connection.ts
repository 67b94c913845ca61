/**
 * One AMI socket's bookkeeping for AmiClient: the connection record, opening it (TCP or TLS,
 * Nagle off: actions are small and latency matters), naming why it closed, closing it politely.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { DisconnectReason } from './client-types.js';
import type { LoginPhase } from './login.js';
import { AmiParser } from './protocol.js';

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
