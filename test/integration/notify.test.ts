// sd_notify from the built CLI: a fake $NOTIFY_SOCKET (a unix datagram socket a small perl
// receiver binds; perl-base is on every Debian) gets READY=1 with STATUS=, WATCHDOG=1 pings at
// half of $WATCHDOG_USEC, and STOPPING=1 on SIGTERM, through the real systemd-notify. Without
// $NOTIFY_SOCKET nothing is sent: a stand-in systemd-notify first in PATH records every run.
// STATUS= is /readyz's reasons, re-sent when they change and only then: through a refused AMI
// login and RabbitMQ going away and coming back (a TCP proxy in front of the broker, cut and restored).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cliBridge } from '../helpers/cli-bridge.js';
import { makeStack, type Stack } from '../helpers/stack.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const cli = path.join(repo, 'dist', 'cli.js');

const RECEIVER = `use strict; use Socket; $| = 1;
socket(my $s, AF_UNIX, SOCK_DGRAM, 0) or die "socket: $!";
bind($s, pack_sockaddr_un($ARGV[0])) or die "bind: $!";
print "listening\\n";
# recv() passes no buffer for ancillary data: the kernel closes the BARRIER=1 fd, which is
# exactly what systemd does once it has processed the messages before it.
while (defined(recv($s, my $buf, 65536, 0))) { $buf =~ s/\\n/|/g; print "$buf\\n"; }
`;

