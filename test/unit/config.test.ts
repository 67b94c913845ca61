import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { configFileWarnings, loadConfig, parseConfig, redactedConfig, redactUrl, secretsOf, type Config } from '../../src/config.js';
import { ConfigError } from '../../src/errors.js';

const FILE = '/etc/auditorai/transcoding.conf';

/** The seed's file, verbatim (seed/audio-convert.md, "Configuration Files"). */
const SEED = `[RabbitMQ]
HostName  = localhost
QueueName = Asterisk.Transcoding

[AsteriskAMI]
Addr   = 127.0.0.1
Port   = 5038
User   = auditorai
Secret = "Tu6...JYL"

[Logging]
MinimumLevel = CRITICAL # DEBUG | INFO | WARNING | ERROR | CRITICAL

[GitHub]
RepoOwner   = "PatternLib"
RepoName    = "reincar-auditorai"
GitHubToken = "github_pat_11BI...MAmOm3fXlb"
`;

/** The least a file needs: the AMI user and secret. */
const MINIMAL = '[AsteriskAMI]\nUser = auditorai\nSecret = s3cret-value\n';

const parse = (text: string, env: Record<string, string> = {}, credentialsDir?: string): Config =>
  parseConfig(text, FILE, env, credentialsDir);

/** The ConfigError message `text` produces (fails the test if it parses). */
function errorOf(text: string, env: Record<string, string> = {}): string {
  try {
    parse(text, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    return err.message;
  }
  assert.fail(`expected a ConfigError for:\n${text}`);
}

void describe("the seed's file", () => {
  void test('loads unchanged: quoted secret unquoted, inline comment stripped, [GitHub] ignored', () => {
    const c = parse(SEED);
    assert.equal(c.logging.level, 'crit');
    assert.equal(c.ami.secret, 'Tu6...JYL');
    assert.equal(c.ami.username, 'auditorai');
    assert.equal(c.ami.host, '127.0.0.1');
    assert.equal(c.ami.port, 5038);
    assert.equal(c.rabbitmq.hostname, 'localhost');
    assert.equal(c.rabbitmq.queueName, 'Asterisk.Transcoding');
    assert.equal(c.file, FILE);
    assert.equal(c.warnings.length, 1);
    assert.match(c.warnings[0] ?? '', /\[GitHub\].*ignored/);
    assert.doesNotMatch(c.warnings.join('\n'), /github_pat/);
    assert.doesNotMatch(JSON.stringify(c), /github_pat|PatternLib/);
  });

  void test('loads from disk too (CRLF line endings and a BOM are fine)', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ac-config-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'transcoding.conf');
    writeFileSync(file, `\uFEFF${SEED.replace(/\n/g, '\r\n')}`);
    const c = loadConfig(file, {});
    assert.equal(c.file, file);
    assert.equal(c.ami.secret, 'Tu6...JYL');
    assert.equal(c.logging.level, 'crit');
  });

  void test('the shipped example config/transcoding.conf loads', () => {
    const c = loadConfig(new URL('../../config/transcoding.conf', import.meta.url).pathname, {});
    assert.equal(c.ami.username, 'auditorai');
    assert.deepEqual(c.warnings, []);
  });
});

