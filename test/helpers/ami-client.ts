/**
 * Helpers for AmiClient tests: a client with small timings that is closed after the test, waits
 * on events (never sleeps), and a TCP port that refuses connections.
 */
import { once, type EventEmitter } from 'node:events';
import net from 'node:net';
import { AmiClient, type AmiClientOptions } from '../../src/ami/client.js';

/** Both `t` (a test context) and node:test's `after` fit. */
type Cleanup = { after: (fn: () => Promise<void>) => void };

/** A client for 127.0.0.1:port with test timings (no pings unless asked); closed after the test. */
export function clientFor(port: number, t: Cleanup, extra: Partial<AmiClientOptions> = {}): AmiClient {
  const client = new AmiClient({
    host: '127.0.0.1',
    port,
    username: 'auditorai',
    secret: 'simulator',
    actionTimeoutMs: 2000,
    pingIntervalMs: 0,
    connectTimeoutMs: 1000,
    backoff: { baseMs: 5, capMs: 20 },
    authBackoff: { baseMs: 5, capMs: 20 },
    ...extra,
  });
  t.after(() => client.close());
  return client;
}

/** start() and wait for the first 'connected'. */
export async function onConnected(client: AmiClient): Promise<void> {
  const wait = once(client, 'connected');
  client.start();
  await wait;
}

/**
 * Resolves with the first `n` payloads of `name` (the first argument of each emit). `then` runs
 * once the listener is on (e.g. start the client), so nothing emitted by it can be missed.
 */
export function onNth<T = unknown>(emitter: EventEmitter, name: string, n: number, then?: () => void): Promise<T[]> {
  return new Promise((resolve) => {
    const seen: T[] = [];
    const listener = (payload: T): void => {
      seen.push(payload);
      if (seen.length < n) return;
      emitter.off(name, listener);
      resolve(seen);
    };
    emitter.on(name, listener);
    then?.();
  });
}

/** A loopback port nobody listens on (it was free a moment ago): connections are refused. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
