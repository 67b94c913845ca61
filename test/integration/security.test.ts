/**
 * Security hardening, end to end: MD5 challenge login, TLS to AMI (and refusing an untrusted
 * certificate), AMQPS through a TLS-terminating proxy with a private CA, secrets from the
 * environment and systemd credentials reaching the login but never the logs or `check-config`,
 * the world-readable config warning, loopback-only listeners, and the least-privilege manager
 * user of config/asterisk/manager.conf. Throwaway certificates are made with openssl per run.
 * docs/security.md explains the threat model these tests pin down.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { getHeader, type AmiMessage } from '../../src/ami/protocol.js';
import { loadConfig, parseConfig, type Config } from '../../src/config.js';
import { AsteriskEmulator } from '../../src/emulator/server.js';
import { createLogger, type Logger } from '../../src/log.js';
import { start, type Service } from '../../src/main.js';
import { connectRabbit, RabbitConnectError } from '../../src/tools/rabbit.js';
import { RawAmi } from './emulator-client.js';
import { AMQP_URL, job, makeStack, requireRabbit, type Stack } from '../helpers/stack.js';
import { selfSigned } from '../helpers/tls.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const TEST = { timeout: 30_000 };

interface Result {
  job_id: string;
  status: string;
  error?: { code: string; message: string };
}

// ---- helpers ----------------------------------------------------------------------------------

let tmp: string;
let certFile: string;
let pem: { key: string; cert: string };

before(() => {
  tmp = mkdtempSync(path.join(tmpdir(), 'ac-security-'));
  pem = selfSigned(tmp);
  certFile = path.join(tmp, 'cert.pem');
});
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A log stream kept in memory, with waiters on lines. No secret scrubbing: proves no code path writes one. */
class LogCapture extends Writable {
  text = '';
  private waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    const lines = chunk.toString('utf8');
    this.text += lines;
    this.waiters = this.waiters.filter((w) => {
      const line = lines.split('\n').find((l) => w.pattern.test(l));
      if (line === undefined) return true;
      w.resolve(line);
      return false;
    });
    callback();
  }

  /** Resolves with the first line (already written or to come) matching `pattern`. */
  onLine(pattern: RegExp): Promise<string> {
    const line = this.text.split('\n').find((l) => pattern.test(l));
    if (line !== undefined) return Promise.resolve(line);
    return new Promise((resolve) => this.waiters.push({ pattern, resolve }));
  }

  logger(): Logger {
    return createLogger({ level: 'debug', format: 'text', stream: this });
  }
}

/** INI text for a service on the stack's queues, AMI at `amiPort`; `extra` adds or replaces keys. */
function configText(stack: Stack, extra: { rabbitmq?: Record<string, string>; ami?: Record<string, string> } = {}): string {
  const section = (name: string, values: Record<string, string>): string =>
    `[${name}]\n${Object.entries(values)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n')}\n`;
  const r = stack.config.rabbitmq;
  return [
    section('RabbitMQ', {
      Url: AMQP_URL,
      QueueName: r.queueName,
      ResultsExchange: r.resultsExchange,
      DeadLetterQueue: r.deadLetterQueue,
      ...extra.rabbitmq,
    }),
    section('AsteriskAMI', { Addr: '127.0.0.1', Port: String(stack.emulator.port), User: 'auditorai', PingInterval: '1', ...extra.ami }),
    section('Worker', {
      Concurrency: '2',
      JobTimeout: '10',
      MaxAttempts: '2',
      RetryDelay: '50ms',
      RetryMaxDelay: '100ms',
      DrainTimeout: '5',
      SettleTime: '0',
      AllowedRoots: stack.data.root,
    }),
    section('Metrics', { Listen: '127.0.0.1:0' }),
    section('Logging', { MinimumLevel: 'DEBUG' }),
  ].join('\n');
}

/** Starts a service in-process and closes it after the test. */
async function service(t: { after: (fn: () => Promise<void>) => void }, config: Config, logger: Logger): Promise<Service> {
  const s = await start(config, { logger, version: 'test' });
  t.after(() => s.close());
  return s;
}