void describe('defaults', () => {
  void test('every key has its documented default', () => {
    const c = parse(MINIMAL);
    assert.deepEqual(c.rabbitmq, {
      url: 'amqp://guest:guest@localhost:5672/%2F',
      tls: false,
      hostname: 'localhost',
      port: 5672,
      hosts: ['localhost:5672'],
      vhost: '/',
      username: 'guest',
      password: 'guest',
      queueName: 'Asterisk.Transcoding',
      resultsExchange: 'Asterisk.Transcoding.results',
      deadLetterQueue: 'Asterisk.Transcoding.dead',
      queueType: 'classic',
      deliveryLimit: 20,
    });
    assert.deepEqual(c.ami, {
      host: '127.0.0.1',
      port: 5038,
      username: 'auditorai',
      secret: 's3cret-value',
      channel: 'Local/s@audio-convert-hold',
      context: 'audio-convert',
      exten: 'convert',
      authType: 'plain',
      tls: false,
      tlsCaFile: undefined,
      tlsRejectUnauthorized: true,
      pingIntervalMs: 5000,
      actionTimeoutMs: 10_000,
    });
    assert.deepEqual(c.worker, {
      concurrency: 4,
      jobTimeoutMs: 120_000,
      maxAttempts: 5,
      allowedRoots: ['/var/local/auditorai'],
      retryDelayMs: 5000,
      retryMaxDelayMs: 300_000,
      drainTimeoutMs: 30_000,
      settleTimeMs: 2000,
      settleMaxMs: 600_000,
      inputExtension: '.gsm',
      outputExtension: '.wav',
    });
    assert.deepEqual(c.metrics, { enabled: true, host: '127.0.0.1', port: 9464 });
    assert.deepEqual(c.logging, { level: 'info', format: 'journald' });
  });

  void test('the result is deeply frozen', () => {
    const c = parse(MINIMAL);
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.ami) && Object.isFrozen(c.worker.allowedRoots));
    assert.throws(() => {
      (c.worker.allowedRoots as string[]).push('/tmp');
    }, TypeError);
  });
});

void describe('values', () => {
  void test('sections and keys are case-insensitive; levels map to winston syslog names', () => {
    for (const [written, level] of [
      ['debug', 'debug'],
      ['Info', 'info'],
      ['WARNING', 'warning'],
      ['error', 'error'],
      ['critical', 'crit'],
    ] as const) {
      const c = parse(`${MINIMAL}[logging]\nminimumlevel = ${written}\n`);
      assert.equal(c.logging.level, level);
    }
  });

  void test('every documented key is read', () => {
    const c = parse(`[RabbitMQ]
HostName = rabbit.example
Port = 5673
VirtualHost = audio
UserName = conv
Password = "p@ss w#rd"   ; a quoted value may contain " #"
TLS = yes
QueueName = Q
ResultsExchange = R
DeadLetterQueue = D
QueueType = Quorum
[AsteriskAMI]
Addr = [::1]
Port = 5039
User = u
Secret = pa#ss
Channel = Local/s@hold/n
Context = conv-ctx
Exten = go
AuthType = MD5
TLS = on
TLSCAFile = /etc/ssl/ca.pem
TLSVerify = true
PingInterval = 500ms
ActionTimeout = 2.5
[Worker]
Concurrency = 16
JobTimeout = 2m
MaxAttempts = 3
AllowedRoots = /var/local/auditorai, /srv/audio  /data
RetryDelay = 0
RetryMaxDelay = 1h
DrainTimeout = 0.25
InputExtension = .GSM
OutputExtension = .wav
[Metrics]
Listen = [::1]:0
[Logging]
MinimumLevel = debug
Format = json
`);
    assert.equal(c.rabbitmq.url, 'amqps://conv:p%40ss%20w%23rd@rabbit.example:5673/audio');
    assert.equal(c.rabbitmq.password, 'p@ss w#rd');
    assert.equal(c.rabbitmq.queueType, 'quorum');
    assert.equal(c.ami.host, '::1');
    assert.equal(c.ami.secret, 'pa#ss', 'a # without a space before it is part of the value');
    assert.equal(c.ami.authType, 'md5');
    assert.equal(c.ami.tlsCaFile, '/etc/ssl/ca.pem');
    assert.equal(c.ami.pingIntervalMs, 500);
    assert.equal(c.ami.actionTimeoutMs, 2500);
    assert.equal(c.worker.jobTimeoutMs, 120_000);
    assert.deepEqual(c.worker.allowedRoots, ['/var/local/auditorai', '/srv/audio', '/data']);
    assert.equal(c.worker.retryDelayMs, 0);
    assert.equal(c.worker.retryMaxDelayMs, 3_600_000);
    assert.equal(c.worker.drainTimeoutMs, 250);
    assert.equal(c.worker.inputExtension, '.gsm');
    assert.deepEqual(c.metrics, { enabled: true, host: '::1', port: 0 });
    assert.deepEqual(c.logging, { level: 'debug', format: 'json' });
  });

  void test('Listen accepts host:port, a bare port and off', () => {
    assert.deepEqual(parse(`${MINIMAL}[Metrics]\nListen = 0.0.0.0:9100\n`).metrics, { enabled: true, host: '0.0.0.0', port: 9100 });
    assert.deepEqual(parse(`${MINIMAL}[Metrics]\nListen = 9100\n`).metrics, { enabled: true, host: '127.0.0.1', port: 9100 });
    assert.equal(parse(`${MINIMAL}[Metrics]\nListen = off\n`).metrics.enabled, false);
  });

  void test('an amqp(s) Url replaces the parts', () => {
    const c = parse(`${MINIMAL}[RabbitMQ]\nUrl = amqps://bob:s%2Fcret@mq.example/prod?heartbeat=10\n`);
    assert.equal(c.rabbitmq.tls, true);
    assert.equal(c.rabbitmq.port, 5671);
    assert.equal(c.rabbitmq.hostname, 'mq.example');
    assert.equal(c.rabbitmq.vhost, 'prod');
    assert.equal(c.rabbitmq.username, 'bob');
    assert.equal(c.rabbitmq.password, 's/cret');
    assert.equal(c.rabbitmq.url, 'amqps://bob:s%2Fcret@mq.example:5671/prod?heartbeat=10');
    assert.deepEqual(c.rabbitmq.hosts, ['mq.example:5671']);
  });
});

