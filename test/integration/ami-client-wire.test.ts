/**
 * AmiClient over real TCP on 127.0.0.1 (ephemeral port) against a tiny scripted AMI server, for
 * what needs exact control of the bytes: a hostile peer, nothing written on a serializer refusal,
 * MD5 login, ActionID matching, timeouts. Server-side failures (drops, restart, silence, refused
 * logins, port closed) are in ami-client.test.ts, against the emulator. Waits are on events.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import { after, describe, test } from 'node:test';
import { AmiClient, type ReconnectInfo } from '../../src/ami/client.js';
import { AmiParser, getHeader, type AmiMessage } from '../../src/ami/protocol.js';
import {
  AmiActionTimeoutError,
  AmiAuthError,
  AmiClientStateError,
  AmiConnectionError,
  AmiProtocolError,
  AmiSerializeError,
} from '../../src/ami/errors.js';
import { clientFor, onConnected, onNth } from '../helpers/ami-client.js';

const BANNER = 'Asterisk Call Manager/11.0.0\r\n';
const CHALLENGE = '840233713';
/** What the script answers: bytes to write, 'silent' (nothing) or 'drop' (destroy the socket). */
type Reply = string;

/** A scripted AMI server: banner, Login/Challenge/Ping/Logoff like Asterisk, the rest from `script`. */
class ScriptedAmi extends EventEmitter<{ action: [message: AmiMessage, socket: net.Socket] }> {
  readonly sockets = new Set<net.Socket>();
  /** Bytes received, all connections. */
  received = 0;
  script: (message: AmiMessage, socket: net.Socket) => Reply = () => 'silent';
  private constructor(
    private readonly server: net.Server,
    readonly secret: string,
  ) {
    super();
  }