function onConsuming(s: Service): Promise<void> {
  if (s.readiness().checks['consuming']?.ok === true) return Promise.resolve();
  return new Promise((resolve) => {
    const listener = (on: boolean): void => {
      if (!on) return;
      s.events.off('consuming', listener);
      resolve();
    };
    s.events.on('consuming', listener);
  });
}

/** Publishes one valid job and resolves with its result. */
async function convertOne(stack: Stack, name: string): Promise<Result> {
  const before = stack.results.messages.length;
  await stack.publish(job(stack, name));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no result for ${name} within 15 s: ${JSON.stringify(stack.service?.readiness().checks)}`)),
      15_000,
    );
  });
  await Promise.race([stack.results.onCount(before + 1), deadline]).finally(() => clearTimeout(timer));
  const result = stack.results.bodies<Result>().find((r) => r.job_id === name);
  assert.ok(result, `no result for ${name}`);
  return result;
}

function actionsNamed(emulator: AsteriskEmulator, name: string): AmiMessage[] {
  return emulator.received.filter((m) => getHeader(m, 'Action')?.toLowerCase() === name.toLowerCase());
}

/** Runs the CLI from source; resolves with exit code and output whatever the code. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'src/cli.ts'), ...args],
      { env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr }),
    );
  });
}

/** Does a TCP connect to host:port succeed? */
function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

// ---- AMI: MD5 and TLS -------------------------------------------------------------------------

void describe('AMI login and transport', () => {
  void test('AuthType = md5: Challenge, then Login with a Key; the secret never crosses the wire; a job converts', TEST, async (t) => {
    const secret = 'md5-only-S3cret-9f2c';
    const stack = await makeStack({
      emulator: { mode: 'instant', users: { auditorai: secret } },
      config: { ami: { AuthType: 'md5', Secret: secret } },
    });
    t.after(() => stack.close());
    await stack.startService();
    assert.equal((await convertOne(stack, 'md5-job')).status, 'converted');
    const [challenge] = actionsNamed(stack.emulator, 'Challenge');
    assert.equal(getHeader(challenge!, 'AuthType'), 'MD5');
    const [login] = actionsNamed(stack.emulator, 'Login');
    assert.equal(getHeader(login!, 'AuthType'), 'MD5');
    assert.match(getHeader(login!, 'Key') ?? '', /^[0-9a-f]{32}$/);
    assert.equal(getHeader(login!, 'Secret'), undefined);
    for (const m of stack.emulator.received) for (const [, value] of m.pairs) assert.ok(!value.includes(secret), 'the secret was sent');
  });

  void test(
    'TLS = true + TLSCAFile: logs in over TLS and converts; TLSVerify (default) refuses an untrusted certificate before any login',
    TEST,
    async (t) => {
      writeFileSync(certFile, pem.cert);
      const warnings: Error[] = [];
      const onWarning = (warning: Error): number => warnings.push(warning);
      process.on('warning', onWarning);
      t.after(() => void process.off('warning', onWarning));
      const stack = await makeStack({ emulator: { mode: 'instant', tls: pem }, config: { ami: { TLS: 'true', TLSCAFile: certFile } } });
      t.after(() => stack.close());
      await stack.startService();
      assert.equal((await convertOne(stack, 'tls-job')).status, 'converted');
      assert.equal(stack.emulator.stats.logins, 1);
      // Addr is an IP: it must not be sent as the SNI server name (DEP0123, refused by future Node versions).
      assert.deepEqual(
        warnings.map((w) => (w as { code?: string }).code).filter((c) => c === 'DEP0123'),
        [],
      );

      // Same emulator, a service that does not trust its certificate: the handshake fails, nothing is sent.
      const logs = new LogCapture();
      const untrusting = parseConfig(configText(stack, { ami: { Secret: 'simulator', TLS: 'true' } }), '<untrusting>', {});
      assert.equal(untrusting.ami.tlsRejectUnauthorized, true, 'TLSVerify defaults to true');
      const s = await service(t, untrusting, logs.logger());
      const line = await logs.onLine(/AMI connection to .* unavailable; reconnecting/);
      assert.match(line, /self[- ]signed certificate/i);
      assert.equal(s.readiness().checks['ami']?.ok, false);
      assert.equal(stack.emulator.stats.logins, 1, 'no login over an untrusted connection');
      assert.equal(stack.emulator.stats.loginFailures, 0);
    },
  );
});

// ---- AMQPS ------------------------------------------------------------------------------------

/** A TLS server on 127.0.0.1 that terminates TLS and pipes each connection to the real broker. */
async function tlsProxy(t: { after: (fn: () => Promise<void>) => void }): Promise<{ port: number; secureConnections: () => number }> {
  const broker = new URL(AMQP_URL);
  let secure = 0;
  const sockets = new Set<net.Socket>();
  const server = tls.createServer({ key: pem.key, cert: pem.cert }, (client) => {
    secure++;
    const upstream = net.connect({ host: broker.hostname, port: Number(broker.port || 5672) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  server.on('tlsClientError', () => undefined);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { port: (server.address() as net.AddressInfo).port, secureConnections: () => secure };
}

void describe('AMQPS', () => {
  void test(
    'Url = amqps://…localhost:<port> + [RabbitMQ] TLSCAFile: connects through TLS and converts; without the CA it refuses',
    TEST,
    async (t) => {
      await requireRabbit();
      writeFileSync(certFile, pem.cert);
      const proxy = await tlsProxy(t);
      const broker = new URL(AMQP_URL);
      const url = `amqps://${broker.username}:${broker.password}@localhost:${proxy.port}`;
      const stack = await makeStack({ emulator: { mode: 'instant' }, config: { rabbitmq: { Url: url, TLSCAFile: certFile } } });
      t.after(() => stack.close());
      assert.equal(stack.config.rabbitmq.tls, true);
      assert.equal(stack.config.rabbitmq.tlsCaFile, certFile);
      await stack.startService();
      assert.equal((await convertOne(stack, 'amqps-job')).status, 'converted');
      assert.ok(proxy.secureConnections() >= 1, 'the service came through the TLS proxy');

      // The tools (enqueue, doctor) connect with the same TLS options; without the CA the certificate
      // is refused. (Tried with the tools' bounded connect: a service whose broker never answers takes
      // rabbitmq-client's acquireTimeout, 20 s, to close.)
      const withCa = await connectRabbit(stack.config, 'security-test', 5000);
      await withCa.close();
      const noCa = parseConfig(configText(stack, { rabbitmq: { Url: url }, ami: { Secret: 'simulator' } }), '<no-ca>', {});
      assert.equal(noCa.rabbitmq.tlsCaFile, undefined);
      await assert.rejects(connectRabbit(noCa, 'security-test', 1000), (error: unknown) => {
        assert.ok(error instanceof RabbitConnectError);
        assert.match(error.message, /self[- ]signed certificate/i);
        return true;
      });
    },
  );

  void test('TLSCAFile with a plain amqp:// URL is a warning, and no TLS is attempted', () => {
    const c = parseConfig(
      `[RabbitMQ]\nUrl = amqp://guest:guest@localhost:5672\nTLSCAFile = /etc/ssl/ca.pem\n[AsteriskAMI]\nUser = u\nSecret = s\n`,
      'x.conf',
      {},
    );
    assert.equal(c.rabbitmq.tls, false);
    assert.match(c.warnings.join('\n'), /\[RabbitMQ\] TLSCAFile is set but TLS is off/);
    assert.throws(
      () => parseConfig(`[RabbitMQ]\nTLS = true\nTLSCAFile = ca.pem\n[AsteriskAMI]\nUser = u\nSecret = s\n`, 'x.conf', {}),
      /\[RabbitMQ\] TLSCAFile = "ca\.pem"/,
    );
  });
});

