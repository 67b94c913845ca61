/**
 * AmiClient facing a hostile peer on its AMI port (a rogue or broken server, a man in the middle
 * without TLS): a net.Server in this file that talks AMI until the client is logged in, then does
 * something nasty. Whatever it does, the client resets the connection with a clear error, never
 * throws into the process, never holds more than its limits (64 KiB line, 1 MiB message), and
 * logs in again once the peer behaves. The parser's own properties are fuzzed in
 * test/unit/fuzz-protocol.test.ts. Waits are on events; nothing sleeps.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { AmiClient, DisconnectInfo, ReconnectInfo } from '../../src/ami/client.js';
import { AmiParser, getHeader } from '../../src/ami/protocol.js';
import { AmiProtocolError } from '../../src/ami/errors.js';
import { clientFor, onConnected, onNth } from '../helpers/ami-client.js';
import { Rng } from '../helpers/fuzz.js';

const BANNER = 'Asterisk Call Manager/11.0.0\r\n';
const TEST = { timeout: 20_000 };
/**
 * Loopback socket buffers can hold a few MiB between the peer's writes and the client's reads;
 * anything far above that means the client kept reading (and holding) what it should have refused.
 */
const MAX_ACCEPTED_BYTES = 24 * 1024 * 1024;

type Behaviour = (socket: net.Socket) => void | Promise<void>;