/** Lines of a child's stream, with a waiter for the first line matching a pattern. */
class Lines {
  readonly all: string[] = [];
  private waiters: { re: RegExp; n: number; resolve: (line: string) => void }[] = [];
  constructor(stream: NodeJS.ReadableStream) {
    let buffered = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.all.push(line);
        this.waiters = this.waiters.filter((w) => (w.re.test(line) && this.count(w.re) >= w.n ? (w.resolve(line), false) : true));
      }
    });
  }
  /** The `n`th line (already seen or to come) matching `re`; rejects after `ms`. */
  onLine(re: RegExp, n = 1, ms = 15_000): Promise<string> {
    const seen = this.all.filter((l) => re.test(l))[n - 1];
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${n} lines matching ${re} in ${ms} ms; got:\n${this.all.join('\n')}`)), ms);
      this.waiters.push({ re, n, resolve: (line) => (clearTimeout(timer), resolve(line)) });
    });
  }
  count(re: RegExp): number {
    return this.all.filter((l) => re.test(l)).length;
  }
}

let stack: Stack;
let tmp = '';
const children: ChildProcess[] = [];

before(async () => {
  stack = await makeStack();
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ac-notify-'));
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await stack?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

function track(child: ChildProcess): ChildProcess {
  children.push(child);
  return child;
}

async function receiver(socket: string): Promise<Lines> {
  const perl = track(spawn('perl', ['-e', RECEIVER, socket], { stdio: ['ignore', 'pipe', 'inherit'] }));
  const lines = new Lines(perl.stdout!);
  await lines.onLine(/^listening$/);
  return lines;
}

/** The built CLI on the stack's queue and emulator, with `env` on top of ours. */
function runCli(
  env: Record<string, string | undefined>,
  extra: Parameters<typeof cliBridge>[3] = {},
): { child: ChildProcess; log: Lines; configFile: string; remove(): Promise<void> } {
  const bridge = cliBridge(stack, stack.emulator.port, 'bridge', extra);
  const child = track(
    spawn(process.execPath, [cli, 'run', '--config', bridge.configFile], {
      env: { ...process.env, NOTIFY_SOCKET: undefined, WATCHDOG_USEC: undefined, WATCHDOG_PID: undefined, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    }),
  );
  return { child, log: new Lines(child.stderr!), configFile: bridge.configFile, remove: () => bridge.remove() };
}

async function stop(child: ChildProcess): Promise<number | null> {
  const exited = once(child, 'exit') as Promise<[number | null]>;
  child.kill('SIGTERM');
  const [code] = await exited;
  return code;
}

void test('under a NOTIFY_SOCKET: READY=1 with STATUS once consuming, WATCHDOG=1 pings, STOPPING=1 on SIGTERM', async () => {
  const socket = path.join(tmp, 'notify.sock');
  const got = await receiver(socket);
  // WatchdogSec=0.4 s: a ping every 200 ms.
  const run = runCli({ NOTIFY_SOCKET: socket, WATCHDOG_USEC: '400000' });
  try {
    const ready = await got.onLine(/^READY=1\|/);
    assert.equal(ready, 'READY=1|STATUS=consuming', 'READY=1 comes with what it is doing');
    // Two more pings after READY: they keep coming from the event loop.
    await got.onLine(/^WATCHDOG=1$/, got.count(/^WATCHDOG=1$/) + 2, 5_000);
    assert.equal(await stop(run.child), 0);
    await got.onLine(/^STOPPING=1\|STATUS=stopping: draining jobs in flight$/);
    // Every message was followed by systemd-notify's BARRIER=1 (it waited for "systemd").
    const messages = got.all.filter((l) => l !== 'listening');
    assert.ok(messages.length >= 6, messages.join('\n'));
    for (let i = 0; i < messages.length; i += 2)
      assert.equal(messages[i + 1], 'BARRIER=1', `message ${messages[i]} not followed by a barrier:\n${messages.join('\n')}`);
    assert.equal(run.log.count(/sd_notify failed/), 0, run.log.all.join('\n'));
  } finally {
    await run.remove();
  }
});

void test('without NOTIFY_SOCKET nothing is sent and no systemd-notify runs, even with WATCHDOG_USEC set', async () => {
  const bin = path.join(tmp, 'bin');
  const marker = path.join(tmp, 'notify-ran');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, 'systemd-notify'), `#!/bin/sh\necho "$@" >> '${marker}'\n`, { mode: 0o755 });
  const PATH = `${bin}:${process.env['PATH'] ?? ''}`;

  // The stand-in does record runs when a NOTIFY_SOCKET is set (so its silence below means something).
  const withSocket = runCli({ PATH, NOTIFY_SOCKET: path.join(tmp, 'nobody-listens.sock') });
  try {
    await withSocket.log.onLine(/"message":"consuming"/);
    assert.equal(await stop(withSocket.child), 0);
    assert.match(fs.readFileSync(marker, 'utf8'), /^READY=1 STATUS=consuming$/m);
  } finally {
    await withSocket.remove();
  }
  fs.rmSync(marker);

  const without = runCli({ PATH, WATCHDOG_USEC: '400000' });
  try {
    await without.log.onLine(/"message":"consuming"/);
    assert.equal(await stop(without.child), 0);
    assert.equal(
      fs.existsSync(marker),
      false,
      `systemd-notify ran without NOTIFY_SOCKET: ${fs.existsSync(marker) ? fs.readFileSync(marker, 'utf8') : ''}`,
    );
  } finally {
    await without.remove();
  }
});

/** A TCP proxy to the local RabbitMQ that can be cut (connections dropped, new ones refused) and restored on the same port. */
async function brokerProxy(): Promise<{ port: number; cut(): Promise<void>; restore(): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(5672, '127.0.0.1');
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(a);
      a.on('error', () => b.destroy());
      a.on('close', () => (sockets.delete(a), b.destroy()));
      a.pipe(b);
    }
  });
  const listen = (port: number): Promise<void> =>
    new Promise((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
  await listen(0);
  const port = (server.address() as net.AddressInfo).port;
  const cut = async (): Promise<void> => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  };
  return { port, cut, restore: () => listen(port), close: () => (server.listening ? cut() : Promise.resolve()) };
}

/** The port of the CLI's `http listening` log line. */
function httpPort(line: string): number {
  return Number((JSON.parse(line) as { port?: unknown }).port);
}

/** The STATUS= texts the receiver got, in order (alone or after READY=1). */
function statuses(got: Lines): string[] {
  return got.all.flatMap((l) => /(?:^|\|)STATUS=([^|]*)/.exec(l)?.[1] ?? []);
}