// ---- secrets ----------------------------------------------------------------------------------

void describe('secrets', () => {
  const ENV_SECRET = 'env-S3cret-7d1e-not-in-logs';
  const CRED_SECRET = 'cred-S3cret-44ab-not-in-logs';
  const FILE_DECOY = 'file-decoy-secret-0000';
  let stack: Stack;
  before(async () => {
    stack = await makeStack({
      emulator: { mode: 'instant', loginFailDelayMs: 10, users: { auditorai: ENV_SECRET, creduser: CRED_SECRET } },
    });
  });
  after(() => stack?.close());

  void test('AUDIOCONVERT_AMI_SECRET wins over the file, reaches the login, and no DEBUG log line ever holds it', TEST, async (t) => {
    const logs = new LogCapture();
    const config = parseConfig(configText(stack, { ami: { Secret: FILE_DECOY } }), '<env>', { AUDIOCONVERT_AMI_SECRET: ENV_SECRET });
    const s = await service(t, config, logs.logger());
    await onConsuming(s);
    const login = actionsNamed(stack.emulator, 'Login').at(-1)!;
    assert.equal(getHeader(login, 'Secret'), ENV_SECRET, 'the environment secret reached the login');
    assert.equal((await convertOne(stack, 'env-job')).status, 'converted');
    await stack.publish({ gsm_path: '/etc/passwd', wav_path: '/tmp/x.wav' });
    await logs.onLine(/job dead-lettered/);
    // A reconnect, then a refused login: the paths most likely to print credentials.
    const reconnected = once(s.events, 'ami');
    stack.emulator.dropConnections();
    await reconnected;
    await once(s.events, 'ami');
    stack.emulator.refuseLogins(true);
    t.after(() => stack.emulator.refuseLogins(false));
    stack.emulator.dropConnections();
    await logs.onLine(/AMI login refused/);
    await s.close();
    assert.match(logs.text, /DEBUG/, 'DEBUG lines were captured');
    assert.ok(!logs.text.includes(ENV_SECRET), 'the secret is in the log');
    assert.ok(!logs.text.includes(FILE_DECOY), 'the file secret is in the log');
  });

  void test('systemd credential ami-secret (CREDENTIALS_DIRECTORY) reaches the login, never the logs', TEST, async (t) => {
    const credentials = mkdtempSync(path.join(tmp, 'creds-'));
    writeFileSync(path.join(credentials, 'ami-secret'), `${CRED_SECRET}\n`, { mode: 0o600 });
    const file = path.join(tmp, 'cred.conf');
    writeFileSync(file, configText(stack, { ami: { User: 'creduser' } }), { mode: 0o640 });
    const config = loadConfig(file, { CREDENTIALS_DIRECTORY: credentials });
    assert.equal(config.ami.secret, CRED_SECRET, 'the trailing newline of the credential file is not part of the secret');
    const logs = new LogCapture();
    const s = await service(t, config, logs.logger());
    await onConsuming(s);
    const login = actionsNamed(stack.emulator, 'Login')
      .filter((m) => getHeader(m, 'Username') === 'creduser')
      .at(-1);
    assert.equal(getHeader(login!, 'Secret'), CRED_SECRET);
    assert.equal((await convertOne(stack, 'cred-job')).status, 'converted');
    await s.close();
    assert.ok(!logs.text.includes(CRED_SECRET));
  });

  void test(
    'check-config: secrets from file, URL, environment and credentials are all redacted; a 0644 file is warned about',
    TEST,
    async () => {
      const credentials = mkdtempSync(path.join(tmp, 'creds-'));
      writeFileSync(path.join(credentials, 'amqp-password'), 'cred-amqp-Pa55\n', { mode: 0o600 });
      const file = path.join(tmp, 'check.conf');
      writeFileSync(
        file,
        `[RabbitMQ]\nUrl = amqp://guest:url-Pa55-in-file@localhost:5672\n[AsteriskAMI]\nUser = auditorai\nSecret = ${FILE_DECOY}\n`,
      );
      chmodSync(file, 0o644);
      const secrets = [ENV_SECRET, FILE_DECOY, 'url-Pa55-in-file', 'cred-amqp-Pa55'];
      const run = await cli(['check-config', '--config', file], {
        AUDIOCONVERT_AMI_SECRET: ENV_SECRET,
        CREDENTIALS_DIRECTORY: credentials,
      });
      assert.equal(run.code, 0, run.stderr);
      for (const secret of secrets) assert.ok(!`${run.stdout}${run.stderr}`.includes(secret), `check-config printed ${secret}`);
      const printed = JSON.parse(run.stdout) as Config;
      assert.equal(printed.ami.secret, '***');
      assert.equal(printed.rabbitmq.password, '***');
      assert.doesNotMatch(printed.rabbitmq.url, /Pa55/);
      assert.match(
        run.stderr,
        new RegExp(`warning: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} is readable by every user \\(mode 0644\\)`),
      );

      chmodSync(file, 0o640);
      const quiet = await cli(['check-config', '--config', file]);
      assert.equal(quiet.code, 0, quiet.stderr);
      assert.doesNotMatch(quiet.stderr, /readable by every user/);
      assert.ok(!`${quiet.stdout}${quiet.stderr}`.includes(FILE_DECOY));

      // A refused value next to a secret: the error names the key, never the value.
      const long = `too-long-secret-${'s'.repeat(600)}`;
      writeFileSync(file, `[AsteriskAMI]\nUser = auditorai\nSecret = ${long}\n`);
      const refused = await cli(['check-config', '--config', file]);
      assert.equal(refused.code, 2);
      assert.match(refused.stderr, /\[AsteriskAMI\] Secret = \(hidden\)/);
      assert.ok(!refused.stderr.includes('too-long-secret'));
    },
  );
});