/** Speaks AMI (banner, Login, Ping, Logoff) and, once the client is logged in, runs `afterLogin`. */
class HostilePeer {
  /** Replaces the banner when set: what the peer sends first instead of speaking AMI. */
  instead: Behaviour | undefined;
  afterLogin: Behaviour | undefined;
  readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server) {
    server.on('connection', (socket) => this.serve(socket));
  }

  static async start(): Promise<HostilePeer> {
    const server = net.createServer();
    const peer = new HostilePeer(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return peer;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Resolves with the socket of the next connection once it has closed, with the bytes it wrote. */
  onNextClosed(): Promise<number> {
    return new Promise((resolve) => {
      this.server.once('connection', (socket: net.Socket) => socket.once('close', () => resolve(socket.bytesWritten)));
    });
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const instead = this.instead;
    if (instead !== undefined) {
      void instead(socket);
      return;
    }
    const parser = new AmiParser({ expectBanner: false });
    socket.on('data', (chunk: Buffer) => {
      for (const frame of parser.push(chunk)) {
        if (frame.kind !== 'message') continue;
        const id = `ActionID: ${getHeader(frame.message, 'ActionID') ?? ''}\r\n`;
        const action = getHeader(frame.message, 'Action')?.toLowerCase();
        if (action === 'login') {
          socket.write(`Response: Success\r\n${id}Message: Authentication accepted\r\n\r\n`);
          const then = this.afterLogin;
          if (then !== undefined) void then(socket);
        } else if (action === 'ping') socket.write(`Response: Success\r\n${id}Ping: Pong\r\nTimestamp: 1.0\r\n\r\n`);
        else if (action === 'logoff') socket.end(`Response: Goodbye\r\n${id}\r\n`);
      }
    });
    socket.write(BANNER);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** Writes `piece` again and again, honouring backpressure, until `limit` bytes or the socket closes. */
async function flood(socket: net.Socket, piece: Buffer, limit: number): Promise<void> {
  for (let sent = 0; sent < limit && !socket.destroyed; sent += piece.length) {
    if (!socket.write(piece)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }
}

/** The next 'disconnected' of `client`, and the 'connected' after it. */
function onResetAndBack(client: AmiClient): { reset: Promise<DisconnectInfo>; back: Promise<void> } {
  const reset = once(client, 'disconnected').then(([info]) => info as DisconnectInfo);
  const back = reset.then(() => once(client, 'connected')).then(() => undefined);
  return { reset, back };
}

void describe('AmiClient vs a hostile peer', () => {
  let peer: HostilePeer;
  before(async () => {
    peer = await HostilePeer.start();
  });
  after(() => peer?.close());

  void test(
    'garbage instead of a banner: protocol error "not an AMI server", retried; logs in once the peer speaks AMI',
    TEST,
    async (t) => {
      const rng = new Rng(7);
      peer.instead = (socket) => void socket.write(Buffer.concat([Buffer.from('HTTP/1.1 400 Bad Request\r\n'), rng.bytes(4096)]));
      const client = clientFor(peer.port, t);
      const retries = await onNth<ReconnectInfo>(client, 'reconnecting', 3, () => client.start());
      assert.ok(
        retries.every((r) => r.reason === 'protocol-error'),
        JSON.stringify(retries),
      );
      assert.ok(client.lastError instanceof AmiProtocolError);
      assert.match(client.lastError.message, /^not an AMI server: banner "HTTP\/1\.1 400 Bad Request"$/);
      const connected = once(client, 'connected');
      peer.instead = undefined;
      await connected;
      assert.equal(getHeader(await client.action([['Action', 'Ping']]), 'Ping'), 'Pong');
    },
  );

  void test('an endless line before the banner: reset at the 64 KiB line limit, not read to the end', TEST, async (t) => {
    const closed = peer.onNextClosed();
    peer.instead = (socket) => flood(socket, Buffer.alloc(64 * 1024, 0x41), 512 * 1024 * 1024);
    const client = clientFor(peer.port, t);
    const [retry] = await onNth<ReconnectInfo>(client, 'reconnecting', 1, () => client.start());
    assert.equal(retry?.reason, 'protocol-error');
    assert.match(client.lastError?.message ?? '', /^AMI line longer than 65536 bytes$/);
    const written = await closed;
    assert.ok(written < MAX_ACCEPTED_BYTES, `the client let the peer push ${written} bytes`);
    const connected = once(client, 'connected');
    peer.instead = undefined;
    await connected;
  });

  void test('an endless line after login: reset with a protocol error, bounded, then logged in again', TEST, async (t) => {
    const closed = peer.onNextClosed();
    peer.afterLogin = (socket) => flood(socket, Buffer.alloc(64 * 1024, 0x61), 512 * 1024 * 1024);
    const client = clientFor(peer.port, t);
    const { reset, back } = onResetAndBack(client);
    await onConnected(client);
    peer.afterLogin = undefined;
    const info = await reset;
    assert.equal(info.reason, 'protocol-error');
    assert.ok(info.error instanceof AmiProtocolError);
    assert.match(info.error.message, /^AMI line longer than 65536 bytes$/);
    assert.ok((await closed) < MAX_ACCEPTED_BYTES);
    await back;
    assert.equal(getHeader(await client.action([['Action', 'Ping']]), 'Ping'), 'Pong');
  });

  void test('a message that never ends (60 KB lines, no blank line): reset at 1 MiB, not at 4096 lines × 64 KiB', TEST, async (t) => {
    const closed = peer.onNextClosed();
    const line = Buffer.from(`Output: ${'o'.repeat(60_000)}\r\n`);
    peer.afterLogin = (socket) => flood(socket, line, 4096 * line.length);
    const client = clientFor(peer.port, t);
    const { reset, back } = onResetAndBack(client);
    await onConnected(client);
    peer.afterLogin = undefined;
    const info = await reset;
    assert.equal(info.reason, 'protocol-error');
    assert.match(info.error?.message ?? '', /^AMI message larger than 1048576 bytes$/);
    const written = await closed;
    assert.ok(written < MAX_ACCEPTED_BYTES, `the client accepted ${written} bytes of one message (the peer offered ${4096 * line.length})`);
    await back;
  });

  void test('100,000 tiny messages: all read, none kept, the connection stays up and answers', TEST, async (t) => {
    const n = 100_000;
    let burst = '';
    for (let i = 0; i < n; i++)
      burst += i % 2 === 0 ? `Event: Flood\r\nN: ${i}\r\n\r\n` : `Response: Success\r\nActionID: nobody-${i}\r\n\r\n`;
    const client = clientFor(peer.port, t);
    let events = 0;
    let disconnects = 0;
    client.on('event', () => events++);
    client.on('disconnected', () => disconnects++);
    const allEvents = new Promise<void>((resolve) => client.on('event', () => events === n / 2 && resolve()));
    peer.afterLogin = (socket) => void socket.write(burst);
    await onConnected(client);
    peer.afterLogin = undefined;
    await allEvents;
    // TCP keeps order: the Pong comes after every flood message, so all of them have been handled.
    assert.equal(getHeader(await client.action([['Action', 'Ping']]), 'Ping'), 'Pong');
    assert.equal(events, n / 2);
    assert.equal(disconnects, 0);
    assert.equal(client.state, 'open');
  });

  void test('10 MB of seeded random bytes after login: never thrown into the process; usable afterwards', TEST, async (t) => {
    const rng = new Rng(42);
    const garbage = Buffer.concat(Array.from({ length: 160 }, () => rng.bytes(64 * 1024)));
    const client = clientFor(peer.port, t);
    const resets: DisconnectInfo[] = [];
    client.on('disconnected', (info) => resets.push(info));
    const wrote = new Promise<void>((resolve) => {
      peer.afterLogin = async (socket) => {
        await flood(socket, garbage, garbage.length);
        // End whatever message the garbage left open, so a surviving connection is in sync again.
        socket.write('\r\n\r\n');
        resolve();
      };
    });
    await onConnected(client);
    peer.afterLogin = undefined;
    await wrote;
    // Either the connection survived (garbage lines are just unknown headers) or it was reset with a
    // protocol error and logged in again: both are fine; a crash or a hang is not.
    let pong: string | undefined;
    while (pong === undefined) {
      if (!client.connected) await once(client, 'connected');
      pong = await client.action([['Action', 'Ping']]).then(
        (m) => getHeader(m, 'Ping'),
        () => undefined,
      );
    }
    assert.equal(pong, 'Pong');
    for (const info of resets) {
      assert.equal(info.reason, 'protocol-error');
      assert.ok(info.error instanceof AmiProtocolError, String(info.error));
    }
  });
});