  static async start(secret = 'simulator'): Promise<ScriptedAmi> {
    const server = net.createServer();
    const ami = new ScriptedAmi(server, secret);
    server.on('connection', (socket) => ami.serve(socket));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return ami;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  private serve(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined);
    const parser = new AmiParser({ expectBanner: false });
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      for (const frame of parser.push(chunk)) if (frame.kind === 'message') this.answer(frame.message, socket);
    });
    socket.write(BANNER);
  }

  private answer(message: AmiMessage, socket: net.Socket): void {
    this.emit('action', message, socket);
    const id = `ActionID: ${getHeader(message, 'ActionID') ?? ''}\r\n`;
    const action = getHeader(message, 'Action')?.toLowerCase();
    let reply: Reply;
    if (action === 'challenge') reply = `Response: Success\r\n${id}Challenge: ${CHALLENGE}\r\n\r\n`;
    else if (action === 'login') {
      const md5 = createHash('md5')
        .update(CHALLENGE + this.secret)
        .digest('hex');
      const ok = getHeader(message, 'Secret') === this.secret || getHeader(message, 'Key') === md5;
      reply = ok
        ? `Response: Success\r\n${id}Message: Authentication accepted\r\n\r\n`
        : `Response: Error\r\n${id}Message: Authentication failed\r\n\r\n`;
    } else if (action === 'ping') reply = `Response: Success\r\n${id}Ping: Pong\r\nTimestamp: 1.0\r\n\r\n`;
    else if (action === 'logoff') {
      socket.end(`Response: Goodbye\r\n${id}Message: Thanks for all the fish.\r\n\r\n`);
      return;
    } else reply = this.script(message, socket);
    if (reply === 'drop') socket.destroy();
    else if (reply !== 'silent') socket.write(reply);
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

const TEST = { timeout: 15_000 };

void describe('AmiClient vs a scripted AMI server', () => {
  let ami: ScriptedAmi;
  after(() => ami?.close());

  void test('setup: a scripted server on an ephemeral port', async () => {
    ami = await ScriptedAmi.start();
    assert.ok(ami.port > 0);
  });

  void test('plain login: Login with Username, Secret, Events and a UUID ActionID; connected', TEST, async (t) => {
    const client = clientFor(ami.port, t);
    const onLogin = once(ami, 'action');
    assert.equal(client.state, 'idle');
    await onConnected(client);
    const [login] = (await onLogin) as [AmiMessage];
    assert.deepEqual(login.pairs.slice(0, 4), [
      ['Action', 'Login'],
      ['Username', 'auditorai'],
      ['Secret', 'simulator'],
      ['Events', 'call,user,system'],
    ]);
    assert.match(getHeader(login, 'ActionID') ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(client.state, 'open');
    assert.equal(client.connected, true);
  });

  void test('MD5 login: Challenge, then Login with Key = md5(challenge + secret), no Secret sent', TEST, async (t) => {
    const seen: AmiMessage[] = [];
    const onAction = (m: AmiMessage): number => seen.push(m);
    ami.on('action', onAction);
    t.after(() => ami.off('action', onAction));
    await onConnected(clientFor(ami.port, t, { authType: 'md5' }));
    assert.equal(getHeader(seen[0]!, 'Action'), 'Challenge');
    assert.equal(getHeader(seen[0]!, 'AuthType'), 'MD5');
    assert.equal(getHeader(seen[1]!, 'Key'), createHash('md5').update(`${CHALLENGE}simulator`).digest('hex'));
    assert.equal(getHeader(seen[1]!, 'Secret'), undefined);
  });

  void test('responses are matched by ActionID (answered in reverse order); events with an ActionID are events', TEST, async (t) => {
    const client = clientFor(ami.port, t);
    await onConnected(client);
    const held: { id: string; socket: net.Socket }[] = [];
    ami.script = (m, socket) => {
      held.push({ id: getHeader(m, 'ActionID') ?? '', socket });
      if (held.length === 2) {
        for (const { id, socket: s } of [...held].reverse()) {
          s.write(
            `Event: OriginateResponse\r\nActionID: ${id}\r\nResponse: Failure\r\n\r\nResponse: Success\r\nActionID: ${id}\r\nMessage: ${id}\r\n\r\n`,
          );
        }
      }
      return 'silent';
    };
    const events: AmiMessage[] = [];
    client.on('event', (e) => events.push(e));
    const [a, b] = await Promise.all([client.action([['Action', 'A']]), client.action([['Action', 'B']])]);
    assert.equal(getHeader(a, 'Message'), held[0]!.id);
    assert.equal(getHeader(b, 'Message'), held[1]!.id);
    assert.notEqual(held[0]!.id, held[1]!.id);
    assert.equal(events.length, 2);
    assert.ok(events.every((e) => getHeader(e, 'Event') === 'OriginateResponse'));
  });

  void test('a serializer refusal writes nothing; a caller ActionID is refused', TEST, async (t) => {
    const client = clientFor(ami.port, t);
    await onConnected(client);
    const before = ami.received;
    await assert.rejects(
      client.action([
        ['Action', 'Originate'],
        ['Variable', 'B=x.wav\r\nAction: Command'],
      ]),
      AmiSerializeError,
    );
    await assert.rejects(
      client.action([
        ['Action', 'Originate'],
        ['ActionID', 'mine'],
      ]),
      AmiSerializeError,
    );
    await assert.rejects(
      client.action([
        ['Action', 'Originate'],
        ['Variable', 'x'.repeat(1100)],
      ]),
      AmiSerializeError,
    );
    // TCP keeps order: once the Pong is back, everything written before the Ping has arrived.
    const onPing = once(ami, 'action');
    await client.action([['Action', 'Ping']]);
    const [ping] = (await onPing) as [AmiMessage];
    assert.equal(getHeader(ping, 'Action'), 'Ping', 'the first thing the server saw is the Ping');
    assert.equal(ami.received - before, `Action: Ping\r\nActionID: ${getHeader(ping, 'ActionID')}\r\n\r\n`.length);
  });

  void test('action timeout: rejects with AmiActionTimeoutError, connection stays usable', TEST, async (t) => {
    const client = clientFor(ami.port, t);
    await onConnected(client);
    ami.script = () => 'silent';
    await assert.rejects(client.action([['Action', 'Slow']], { timeoutMs: 100 }), AmiActionTimeoutError);
    assert.equal(client.state, 'open');
    assert.equal(getHeader(await client.action([['Action', 'Ping']]), 'Ping'), 'Pong');
  });

  void test('pending actions are rejected at once on a disconnect, not at their deadline', TEST, async (t) => {
    const client = clientFor(ami.port, t);
    await onConnected(client);
    let n = 0;
    ami.script = () => (++n === 3 ? 'drop' : 'silent');
    const started = Date.now();
    const onDisconnected = once(client, 'disconnected');
    const pending = [1, 2, 3].map(() => client.action([['Action', 'Slow']], { timeoutMs: 60_000 }));
    for (const p of pending) await assert.rejects(p, AmiConnectionError);
    assert.ok(Date.now() - started < 5000);
    const [info] = (await onDisconnected) as [{ reason: string }];
    assert.equal(info.reason, 'peer-closed');
    await assert.rejects(client.action([['Action', 'Ping']]), AmiConnectionError, 'not open while reconnecting');
    await once(client, 'connected');
  });

  void test('hostile peer: a 1 MB line resets the connection with a protocol error; the client reconnects', TEST, async (t) => {
    const client = clientFor(ami.port, t);
    await onConnected(client);
    const onDisconnected = once(client, 'disconnected');
    const onReconnected = once(client, 'connected');
    for (const socket of ami.sockets) socket.write(Buffer.alloc(1024 * 1024, 0x41));
    const [info] = (await onDisconnected) as [{ reason: string; error?: Error }];
    assert.equal(info.reason, 'protocol-error');
    assert.ok(info.error instanceof AmiProtocolError);
    assert.ok(client.lastError instanceof AmiProtocolError);
    await onReconnected;
    assert.equal(client.state, 'open');
  });

  void test('close(): idempotent, sends Logoff, rejects later calls with typed errors', TEST, async (t) => {
    const client = clientFor(ami.port, t);
    await onConnected(client);
    const onLogoff = new Promise<AmiMessage>((resolve) => ami.on('action', (m) => getHeader(m, 'Action') === 'Logoff' && resolve(m)));
    const onDisconnected = once(client, 'disconnected');
    const first = client.close();
    assert.equal(client.state, 'closing');
    assert.equal(client.close(), first);
    await first;
    await onLogoff;
    assert.equal(((await onDisconnected) as [{ reason: string }])[0].reason, 'closed');
    assert.equal(client.state, 'closed');
    await client.close();
    await assert.rejects(client.action([['Action', 'Ping']]), AmiConnectionError);
    assert.throws(() => client.start(), AmiClientStateError);
  });

  void test('not started: action() fails fast with AmiConnectionError; close() from idle', TEST, async (t) => {
    const client = clientFor(ami.port, t);
    await assert.rejects(client.action([['Action', 'Ping']]), AmiConnectionError);
    await client.close();
    assert.equal(client.state, 'closed');
  });

  void test('a bad port is refused at construction; unusable TLS material is retried, never thrown', TEST, async (t) => {
    assert.throws(() => new AmiClient({ host: '127.0.0.1', port: 0, username: 'u', secret: 's' }), RangeError);
    const client = clientFor(ami.port, t, { tls: { cert: 'not a PEM', key: 'not a PEM' } });
    const retries = onNth<ReconnectInfo>(client, 'reconnecting', 2);
    client.start();
    assert.ok((await retries).every((r) => r.reason === 'connect-failed'));
    assert.match(client.lastError?.message ?? '', /PEM/);
  });

  void test('"Authentication failed" → authFailed with an AmiAuthError, retried with authBackoff', TEST, async (t) => {
    const client = clientFor(ami.port, t, { secret: 'wrong', authBackoff: { baseMs: 30, capMs: 30, jitter: 'none' } });
    const delays: number[] = [];
    client.on('reconnecting', (info) => delays.push(info.delayMs));
    const onAuthFailed = once(client, 'authFailed');
    client.start();
    const [error] = (await onAuthFailed) as [Error];
    assert.ok(error instanceof AmiAuthError);
    assert.doesNotMatch(error.message, /wrong/, 'the secret is not in the message');
    await once(client, 'authFailed');
    assert.deepEqual(delays.slice(0, 2), [30, 30]);
  });
});