// ---- listeners --------------------------------------------------------------------------------

void describe('listeners are on loopback by default', () => {
  void test('defaults: metrics on 127.0.0.1:9464, a bare port binds loopback, AMI expected on 127.0.0.1', () => {
    const minimal = '[AsteriskAMI]\nUser = u\nSecret = s\n';
    const c = parseConfig(minimal, 'x.conf', {});
    assert.deepEqual(c.metrics, { enabled: true, host: '127.0.0.1', port: 9464 });
    assert.equal(c.ami.host, '127.0.0.1');
    assert.equal(parseConfig(`${minimal}[Metrics]\nListen = 9999\n`, 'x.conf', {}).metrics.host, '127.0.0.1');
  });

  void test("the service's HTTP server answers on 127.0.0.1 only (127.0.0.2 is refused)", TEST, async (t) => {
    const stack = await makeStack({ emulator: { mode: 'instant' } });
    t.after(() => stack.close());
    const s = await stack.startService();
    assert.ok(s.httpPort !== undefined);
    assert.equal(await canConnect('127.0.0.1', s.httpPort), true);
    assert.equal(await canConnect('127.0.0.2', s.httpPort), false, 'bound to every address, not just loopback');
  });

  void test('the emulator binds 127.0.0.1 and refuses a non-loopback host without allowNonLoopback', async () => {
    const emu = await AsteriskEmulator.start({ mode: 'instant' });
    try {
      assert.equal(emu.host, '127.0.0.1');
      assert.equal(await canConnect('127.0.0.1', emu.port), true);
      assert.equal(await canConnect('127.0.0.2', emu.port), false);
    } finally {
      await emu.close();
    }
    for (const host of ['0.0.0.0', '::', '192.0.2.1']) {
      await assert.rejects(
        AsteriskEmulator.start({ host, mode: 'instant' }),
        new RegExp(`refusing to listen on non-loopback address ${host.replace(/[.:]/g, '\\$&')}`),
      );
    }
    const open = await AsteriskEmulator.start({ host: '0.0.0.0', allowNonLoopback: true, mode: 'instant' });
    await open.close();
  });

  void test('simulate-asterisk (CLI) listens on 127.0.0.1', TEST, async (t) => {
    const child = spawn(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), path.join(ROOT, 'src/cli.ts'), 'simulate-asterisk', '--port', '0', '--instant'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    t.after(() => {
      if (child.exitCode === null) child.kill('SIGTERM');
    });
    let out = '';
    const line = await new Promise<string>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const m = /listening on (\S+):(\d+)/.exec(out);
        if (m !== null) resolve(m[0]);
      });
      child.once('exit', (code) => reject(new Error(`simulate-asterisk exited ${code}: ${out}`)));
    });
    assert.match(line, /^listening on 127\.0\.0\.1:\d+$/);
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    await exited;
  });
});