/** What /readyz says, as one STATUS= line (notify.ts's describe over the same checks). */
async function readyzText(port: number): Promise<string> {
  const body = (await (await fetch(`http://127.0.0.1:${port}/readyz`)).json()) as { status: string; down: string[] };
  return body.status === 'ready' ? 'consuming' : `not ready (${body.down.join('; ')})`;
}

/** Resolves with the first STATUS= text after the `after` seen so far that is `want` (or matches it). */
async function onStatus(got: Lines, want: string | RegExp, after: number): Promise<string> {
  const match = (t: string): boolean => (typeof want === 'string' ? t === want : want.test(t));
  await got.onLine(/STATUS=/, after + 1);
  for (;;) {
    const found = statuses(got).slice(after).find(match);
    if (found !== undefined) return found;
    await got.onLine(/STATUS=/, statuses(got).length + 1);
  }
}

void test('STATUS= follows /readyz: AMI login refused, then RabbitMQ gone and back; never the same text twice in a row', async () => {
  const socket = path.join(tmp, 'notify-status.sock');
  const got = await receiver(socket);
  const proxy = await brokerProxy();
  const run = runCli(
    { NOTIFY_SOCKET: socket },
    { ami: { Secret: 'not-the-secret' }, rabbitmq: { HostName: '127.0.0.1', Port: String(proxy.port) }, listen: '127.0.0.1:0' },
  );
  try {
    const port = httpPort(await run.log.onLine(/"message":"http listening"/));
    await run.log.onLine(/AMI login refused/);
    const refused = 'not ready (ami: AMI login refused; consuming: paused: ami-down)';
    assert.equal(await onStatus(got, refused, 0), refused);
    assert.equal(await readyzText(port), refused, '/readyz says the same');

    let seen = statuses(got).length;
    await proxy.cut();
    const down = 'not ready (amqp: RabbitMQ not connected; ami: AMI login refused; consuming: paused: ami-down)';
    await onStatus(got, down, seen);
    assert.equal(await readyzText(port), down, '/readyz says the same');

    seen = statuses(got).length;
    await proxy.restore();
    await run.log.onLine(/RabbitMQ connection restored/);
    await onStatus(got, refused, seen);
    assert.equal(await readyzText(port), refused);

    assert.equal(await stop(run.child), 0);
    await got.onLine(/^STOPPING=1\|/);
    const all = statuses(got);
    for (let i = 1; i < all.length; i++) assert.notEqual(all[i], all[i - 1], `STATUS= sent twice in a row:\n${all.join('\n')}`);
  } finally {
    await proxy.close();
    await run.remove();
  }
});

void test('RabbitMQ gone under a consuming service: /readyz, STATUS= and the log all say amqp-down; back to consuming after', async () => {
  const socket = path.join(tmp, 'notify-amqp.sock');
  const got = await receiver(socket);
  const proxy = await brokerProxy();
  const run = runCli({ NOTIFY_SOCKET: socket }, { rabbitmq: { HostName: '127.0.0.1', Port: String(proxy.port) }, listen: '127.0.0.1:0' });
  try {
    const port = httpPort(await run.log.onLine(/"message":"http listening"/));
    await got.onLine(/^READY=1\|STATUS=consuming$/);
    const seen = statuses(got).length;
    await proxy.cut();
    const line = JSON.parse(await run.log.onLine(/"message":"not consuming"/)) as Record<string, unknown>;
    assert.equal(line['paused_for'], 'amqp-down');
    const down = 'not ready (amqp: RabbitMQ not connected; consuming: paused: amqp-down)';
    await onStatus(got, down, seen);
    assert.equal(await readyzText(port), down, '/readyz says what the log says');
    await proxy.restore();
    await onStatus(got, 'consuming', statuses(got).length);
    assert.equal(await stop(run.child), 0);
  } finally {
    await proxy.close();
    await run.remove();
  }
});
