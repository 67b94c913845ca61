/**
 * AmiClient against the AMI emulator over real TCP on 127.0.0.1 (ephemeral ports): what the
 * server side does to a connection — refused logins, abrupt drops, `core restart now`, a hung
 * (silent) Asterisk, a closed port — and that the client always comes back. Byte-level cases
 * are in ami-client-wire.test.ts. Every wait is on an event; nothing sleeps.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { DisconnectInfo, ReconnectInfo } from '../../src/ami/client.js';
import { getHeader, type AmiMessage } from '../../src/ami/protocol.js';
import { AsteriskEmulator, type EmulatorOptions } from '../../src/emulator/server.js';
import { AmiAuthError, AmiConnectionError } from '../../src/ami/errors.js';
import { expBackoff } from '../../src/util/backoff.js';
import { clientFor, closedPort, onConnected, onNth } from '../helpers/ami-client.js';
import { selfSigned } from '../helpers/tls.js';

const TEST = { timeout: 20_000 };

async function emulator(t: { after: (fn: () => Promise<void>) => void }, options: EmulatorOptions = {}): Promise<AsteriskEmulator> {
  const emu = await AsteriskEmulator.start({
    port: 0,
    users: { auditorai: 'simulator' },
    mode: 'instant',
    loginFailDelayMs: 10,
    ...options,
  });
  t.after(() => emu.close());
  return emu;
}

/** A throwaway certificate in a directory removed after the test. */
function selfSignedFor(t: { after: (fn: () => void) => void }): { key: string; cert: string } {
  const dir = mkdtempSync(path.join(tmpdir(), 'ami-tls-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return selfSigned(dir);
}

void describe('AmiClient vs the AMI emulator', () => {
  void test('login ok: connected, then FullyBooted; Ping answered', TEST, async (t) => {
    const emu = await emulator(t);
    const client = clientFor(emu.port, t);
    const order: string[] = [];
    client.on('connected', () => order.push('connected'));
    const onBooted = once(client, 'fullyBooted');
    await onConnected(client);
    const [booted] = (await onBooted) as [AmiMessage];
    order.push('fullyBooted');
    assert.deepEqual(order, ['connected', 'fullyBooted']);
    assert.equal(getHeader(booted, 'Status'), 'Fully Booted');
    assert.equal(getHeader(await client.action([['Action', 'Ping']]), 'Ping'), 'Pong');
    assert.equal(emu.stats.logins, 1);
  });

  void test('login refused: authFailed (AmiAuthError) each time, slow authBackoff, connects once logins are allowed', TEST, async (t) => {
    const emu = await emulator(t);
    emu.refuseLogins(true);
    const client = clientFor(emu.port, t, {
      backoff: { baseMs: 1, capMs: 1, jitter: 'none' },
      authBackoff: { baseMs: 40, capMs: 40, jitter: 'none' },
    });
    const reconnecting: ReconnectInfo[] = [];
    client.on('reconnecting', (info) => reconnecting.push(info));
    const failures = onNth<Error>(client, 'authFailed', 3);
    client.start();
    const errors = await failures;
    assert.ok(errors.every((e) => e instanceof AmiAuthError));
    assert.ok(
      errors.every((e) => !e.message.includes('simulator')),
      'the secret is never in a message',
    );
    assert.ok(reconnecting.length >= 2);
    assert.ok(
      reconnecting.every((r) => r.reason === 'auth-failed' && r.delayMs === 40),
      JSON.stringify(reconnecting),
    );
    assert.equal(client.connected, false);
    const back = once(client, 'connected');
    emu.refuseLogins(false);
    await back;
    assert.equal(client.state, 'open');
    assert.ok(emu.stats.loginFailures >= 3);
  });

  void test('abrupt drop: disconnected, pending actions rejected at once, reconnected', TEST, async (t) => {
    const emu = await emulator(t);
    const client = clientFor(emu.port, t);
    await onConnected(client);
    emu.goSilent(true);
    const pending = client.action([['Action', 'Ping']], { timeoutMs: 60_000 });
    const onDisconnected = once(client, 'disconnected');
    const onBack = once(client, 'connected');
    const started = Date.now();
    emu.goSilent(false);
    emu.dropConnections();
    await assert.rejects(pending, AmiConnectionError);
    assert.ok(Date.now() - started < 5000, 'rejected on the drop, not at the 60 s deadline');
    // An abrupt close arrives as FIN or as RST (ECONNRESET), depending on what was unread.
    assert.match(((await onDisconnected) as [DisconnectInfo])[0].reason, /^(peer-closed|socket-error)$/);
    await onBack;
    // A successful login resets the backoff: the next outage starts again at attempt 1.
    const [next] = await onNth<ReconnectInfo>(client, 'reconnecting', 1, () => emu.dropConnections());
    assert.equal(next?.attempt, 1);
    assert.ok((next?.delayMs ?? Infinity) <= 5, `first retry waits at most baseMs, not ${next?.delayMs}`);
  });

  void test('core restart now: shutdown event, disconnected (shutdown), back after the port reopens', TEST, async (t) => {
    const emu = await emulator(t);
    const client = clientFor(emu.port, t, { backoff: { baseMs: 20, capMs: 100 } });
    await onConnected(client);
    const onShutdown = once(client, 'shutdown');
    const onDisconnected = once(client, 'disconnected');
    const onBack = once(client, 'connected');
    const restarted = emu.restart({ downMs: 300 });
    const [shutdown] = (await onShutdown) as [AmiMessage];
    assert.equal(getHeader(shutdown, 'Restart'), 'True');
    assert.equal(((await onDisconnected) as [DisconnectInfo])[0].reason, 'shutdown');
    await restarted;
    await onBack;
    assert.equal(client.state, 'open');
    assert.equal(getHeader(await client.action([['Action', 'Ping']]), 'Ping'), 'Pong');
  });

  void test('silent peer: the Ping deadline resets the connection; pending actions rejected; back when it answers', TEST, async (t) => {
    const emu = await emulator(t);
    const client = clientFor(emu.port, t, { pingIntervalMs: 30, pingTimeoutMs: 150, actionTimeoutMs: 300, connectTimeoutMs: 300 });
    await onConnected(client);
    const onDisconnected = once(client, 'disconnected');
    emu.goSilent(true);
    const pending = client.action([['Action', 'Ping']], { timeoutMs: 60_000 });
    const [info] = (await onDisconnected) as [DisconnectInfo];
    assert.equal(info.reason, 'ping-timeout');
    await assert.rejects(pending, AmiConnectionError);
    // Attempts against a hung server fail by their own deadlines (no Login answer).
    const [retry] = await onNth<ReconnectInfo>(client, 'reconnecting', 1);
    assert.equal(retry?.reason, 'login-timeout');
    const onBack = once(client, 'connected');
    emu.goSilent(false);
    await onBack;
  });

  void test('port closed: reconnect delays follow the capped backoff; never above capMs', TEST, async (t) => {
    const port = await closedPort();
    const backoff = { baseMs: 10, capMs: 80 } as const;
    const client = clientFor(port, t, { backoff, random: () => 0.5 });
    const delays = onNth<ReconnectInfo>(client, 'reconnecting', 8);
    client.start();
    const seen = await delays;
    assert.deepEqual(
      seen.map((r) => r.attempt),
      [1, 2, 3, 4, 5, 6, 7, 8],
    );
    assert.ok(seen.every((r) => r.reason === 'connect-failed'));
    assert.deepEqual(
      seen.map((r) => r.delayMs),
      [0, 1, 2, 3, 4, 5, 6, 7].map((n) => expBackoff(n, backoff, () => 0.5)),
    );
    assert.deepEqual(
      seen.map((r) => r.delayMs),
      [7, 15, 30, 60, 60, 60, 60, 60],
    );
    assert.ok(client.lastError !== undefined && /ECONNREFUSED/.test(client.lastError.message));
  });

  void test('never gives up: 25 refused attempts, then the server comes up on that port and the client connects', TEST, async (t) => {
    const port = await closedPort();
    const client = clientFor(port, t, { backoff: { baseMs: 1, capMs: 2 } });
    const attempts = onNth<ReconnectInfo>(client, 'reconnecting', 25);
    client.start();
    await attempts;
    assert.equal(client.state, 'connecting');
    const onBack = once(client, 'connected');
    const emu = await emulator(t, { port });
    await onBack;
    assert.equal(emu.stats.logins, 1);
  });

  void test('TLS: logs in over node:tls, verifying the server certificate', TEST, async (t) => {
    const pem = selfSignedFor(t);
    assert.ok(pem, 'openssl is needed to make a throwaway test certificate: apt-get install openssl');
    const emu = await emulator(t, { tls: pem });
    const client = clientFor(emu.port, t, { tls: { ca: pem.cert } });
    await onConnected(client);
    assert.equal(getHeader(await client.action([['Action', 'Ping']]), 'Ping'), 'Pong');
    // And a client that does not trust the certificate never logs in.
    const untrusting = clientFor(emu.port, t, { tls: {} });
    const [retry] = await onNth<ReconnectInfo>(untrusting, 'reconnecting', 1, () => untrusting.start());
    assert.equal(retry?.reason, 'connect-failed');
    assert.match(untrusting.lastError?.message ?? '', /self[- ]signed/i);
  });

  void test('close() sends Logoff and is idempotent', TEST, async (t) => {
    const emu = await emulator(t);
    const client = clientFor(emu.port, t);
    await onConnected(client);
    await Promise.all([client.close(), client.close()]);
    assert.equal(client.state, 'closed');
    assert.equal(emu.stats.actions['Logoff'], 1);
  });
});
