/**
 * `audio-convert doctor` against the real RabbitMQ and the AMI emulator over TCP: all OK, and each
 * broken piece reported as FAIL with its fix. Each test has its own queue names (test-<uuid>).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, afterEach, before, describe, it } from 'node:test';
import { Connection } from 'rabbitmq-client';
import { openRabbit } from '../helpers/stack.js';
import { AsteriskEmulator } from '../../src/emulator/server.js';
import { runDoctor } from '../../src/tools/doctor.js';
import { loadConfig } from '../../src/config.js';
import { brokerNames, declareTopology } from '../../src/queue/broker.js';
import { bulkBrokerNames, serviceQueues } from '../../src/worker/lanes.js';

const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const ROOT = resolve(import.meta.dirname, '../..');

let rabbit: Connection;
let emulator: AsteriskEmulator;
let dir: string;
const queuesToDelete = new Set<string>();

before(async () => {
  rabbit = await openRabbit();
  dir = mkdtempSync(join(tmpdir(), 'doctor-test-'));
  emulator = await AsteriskEmulator.start({ port: 0, users: { auditorai: 'simulator' }, mode: 'instant', root: dir });
});

afterEach(async () => {
  for (const queue of queuesToDelete) await rabbit.queueDelete({ queue }).catch(() => undefined);
  queuesToDelete.clear();
  emulator.refuseLogins(false);
  emulator.setDialplan({ convertContextPresent: true });
});

after(async () => {
  await emulator?.close();
  await rabbit?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Overrides {
  readonly amqpUrl?: string;
  readonly secret?: string;
  readonly queueType?: 'classic' | 'quorum';
  readonly amiPort?: number;
  readonly allowedRoots?: string;
}

/** A config file (mode 0600) for the emulator and a fresh queue name. */
function testConfig(overrides: Overrides = {}): { file: string; queue: string } {
  const queue = `test-${randomUUID()}`;
  const file = join(dir, `${queue}.conf`);
  writeFileSync(
    file,
    `[RabbitMQ]\nUrl = ${overrides.amqpUrl ?? AMQP_URL}\nQueueName = ${queue}\nDeadLetterQueue = ${queue}.dead\n` +
      `ResultsExchange = ${queue}.results\nQueueType = ${overrides.queueType ?? 'classic'}\n` +
      `[AsteriskAMI]\nAddr = 127.0.0.1\nPort = ${overrides.amiPort ?? emulator.port}\nUser = auditorai\nSecret = ${overrides.secret ?? 'simulator'}\n` +
      `[Worker]\nAllowedRoots = ${overrides.allowedRoots ?? dir}\n`,
    { mode: 0o600 },
  );
  queuesToDelete.add(queue);
  queuesToDelete.add(`${queue}.dead`);
  return { file, queue };
}

async function doctor(file: string): Promise<{ code: number; text: string }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  const code = await runDoctor(file, {}, out);
  return { code, text };
}