void describe('[RabbitMQ] HostName as the nodes of a cluster', () => {
  void test('a comma-separated list of host[:port]: every node in order, Port for those without one', () => {
    const c = parse(`${MINIMAL}[RabbitMQ]\nHostName = rmq1:5672, rmq2 ,10.0.0.3:5673\nPort = 5670\nPassword = pw\n`);
    assert.deepEqual(c.rabbitmq.hosts, ['rmq1:5672', 'rmq2:5670', '10.0.0.3:5673']);
    // The URL (credentials, vhost) names the first node; the client tries the others after it.
    assert.equal(c.rabbitmq.url, 'amqp://guest:pw@rmq1:5672/%2F');
    assert.equal(c.rabbitmq.hostname, 'rmq1');
    assert.equal(c.rabbitmq.port, 5672);
  });

  void test('TLS: nodes without a port take 5671', () => {
    const c = parse(`${MINIMAL}[RabbitMQ]\nHostName = a.example, b.example\nTLS = true\n`);
    assert.deepEqual(c.rabbitmq.hosts, ['a.example:5671', 'b.example:5671']);
    assert.match(c.rabbitmq.url, /^amqps:\/\/guest:guest@a\.example:5671\//);
  });

  void test('one host, with or without a port, and one IPv6 address still work', () => {
    assert.deepEqual(parse(`${MINIMAL}[RabbitMQ]\nHostName = mq:5999\n`).rabbitmq.hosts, ['mq:5999']);
    const v6 = parse(`${MINIMAL}[RabbitMQ]\nHostName = [fd00::1]\n`).rabbitmq;
    assert.deepEqual(v6.hosts, ['[fd00::1]:5672']);
    assert.equal(v6.url, 'amqp://guest:guest@[fd00::1]:5672/%2F');
    assert.deepEqual(parse(`${MINIMAL}[RabbitMQ]\nHostName = ::1\n`).rabbitmq.hosts, ['[::1]:5672']);
  });

  const bad: [value: string, why: RegExp][] = [
    ['rmq1,,rmq2', /an item is empty/],
    ['rmq1, ', /an item is empty/],
    ['rmq1:5672, bad host!', /"bad host!" is not a host/],
    ['rmq1:99999', /not a host|port must be from 1 to 65535/],
    ['rmq1:0', /port must be from 1 to 65535/],
    ['rmq1:abc', /"rmq1:abc" is not a host/],
    ['rmq1;rmq2', /is not a host/],
    ['[fd00::1]:5672, [fd00::2]:5672', /IPv6 address works as the only host, not in a list/],
    ['rmq1:5672, rmq1:5672', /a node is listed twice/],
  ];
  for (const [value, why] of bad) {
    void test(`HostName = ${value}: refused, naming file, section, key, value and what is allowed`, () => {
      const message = errorOf(`${MINIMAL}[RabbitMQ]\nHostName = ${value}\n`);
      assert.ok(
        message.startsWith(
          `${FILE}: [RabbitMQ] HostName = ${JSON.stringify(value.trim())}: must be a host name or IP address, ` +
            'or a comma-separated list of host[:port]',
        ),
        message,
      );
      assert.match(message, why);
      assert.match(message, /\(line 5\)$/);
    });
  }

  void test('Url keeps one host; a HostName list beside it is refused like any part', () => {
    assert.match(errorOf(`${MINIMAL}[RabbitMQ]\nUrl = amqp://mq\nHostName = a, b\n`), /Url and HostName are both set/);
  });
});

void describe('[RabbitMQ] DeliveryLimit', () => {
  void test('quorum: read as a whole number; default 20', () => {
    assert.equal(parse(`${MINIMAL}[RabbitMQ]\nQueueType = quorum\nDeliveryLimit = 5\n`).rabbitmq.deliveryLimit, 5);
    assert.equal(parse(`${MINIMAL}[RabbitMQ]\nQueueType = quorum\n`).rabbitmq.deliveryLimit, 20);
  });

  void test('out of range: refused with the range', () => {
    for (const value of ['0', '10001', 'many', '-1']) {
      assert.match(
        errorOf(`${MINIMAL}[RabbitMQ]\nQueueType = quorum\nDeliveryLimit = ${value}\n`),
        new RegExp(`\\[RabbitMQ\\] DeliveryLimit = "${value}": must be a whole number from 1 to 10000 \\(line 6\\)$`),
      );
    }
  });

  void test('set with a classic queue: a warning that it is not used', () => {
    const c = parse(`${MINIMAL}[RabbitMQ]\nDeliveryLimit = 5\n`);
    assert.ok(
      c.warnings.some((w) => /DeliveryLimit is set but QueueType is classic: it is not used/.test(w)),
      c.warnings.join('\n'),
    );
  });
});

void describe('bad values: one message naming file, section, key, value and what is allowed', () => {
  const cases: [section: string, key: string, value: string, allowed: RegExp][] = [
    ['Worker', 'Concurrency', 'abc', /whole number from 1 to 256/],
    ['Worker', 'Concurrency', '0', /from 1 to 256/],
    ['Worker', 'Concurrency', '257', /from 1 to 256/],
    ['Worker', 'Concurrency', '2.5', /whole number/],
    ['Worker', 'MaxAttempts', '-1', /from 1 to 100/],
    ['Worker', 'JobTimeout', 'soon', /seconds from 0.01 to 86400/],
    ['Worker', 'RetryDelay', '5 minutes', /seconds/],
    ['Worker', 'AllowedRoots', 'relative/path', /absolute/],
    ['Worker', 'AllowedRoots', '/var/local/../etc', /not normalised/],
    ['Worker', 'AllowedRoots', '/var/local/', /not normalised \(write \/var\/local\)/],
    ['Worker', 'AllowedRoots', '/var/a b;c', /character/],
    ['Worker', 'InputExtension', 'gsm', /a dot and 1 to 16 letters/],
    ['Worker', 'OutputExtension', '.gsm', /must differ from InputExtension/],
    ['AsteriskAMI', 'Port', '70000', /TCP port number from 1 to 65535/],
    ['AsteriskAMI', 'Addr', 'bad host!', /host name or an IP address/],
    ['AsteriskAMI', 'AuthType', 'kerberos', /one of plain, md5/],
    ['AsteriskAMI', 'TLS', 'maybe', /true or false/],
    ['AsteriskAMI', 'TLSVerify', 'sure', /true or false/],
    ['AsteriskAMI', 'TLSCAFile', 'ca.pem', /absolute path/],
    ['AsteriskAMI', 'PingInterval', '0', /seconds from 0.01 to 3600/],
    ['AsteriskAMI', 'Channel', 'Local s@x', /channel such as Local\/s@audio-convert-hold/],
    ['AsteriskAMI', 'Context', 'a,b', /letters, digits/],
    ['AsteriskAMI', 'Exten', 'x y', /letters, digits/],
    ['RabbitMQ', 'Port', '0', /TCP port/],
    ['RabbitMQ', 'QueueType', 'stream', /one of classic, quorum/],
    ['RabbitMQ', 'QueueName', 'amq.jobs', /amq\./],
    ['RabbitMQ', 'DeadLetterQueue', 'Asterisk.Transcoding', /must differ from QueueName/],
    ['Metrics', 'Listen', 'localhost', /host:port/],
    ['Metrics', 'Listen', '127.0.0.1:99999', /host:port/],
    ['Logging', 'MinimumLevel', 'LOUD', /DEBUG, INFO, WARNING, ERROR, CRITICAL/],
    ['Logging', 'Format', 'xml', /journald, text, json/],
  ];
  for (const [section, key, value, allowed] of cases) {
    void test(`[${section}] ${key} = ${value}`, () => {
      const message = errorOf(`${MINIMAL}[${section}]\n${key} = ${value}\n`);
      assert.ok(message.startsWith(`${FILE}: [${section}] ${key} = ${JSON.stringify(value)}: `), message);
      assert.match(message, allowed);
      assert.match(message, /\(line \d+\)$/);
      assert.doesNotMatch(message, /\n/);
    });
  }

  void test('the example message from the brief, word for word', () => {
    assert.equal(
      errorOf(`${MINIMAL}[Worker]\nConcurrency = abc\n`),
      `${FILE}: [Worker] Concurrency = "abc": must be a whole number from 1 to 256 (line 5)`,
    );
  });

  void test('RetryMaxDelay below RetryDelay names both', () => {
    assert.match(
      errorOf(`${MINIMAL}[Worker]\nRetryDelay = 10m\nRetryMaxDelay = 60\n`),
      /\[Worker\] RetryMaxDelay = "60": RetryMaxDelay \(60 s\) must not be less than RetryDelay \(600 s\)/,
    );
  });

  void test('a bad Url is shown with its password masked', () => {
    const message = errorOf(`${MINIMAL}[RabbitMQ]\nUrl = http://bob:hunter2@mq\n`);
    assert.match(message, /\[RabbitMQ\] Url = "http:\/\/bob:\*\*\*@mq": must be an amqp:\/\/ or amqps:\/\/ URL/);
    assert.doesNotMatch(message, /hunter2/);
  });

  void test('a bad secret value is never shown', () => {
    const message = errorOf('[AsteriskAMI]\nUser = u\n', { AUDIOCONVERT_AMI_SECRET: 'abc\u0001def' });
    assert.match(
      message,
      /\[AsteriskAMI\] Secret = \(hidden\): .*control characters \(from environment variable AUDIOCONVERT_AMI_SECRET\)/,
    );
    assert.doesNotMatch(message, /abc/);
  });

  void test('Url together with the separate keys is refused', () => {
    assert.match(
      errorOf(`${MINIMAL}[RabbitMQ]\nUrl = amqp://localhost\nPort = 5673\n`),
      /\[RabbitMQ\] Url and Port are both set: use either Url or the separate keys/,
    );
  });

  void test('a key set twice is refused with both lines', () => {
    assert.match(
      errorOf(`${MINIMAL}[Worker]\nConcurrency = 2\nconcurrency = 3\n`),
      /\[Worker\] Concurrency \(line 6\): set twice \(also on line 5\); keep one/,
    );
  });

  void test('a line that is not Key = value (outside ignored sections) names its line', () => {
    assert.equal(errorOf(`${MINIMAL}[Worker]\nConcurrency 8\n`), `${FILE}: line 5: expected "Key = value" or "[Section]"`);
    assert.match(errorOf('User = x\n'), /line 1: a key before any \[Section\] header/);
    assert.match(errorOf(`${MINIMAL}[Worker]\nAllowedRoots = "/var\n`), /line 5: a quoted value is not closed/);
  });
});

void describe('unknown keys and sections', () => {
  void test('an unknown key is an error that suggests the nearest known key', () => {
    const message = errorOf(`${MINIMAL}[Worker]\nConcurency = 8\n`);
    assert.match(message, new RegExp(`^${FILE}: \\[Worker\\] Concurency \\(line 5\\): unknown key; did you mean Concurrency\\?`));
    assert.match(errorOf(`${MINIMAL}[Logging]\nMinLevel = DEBUG\n`), /did you mean MinimumLevel\?/);
    assert.match(errorOf(`${MINIMAL}[AsteriskAMI]\nSecrte = x\n`), /did you mean Secret\?/);
  });

  void test('a far-off key lists the known keys; a key of another section says where it belongs', () => {
    assert.match(errorOf(`${MINIMAL}[Metrics]\nColour = blue\n`), /unknown key \(keys of \[Metrics\]: Listen\)/);
    assert.match(errorOf(`${MINIMAL}[Worker]\nQueueName = x\n`), /unknown key in \[Worker\]; it belongs in \[RabbitMQ\]/);
  });

  void test('the value of an unknown key is not echoed (it might be a secret)', () => {
    assert.doesNotMatch(errorOf(`${MINIMAL}[AsteriskAMI]\nSecrte = topsecret\n`), /topsecret/);
  });

  void test('an unknown section is ignored with a note, and a near miss gets a suggestion', () => {
    const c = parse(`${MINIMAL}[Rabbit]\nHostName = elsewhere\n[Other]\nanything goes here\n`);
    assert.equal(c.rabbitmq.hostname, 'localhost');
    assert.equal(c.warnings.length, 2);
    assert.match(
      c.warnings[0] ?? '',
      /section \[Rabbit\] \(line 4\) is not used by audio-convert and is ignored; did you mean \[RabbitMQ\]\?/,
    );
    assert.doesNotMatch(c.warnings[1] ?? '', /did you mean/);
  });
});

void describe('required AMI credentials', () => {
  void test('a missing User says how to fix it', () => {
    assert.match(
      errorOf('[AsteriskAMI]\nSecret = x\n'),
      new RegExp(`^${FILE}: \\[AsteriskAMI\\] User is missing: add it to \\[AsteriskAMI\\]`),
    );
    assert.match(errorOf(''), /\[AsteriskAMI\] User is missing/);
  });

  void test('a missing Secret names the file key, the environment variable and the credential', () => {
    const message = errorOf('[AsteriskAMI]\nUser = u\n');
    assert.match(message, /\[AsteriskAMI\] Secret is missing: set Secret = "\.\.\." in \[AsteriskAMI\]/);
    assert.match(message, /AUDIOCONVERT_AMI_SECRET/);
    assert.match(message, /LoadCredential=ami-secret:/);
  });
});

void describe('secrets from the environment and systemd credentials', () => {
  const credentials = (files: Record<string, string>): string => {
    const dir = mkdtempSync(join(tmpdir(), 'ac-creds-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    return dir;
  };

  void test('environment variables override the file', () => {
    const c = parse(`${SEED}[RabbitMQ]\nPassword = file-pw\n`, {
      AUDIOCONVERT_AMI_SECRET: 'env-ami',
      AUDIOCONVERT_AMQP_PASSWORD: 'env-pw',
    });
    assert.equal(c.ami.secret, 'env-ami');
    assert.equal(c.rabbitmq.password, 'env-pw');
    assert.equal(c.rabbitmq.url, 'amqp://guest:env-pw@localhost:5672/%2F');
  });

  void test('AUDIOCONVERT_AMQP_URL replaces the file parts (noted), and an env password goes into it', () => {
    const c = parse(SEED, { AUDIOCONVERT_AMQP_URL: 'amqp://app:url-pw@mq:5700/v', AUDIOCONVERT_AMQP_PASSWORD: 'env-pw' });
    assert.equal(c.rabbitmq.hostname, 'mq');
    assert.equal(c.rabbitmq.port, 5700);
    assert.equal(c.rabbitmq.url, 'amqp://app:env-pw@mq:5700/v');
    assert.ok(c.warnings.some((w) => /HostName ignored: AUDIOCONVERT_AMQP_URL is set/.test(w)));
  });

  void test('empty environment variables count as unset', () => {
    assert.equal(parse(SEED, { AUDIOCONVERT_AMI_SECRET: '' }).ami.secret, 'Tu6...JYL');
  });

  void test('systemd credentials are read, trailing newline trimmed', () => {
    const dir = credentials({ 'ami-secret': 'cred-ami\n', 'amqp-password': 'cred-pw\r\n' });
    const c = parse('[AsteriskAMI]\nUser = auditorai\n', {}, dir);
    assert.equal(c.ami.secret, 'cred-ami');
    assert.equal(c.rabbitmq.password, 'cred-pw');
    // loadConfig takes the directory from CREDENTIALS_DIRECTORY.
    const file = join(dir, 'x.conf');
    writeFileSync(file, '[AsteriskAMI]\nUser = auditorai\n');
    assert.equal(loadConfig(file, { CREDENTIALS_DIRECTORY: dir }).ami.secret, 'cred-ami');
  });

  void test('credentials override the file; the environment overrides credentials', () => {
    const dir = credentials({ 'ami-secret': 'cred-ami' });
    assert.equal(parse(SEED, {}, dir).ami.secret, 'cred-ami');
    assert.equal(parse(SEED, { AUDIOCONVERT_AMI_SECRET: 'env-ami' }, dir).ami.secret, 'env-ami');
  });

  void test('a credentials directory without our files changes nothing', () => {
    const dir = credentials({ 'something-else': 'x' });
    assert.equal(parse(SEED, {}, dir).ami.secret, 'Tu6...JYL');
  });
});

void describe('redaction', () => {
  const c = parse(`${SEED}[RabbitMQ]\nPassword = rabbit-pw\n`);

  void test('check-config output holds no secret; the url password is masked', () => {
    const printed = JSON.stringify(redactedConfig(c), null, 2);
    assert.doesNotMatch(printed, /Tu6\.\.\.JYL|rabbit-pw/);
    const r = redactedConfig(c);
    assert.equal(r.ami.secret, '***');
    assert.equal(r.rabbitmq.password, '***');
    assert.equal(r.rabbitmq.url, 'amqp://guest:***@localhost:5672/%2F');
    assert.equal(r.ami.username, 'auditorai', 'everything else is shown');
    assert.equal(c.ami.secret, 'Tu6...JYL', 'the config itself is untouched');
  });

  void test('secretsOf lists the secrets (and their URL-escaped forms) for log redaction', () => {
    const s = secretsOf(parse(`${SEED}[RabbitMQ]\nPassword = "a b@c"\n`));
    assert.ok(s.includes('Tu6...JYL'));
    assert.ok(s.includes('a b@c'));
    assert.ok(s.includes('a%20b%40c'));
    assert.ok(!secretsOf(parse(SEED)).includes('guest'), 'the public default password is not a secret');
  });

  void test('redactUrl works on URLs and on text that is not one', () => {
    assert.equal(redactUrl('amqps://u:p%40ss@h:1/v'), 'amqps://u:***@h:1/v');
    assert.equal(redactUrl('amqp://h'), 'amqp://h');
    assert.equal(redactUrl('amqp://u:p/x@h'), 'amqp://u:***@h');
  });
});

void describe('the file itself', () => {
  void test('a world-readable file gets a warning with the fix', () => {
    const warning = configFileWarnings(FILE, { mode: 0o100644 });
    assert.ok(warning !== undefined);
    assert.match(warning, /readable by every user \(mode 0644\)/);
    assert.match(warning, /chmod 640 \/etc\/auditorai\/transcoding\.conf/);
    assert.equal(configFileWarnings(FILE, { mode: 0o100640 }), undefined);
    assert.equal(configFileWarnings(FILE, undefined), undefined);
  });

  void test('a real file: mode from stat', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'ac-mode-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, 'transcoding.conf');
    writeFileSync(file, SEED);
    chmodSync(file, 0o640);
    assert.equal(configFileWarnings(file, { mode: 0o640 }), undefined);
  });

  void test('a missing file is a ConfigError naming it', () => {
    assert.throws(
      () => loadConfig('/nonexistent/transcoding.conf', {}),
      (err: unknown) =>
        err instanceof ConfigError &&
        /^\/nonexistent\/transcoding\.conf: cannot read the configuration file: no such file/.test(err.message),
    );
  });

  void test('a directory is a ConfigError naming it', () => {
    assert.throws(
      () => loadConfig(tmpdir(), {}),
      (err: unknown) => err instanceof ConfigError && err.message.includes('is a directory'),
    );
  });
});