// ---- least privilege --------------------------------------------------------------------------

/** config/asterisk/manager.conf as { section: { key: value } } (comments after ';' dropped). */
function managerConf(): Record<string, Record<string, string[]>> {
  const sections: Record<string, Record<string, string[]>> = {};
  let current: Record<string, string[]> | undefined;
  for (const raw of readFileSync(path.join(ROOT, 'config/asterisk/manager.conf'), 'utf8').split('\n')) {
    const line = raw.replace(/;.*$/, '').trim();
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header !== null) sections[header[1]!] = current = {};
    else if (line !== '' && current !== undefined) {
      const [key, ...value] = line.split('=');
      (current[key!.trim()] ??= []).push(value.join('=').trim());
    }
  }
  return sections;
}

void describe('the shipped manager user (config/asterisk/manager.conf)', () => {
  void test('write = originate only; read = call,user,system; loopback bind, deny all, permit 127.0.0.1; no real secret shipped', () => {
    const conf = managerConf();
    const user = conf['auditorai'];
    assert.ok(user, 'an [auditorai] user');
    assert.deepEqual(user['write'], ['originate']);
    const write = user['write'][0]!.split(',').map((c) => c.trim());
    for (const bad of ['all', 'system', 'command', 'config', 'dialplan', 'agent']) assert.ok(!write.includes(bad), `write includes ${bad}`);
    assert.deepEqual(
      user['read']![0]!.split(',')
        .map((c) => c.trim())
        .sort(),
      ['call', 'system', 'user'],
    );
    assert.deepEqual(user['deny'], ['0.0.0.0/0.0.0.0']);
    assert.deepEqual(user['permit'], ['127.0.0.1/255.255.255.255']);
    assert.deepEqual(user['secret'], ['CHANGE-ME']);
    assert.deepEqual(conf['general']?.['bindaddr'], ['127.0.0.1']);
  });

  void test(
    'like Asterisk (hdr-crlf-injection.txt), that user gets "Permission denied" for Command and cannot originate System()',
    TEST,
    async (t) => {
      const user = managerConf()['auditorai']!;
      const classes = (key: string): string[] => user[key]![0]!.split(',').map((c) => c.trim());
      const emu = await AsteriskEmulator.start({
        mode: 'instant',
        users: { auditorai: { secret: 'shipped', read: classes('read'), write: classes('write') }, admin: { secret: 'a', write: ['all'] } },
      });
      t.after(() => emu.close());
      const ami = await RawAmi.connect(emu.port);
      t.after(() => ami.close());
      assert.equal(getHeader(await ami.login('auditorai', 'shipped'), 'Response'), 'Success');
      const reply = async (pairs: Record<string, string>): Promise<AmiMessage> => {
        ami.action(pairs);
        return ami.next((m) => getHeader(m, 'ActionID') === pairs['ActionID']);
      };
      const command = await reply({ Action: 'Command', Command: 'core show version', ActionID: 'cmd-1' });
      assert.equal(getHeader(command, 'Response'), 'Error');
      assert.equal(getHeader(command, 'Message'), 'Permission denied');
      const system = await reply({
        Action: 'Originate',
        Channel: 'Local/s@audio-convert-hold',
        Application: 'System',
        Data: 'touch /tmp/x',
        ActionID: 'orig-1',
      });
      assert.equal(getHeader(system, 'Response'), 'Error');
      assert.equal(getHeader(system, 'Message'), 'Originate Access Forbidden: app or data blacklisted');
      assert.ok(
        emu.stats.unexpectedActions.some((a) => a === 'Command'),
        'the emulator flags Command as unexpected',
      );

      // The check discriminates: a write=all user is not told "Permission denied".
      const admin = await RawAmi.connect(emu.port);
      t.after(() => admin.close());
      await admin.login('admin', 'a');
      admin.action({ Action: 'Command', Command: 'core show version', ActionID: 'cmd-2' });
      assert.notEqual(getHeader(await admin.next((m) => getHeader(m, 'ActionID') === 'cmd-2'), 'Message'), 'Permission denied');
    },
  );
});