/** A TCP port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise<void>((done) => server.close(() => done()));
  return port;
}

describe('doctor', () => {
  it('all OK against RabbitMQ and the emulator (queues absent: INFO, not FAIL)', async () => {
    const { file, queue } = testConfig();
    const { code, text } = await doctor(file);
    assert.equal(code, 0, text);
    assert.match(text, new RegExp(`^OK   config ${file} loads$`, 'm'));
    assert.match(text, /^OK {3}RabbitMQ reachable at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672\/%2F$/m);
    assert.match(text, new RegExp(`^INFO input queue '${queue}' does not exist yet`, 'm'));
    assert.match(text, new RegExp(`^OK   AMI reachable at 127\\.0\\.0\\.1:${emulator.port}$`, 'm'));
    assert.match(text, /^OK {3}AMI login as 'auditorai'$/m);
    assert.match(text, /^OK {3}dialplan answers \(Local\/s@audio-convert-hold → ping@audio-convert\): pong$/m);
    assert.match(text, new RegExp(`^OK   dialplan roots ${dir}/gsm, ${dir}/wav lie inside \\[Worker\\] AllowedRoots \\(${dir}\\)$`, 'm'));
    assert.match(text, /^OK {3}conversion extension convert@audio-convert present/m);
    assert.match(text, /^INFO conversion step: the perl step — app_convert\.so is not loaded/m);
    assert.match(text, /^all checks passed$/m);
    assert.doesNotMatch(text, /^FAIL/m);
  });

  it('says which conversion step the dialplan will use: Convert() on an Asterisk with app_convert loaded', async () => {
    const withModule = await AsteriskEmulator.start({
      port: 0,
      users: { auditorai: 'simulator' },
      mode: 'instant',
      root: dir,
      step: 'convert-app',
    });
    try {
      const { file } = testConfig({ amiPort: withModule.port });
      const { code, text } = await doctor(file);
      assert.equal(code, 0, text);
      assert.match(text, /^INFO conversion step: Convert\(\) — app_convert\.so is loaded: decoded in process/m);
      assert.doesNotMatch(text, /perl step/);
    } finally {
      await withModule.close();
    }
  });

  it("AllowedRoots and the dialplan's roots disagree: FAIL naming both, with the fix", async () => {
    const { file } = testConfig({ allowedRoots: `/var/local/auditorai, ${dir}/gsm` });
    const { code, text } = await doctor(file);
    assert.equal(code, 1, text);
    assert.match(
      text,
      new RegExp(
        `^FAIL dialplan roots agree with \\[Worker\\] AllowedRoots: the dialplan's AUDIOCONVERT_WAV_ROOT ${dir}/wav is outside \\[Worker\\] AllowedRoots .*\\n {5}fix: add ${dir}/wav`,
        'm',
      ),
    );
    assert.match(
      text,
      /^FAIL dialplan roots agree with \[Worker\] AllowedRoots: \[Worker\] AllowedRoots has \/var\/local\/auditorai, which holds neither dialplan root/m,
    );
    assert.doesNotMatch(text, /AUDIOCONVERT_GSM_ROOT .* is outside/);
  });

  it('reports the queues the service declared, with message and consumer counts', async () => {
    const { file, queue } = testConfig();
    await rabbit.queueDeclare({ queue, durable: true });
    await rabbit.queueDeclare({ queue: `${queue}.dead`, durable: true });
    const publisher = rabbit.createPublisher({ confirm: true });
    await publisher.send(queue, { job_id: 'x' });
    await publisher.close();
    const { code, text } = await doctor(file);
    assert.equal(code, 0, text);
    assert.match(
      text,
      new RegExp(`^OK   input queue '${queue}' present with the expected arguments \\(1 message waiting, 0 consumers\\)$`, 'm'),
    );
    assert.match(text, /^INFO nobody consumes/m);
    assert.match(text, new RegExp(`^OK   dead-letter queue '${queue}\\.dead' present \\(0 messages\\)$`, 'm'));
  });

  it('checks every piece of the topology: delay queues and results exchange included', async () => {
    const { file, queue } = testConfig();
    // The defaults: MaxAttempts 5, RetryDelay 5 s → delay queues of 5, 10, 20 and 40 s.
    const delays = [5000, 10000, 20000, 40000].map((ms) => `${queue}.retry.${ms}`);
    for (const q of delays) queuesToDelete.add(q);
    after(() => rabbit.exchangeDelete({ exchange: `${queue}.results` }).catch(() => undefined));
    await declareTopology(rabbit, brokerNames(loadConfig(file, {})));
    const all = await doctor(file);
    assert.equal(all.code, 0, all.text);
    for (const q of delays)
      assert.match(all.text, new RegExp(`^OK   delay queue '${q.replaceAll('.', '\\.')}' present with the expected TTL`, 'm'));
    assert.match(all.text, new RegExp(`^OK   results exchange '${queue}\\.results' present \\(topic, durable\\)$`, 'm'));

    // Declared by someone else with other arguments: each is a FAIL with the fix.
    await rabbit.queueDelete({ queue: delays[1]! });
    await rabbit.queueDeclare({ queue: delays[1]!, durable: true, arguments: { 'x-message-ttl': 999 } });
    await rabbit.exchangeDelete({ exchange: `${queue}.results` });
    await rabbit.exchangeDeclare({ exchange: `${queue}.results`, type: 'direct', durable: true });
    const wrong = await doctor(file);
    assert.equal(wrong.code, 1);
    assert.match(
      wrong.text,
      new RegExp(`^FAIL delay queue '${delays[1]!.replaceAll('.', '\\.')}': .*x-message-ttl.*\\n     fix: drain it and delete it`, 'm'),
    );
    assert.match(wrong.text, new RegExp(`^FAIL results exchange '${queue}\\.results': exists with other arguments.*\\n     fix: `, 'm'));
  });

  it('checks the bulk lane too: its queue and its own delay queues; a bulk queue with other arguments is a FAIL', async () => {
    const { file, queue } = testConfig();
    const names = brokerNames(loadConfig(file, {}));
    for (const q of serviceQueues(names)) queuesToDelete.add(q);
    after(() => rabbit.exchangeDelete({ exchange: `${queue}.results` }).catch(() => undefined));
    const fresh = await doctor(file);
    assert.equal(fresh.code, 0, fresh.text);
    assert.match(fresh.text, new RegExp(`^INFO bulk queue '${queue}\\.bulk' does not exist yet: the service declares it at start-up`, 'm'));

    await declareTopology(rabbit, names);
    await declareTopology(rabbit, bulkBrokerNames(names));
    const all = await doctor(file);
    assert.equal(all.code, 0, all.text);
    assert.match(
      all.text,
      new RegExp(`^OK   bulk queue '${queue}\\.bulk' present with the expected arguments \\(0 messages waiting, 0 consumers\\)$`, 'm'),
    );
    assert.match(all.text, new RegExp(`^OK   delay queue '${queue}\\.bulk\\.retry\\.5000' present with the expected TTL`, 'm'));
    assert.doesNotMatch(all.text, /^INFO .* does not exist yet/m);

    // A bulk queue someone declared as a quorum queue: the bridge's classic declare would be refused at start-up.
    await rabbit.queueDelete({ queue: `${queue}.bulk` });
    await rabbit.queueDeclare({ queue: `${queue}.bulk`, durable: true, arguments: { 'x-queue-type': 'quorum' } });
    const wrong = await doctor(file);
    assert.equal(wrong.code, 1, wrong.text);
    assert.match(wrong.text, new RegExp(`^FAIL bulk queue '${queue}\\.bulk': .*x-queue-type.*\\n     fix: .*QueueType`, 'm'));
  });

  it('a fresh install: every missing piece is INFO (the service declares it at start-up), not FAIL', async () => {
    const { file, queue } = testConfig();
    const { code, text } = await doctor(file);
    assert.equal(code, 0, text);
    assert.match(
      text,
      new RegExp(`^INFO delay queue '${queue}\\.retry\\.5000' does not exist yet: the service declares it at start-up`, 'm'),
    );
    assert.match(text, new RegExp(`^INFO results exchange '${queue}\\.results' does not exist yet`, 'm'));
  });

  it('a queue with other arguments: FAIL with the difference and the fix', async () => {
    const { file, queue } = testConfig({ queueType: 'quorum' });
    await rabbit.queueDeclare({ queue, durable: true });
    const { code, text } = await doctor(file);
    assert.equal(code, 1);
    // The first argument that differs (a quorum queue is declared with its limit and dead-letter target too).
    assert.match(
      text,
      new RegExp(
        `^FAIL input queue '${queue}': .*other arguments \\(argument x-[a-z-]+: .*\\n     fix: .*QueueType.*rabbitmqctl delete_queue`,
        'm',
      ),
    );
  });

  it('AMI login refused: FAIL with the Secret / manager.conf fix, dialplan skipped, exit 1', async () => {
    const { file } = testConfig({ secret: 'wrong' });
    const { code, text } = await doctor(file);
    assert.equal(code, 1);
    assert.match(text, /^OK {3}AMI reachable/m);
    assert.match(text, /^FAIL AMI login as 'auditorai': .*\n {5}fix: check \[AsteriskAMI\] Secret .*manager\.conf.*manager reload/m);
    assert.match(text, /^SKIP dialplan/m);
    assert.match(text, /^1 check failed$/m);
  });

  it('emulator refusing every login: same FAIL', async () => {
    const { file } = testConfig();
    emulator.refuseLogins(true);
    const { code, text } = await doctor(file);
    assert.equal(code, 1);
    assert.match(text, /^FAIL AMI login as 'auditorai': /m);
  });

  it('dialplan missing: FAIL "Extension does not exist" with the extensions.conf fix', async () => {
    const { file } = testConfig();
    emulator.setDialplan({ convertContextPresent: false });
    const { code, text } = await doctor(file);
    assert.equal(code, 1);
    assert.match(text, /^OK {3}AMI login as 'auditorai'$/m);
    assert.match(
      text,
      /^FAIL (dialplan answers|conversion extension convert@audio-convert).*Extension does not exist.*\n {5}fix: copy config\/asterisk\/extensions\.conf into \/etc\/asterisk\/extensions\.conf.*dialplan reload/m,
    );
  });

  it('RabbitMQ unreachable: FAIL with how to start it; the AMI checks still run', async () => {
    const { file } = testConfig({ amqpUrl: `amqp://guest:guest@127.0.0.1:${await closedPort()}` });
    const { code, text } = await doctor(file);
    assert.equal(code, 1);
    assert.match(
      text,
      /^FAIL RabbitMQ: cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:\d+\/%2F: .*ECONNREFUSED.*\n {5}fix: start it: systemctl start rabbitmq-server/m,
    );
    assert.match(text, /^SKIP RabbitMQ queues/m);
    assert.match(text, /^OK {3}AMI login as 'auditorai'$/m);
  });

  it('AMI unreachable: FAIL with how to start Asterisk', async () => {
    const port = await closedPort();
    const { file } = testConfig({ amiPort: port });
    const { code, text } = await doctor(file);
    assert.equal(code, 1);
    assert.match(text, new RegExp(`^FAIL AMI reachable at 127\\.0\\.0\\.1:${port}: .*\\n     fix: start Asterisk`, 'm'));
  });

  it('a config file with secrets readable by everyone: WARN with the chmod, still exit 0', async () => {
    const { file } = testConfig();
    chmodSync(file, 0o644);
    const { code, text } = await doctor(file);
    assert.equal(code, 0, text);
    assert.match(text, new RegExp(`^WARN ${file} .*readable by every user \\(mode 0644\\).*run chmod 640 ${file}`, 'm'));
  });

  it('a bad config file: FAIL naming the key, nothing else checked', async () => {
    const file = join(dir, `bad-${randomUUID()}.conf`);
    writeFileSync(file, '[AsteriskAMI]\nUser = auditorai\nSecret = x\nPort = 99999\n', { mode: 0o600 });
    const { code, text } = await doctor(file);
    assert.equal(code, 1);
    assert.match(text, /^FAIL config: .*\[AsteriskAMI\] Port.*99999.*\n {5}fix: correct /m);
    assert.doesNotMatch(text, /RabbitMQ/);
  });

  it('the CLI prints the report and exits promptly with the code', async () => {
    const { file } = testConfig();
    const started = Date.now();
    const result = await new Promise<{ code: number; stdout: string }>((done) => {
      execFile(
        process.execPath,
        ['--import', import.meta.resolve('tsx'), join(ROOT, 'src/cli.ts'), 'doctor', '--config', file],
        { timeout: 60_000 },
        (error, stdout) => {
          done({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout });
        },
      );
    });
    assert.equal(result.code, 0, result.stdout);
    assert.match(result.stdout, /^all checks passed$/m);
    assert.ok(Date.now() - started < 15_000, 'doctor must not hang on open connections');
  });
});
