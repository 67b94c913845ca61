/**
 * `audio-convert enqueue` against the real RabbitMQ: the messages it puts on the queue, --dir,
 * and --wait with a stand-in "service" in this test that answers on reply_to.
 * Each test has its own queue (QueueName = test-<uuid>), deleted afterwards.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { Connection, type AsyncMessage } from 'rabbitmq-client';
import { capture } from '../helpers/capture.js';
import { openRabbit } from '../helpers/stack.js';
import { loadConfig, type Config } from '../../src/config.js';
import { convertedResult, failedResult } from '../../src/queue/message.js';
import { jobIdFor, type EnqueueArgs } from '../../src/tools/enqueue-plan.js';
import { runEnqueue, ENQUEUE_HELP } from '../../src/tools/enqueue.js';

const AMQP_URL = 'amqp://guest:guest@127.0.0.1:5672';
const ROOT = resolve(import.meta.dirname, '../..');

let rabbit: Connection;
let dir: string;
const queuesToDelete = new Set<string>();
const cleanups: (() => Promise<void>)[] = [];

before(async () => {
  rabbit = await openRabbit();
  dir = mkdtempSync(join(tmpdir(), 'enqueue-test-'));
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
  for (const queue of queuesToDelete) await rabbit.queueDelete({ queue }).catch(() => undefined);
  queuesToDelete.clear();
});

after(async () => {
  await rabbit?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A config file naming a fresh queue; returns its path and the loaded Config. */
function testConfig(): { file: string; config: Config; queue: string } {
  const queue = `test-${randomUUID()}`;
  const file = join(dir, `${queue}.conf`);
  writeFileSync(
    file,
    `[RabbitMQ]\nUrl = ${AMQP_URL}\nQueueName = ${queue}\nDeadLetterQueue = ${queue}.dead\nResultsExchange = ${queue}.results\n` +
      '[AsteriskAMI]\nUser = auditorai\nSecret = simulator\n',
    { mode: 0o600 },
  );
  queuesToDelete.add(queue);
  return { file, config: loadConfig(file, {}), queue };
}

function args(partial: Partial<EnqueueArgs>): EnqueueArgs {
  return { positionals: [], ...partial };
}

/** Every message now on `queue`, in order (basicGet with ack). */
async function drain(queue: string): Promise<AsyncMessageLike[]> {
  const messages: AsyncMessageLike[] = [];
  for (;;) {
    const message = await rabbit.basicGet({ queue, noAck: true });
    if (message === undefined) return messages;
    messages.push(message);
  }
}
type AsyncMessageLike = Pick<AsyncMessage, 'body' | 'contentType' | 'messageId' | 'durable' | 'replyTo' | 'correlationId'>;

function runCli(argv: string[], cwd = ROOT): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    // tsx by URL: the child may run in a directory where the bare name 'tsx' does not resolve.
    execFile(
      process.execPath,
      ['--import', import.meta.resolve('tsx'), join(ROOT, 'src/cli.ts'), ...argv],
      { cwd, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** One reply of the stand-in service; `correlationId` overrides the job's (to send a stranger). */
interface Reply {
  readonly body: object;
  readonly correlationId?: string;
}

/**
 * The stand-in service: consumes `queue`, answers each job on its reply_to as the real service
 * does (correlation id kept). `answer` decides per job: a result, several replies, or undefined
 * to stay silent.
 */
function fakeService(
  queue: string,
  answer: (job: { job_id: string; gsm_path: string; wav_path: string }) => object | Reply[] | undefined,
): AsyncMessage[] {
  const seen: AsyncMessage[] = [];
  const publisher = rabbit.createPublisher({ confirm: true });
  const consumer = rabbit.createConsumer({ queue, queueOptions: { queue, durable: true } }, async (message) => {
    seen.push(message);
    const job = message.body as { job_id: string; gsm_path: string; wav_path: string };
    const answered = answer(job);
    if (answered === undefined || message.replyTo === undefined) return;
    const replies: Reply[] = Array.isArray(answered) ? (answered as Reply[]) : [{ body: answered }];
    for (const reply of replies) {
      const correlationId = reply.correlationId ?? message.correlationId;
      await publisher.send(
        {
          exchange: '',
          routingKey: message.replyTo,
          contentType: 'application/json',
          ...(correlationId === undefined ? {} : { correlationId }),
        },
        reply.body,
      );
    }
  });
  consumer.on('error', (error: unknown) => assert.fail(`fake service: ${String(error)}`));
  cleanups.push(async () => {
    await consumer.close();
    await publisher.close();
  });
  return seen;
}

const times = { startedAt: new Date('2026-01-01T00:00:00.000Z'), finishedAt: new Date('2026-01-01T00:00:00.250Z') };

describe('enqueue without --wait', () => {
  it('publishes one durable JSON job with absolute paths and messageId = job_id (spawned CLI)', async () => {
    const { file, queue } = testConfig();
    const { code, stdout, stderr } = await runCli(['enqueue', 'rel/call-123.gsm', 'out/call-123.wav', '--config', file], dir);
    assert.equal(code, 0, stderr);
    const messages = await drain(queue);
    assert.equal(messages.length, 1);
    const [message] = messages;
    const body = message!.body as Record<string, string>;
    assert.deepEqual(Object.keys(body), ['gsm_path', 'wav_path', 'job_id']);
    assert.equal(body.gsm_path, join(dir, 'rel/call-123.gsm'));
    assert.equal(body.wav_path, join(dir, 'out/call-123.wav'));
    assert.match(body.job_id!, /^call-123-[0-9a-f]{6}$/);
    assert.equal(message!.contentType, 'application/json');
    assert.equal(message!.messageId, body.job_id);
    assert.equal(message!.durable, true);
    assert.equal(message!.replyTo, undefined);
    assert.equal(stdout, `queued ${body.job_id} → ${body.wav_path}\n`);
  });

  it('--dir queues only the *.gsm files of the directory, sorted, one WAV each in --out', async () => {
    const { config, queue } = testConfig();
    const gsm = join(dir, `gsm-${randomUUID()}`);
    mkdirSync(join(gsm, 'nested.gsm'), { recursive: true }); // a directory named like a file: skipped
    for (const name of ['b.gsm', 'a.gsm', 'c 1.gsm', 'notes.txt', 'x.wav', 'upper.GSM', 'A0.gsm']) writeFileSync(join(gsm, name), 'x');
    symlinkSync(join(gsm, 'a.gsm'), join(gsm, 'link.gsm'));
    const c = capture();
    const code = await runEnqueue(config, args({ dir: gsm, out: 'wavs' }), c.io);
    assert.equal(code, 0, c.err());
    const bodies = (await drain(queue)).map((m) => m.body as Record<string, string>);
    assert.deepEqual(
      bodies.map((b) => b.gsm_path),
      ['A0.gsm', 'a.gsm', 'b.gsm', 'c 1.gsm', 'link.gsm'].map((n) => join(gsm, n)),
    );
    assert.deepEqual(
      bodies.map((b) => b.wav_path),
      ['A0.wav', 'a.wav', 'b.wav', 'c 1.wav', 'link.wav'].map((n) => resolve('wavs', n)),
    );
    // The id keeps only [A-Za-z0-9._:-]; the space becomes '_'.
    assert.match(bodies[3]!.job_id!, /^c_1-[0-9a-f]{6}$/);
    assert.equal(new Set(bodies.map((b) => b.job_id)).size, 5);
    assert.equal(c.out().trim().split('\n').length, 5);
  });

  it('refuses bad arguments with exit 2 and queues nothing', async () => {
    const { config } = testConfig();
    for (const bad of [
      args({ positionals: ['only-one.gsm'] }),
      args({ dir: dir }),
      args({ out: 'x', positionals: ['a.gsm', 'b.wav'] }),
      args({ positionals: ['a.gsm', 'b.wav'], wait: true, timeout: 'soon' }),
      args({ positionals: ['a.gsm', 'b.wav'], timeout: '5' }),
      args({ dir: join(dir, 'no-such-dir'), out: 'x' }),
    ]) {
      const c = capture();
      assert.equal(await runEnqueue(config, bad, c.io), 2, JSON.stringify(bad));
      assert.match(c.err(), /^audio-convert enqueue: .+\nTry 'audio-convert enqueue --help'/);
    }
    const cli = await runCli(['enqueue', 'one.gsm']);
    assert.equal(cli.code, 2);
    const help = await runCli(['enqueue', '--help']);
    assert.equal(help.code, 0);
    assert.equal(help.stdout, ENQUEUE_HELP);
  });

  it('an empty --dir is a runtime failure (exit 1), not silence', async () => {
    const { config } = testConfig();
    const empty = mkdtempSync(join(dir, 'empty-'));
    const c = capture();
    assert.equal(await runEnqueue(config, args({ dir: empty, out: 'x' }), c.io), 1);
    assert.match(c.err(), /no \*\.gsm files in/);
  });

  it('a queue declared with other arguments: exit 1 with the explanation', async () => {
    const { config, queue } = testConfig();
    await rabbit.queueDeclare({ queue, durable: true, arguments: { 'x-queue-type': 'quorum' } });
    const c = capture();
    assert.equal(await runEnqueue(config, args({ positionals: ['a.gsm', 'a.wav'] }), c.io), 1);
    assert.match(c.err(), /already exists with other arguments.*x-queue-type.*rabbitmqctl delete_queue/s);
  });

  it('job ids are unique and sanitised', () => {
    const taken = new Set<string>();
    const ids = Array.from({ length: 200 }, () => jobIdFor('/x/ça va;rm -rf.gsm', taken));
    assert.equal(new Set(ids).size, 200);
    for (const id of ids) assert.match(id, /^[A-Za-z0-9._:-]{1,128}$/);
    assert.match(jobIdFor('/x/.gsm'), /^\.gsm-[0-9a-f]{6}$|^job-[0-9a-f]{6}$/);
  });
});

describe('enqueue --wait', () => {
  it('collects every result from reply_to and prints the summary; exit 0 when all converted', async () => {
    const { config, queue } = testConfig();
    const gsm = join(dir, `gsm-${randomUUID()}`);
    mkdirSync(gsm);
    for (const name of ['one.gsm', 'two.gsm', 'three.gsm']) writeFileSync(join(gsm, name), 'x');
    const seen = fakeService(queue, (job) =>
      convertedResult({ jobId: job.job_id, gsmPath: job.gsm_path, wavPath: job.wav_path, wavBytes: 96044, attempts: 1, ...times }),
    );
    const c = capture();
    const code = await runEnqueue(config, args({ dir: gsm, out: join(dir, 'wav'), wait: true, timeout: '20' }), c.io);
    assert.equal(code, 0, c.err());
    assert.equal(seen.length, 3);
    for (const message of seen) {
      assert.equal(message.correlationId, (message.body as { job_id: string }).job_id);
      assert.match(message.replyTo ?? '', /^amq\.gen-/, 'a server-named reply queue');
    }
    assert.equal(new Set(seen.map((m) => m.replyTo)).size, 1);
    const out = c.out();
    assert.match(out, /^JOB_ID\s+STATUS\s+WAV_BYTES\/ERROR\s+DURATION_MS\s+ATTEMPTS$/m);
    for (const stem of ['one', 'three', 'two'])
      assert.match(out, new RegExp(`^${stem}-[0-9a-f]{6}\\s+converted\\s+96044\\s+250\\s+1$`, 'm'));
    assert.match(out, /converted 3, failed 0 of 3 jobs in \d+\.\d\d s \(\d+\.\d jobs\/s\)/);
    assert.match(c.err(), /progress: 3\/3 \(3 converted, 0 failed\)/);
    assert.equal(c.out().includes('queued one'), false, 'with --wait, stdout is the summary only');
  });

  it('exit 1 when a job failed; the failure is in the table with its code and message', async () => {
    const { config, queue } = testConfig();
    fakeService(queue, (job) =>
      job.gsm_path.endsWith('missing.gsm')
        ? failedResult({
            jobId: job.job_id,
            gsmPath: job.gsm_path,
            wavPath: job.wav_path,
            attempts: 1,
            ...times,
            code: 'INPUT_MISSING',
            message: 'no such GSM file',
          })
        : convertedResult({ jobId: job.job_id, wavBytes: 10, attempts: 2, ...times }),
    );
    const c = capture();
    const code = await runEnqueue(
      config,
      args({ positionals: ['/var/local/auditorai/gsm/missing.gsm', '/var/local/auditorai/wav/missing.wav'], wait: true }),
      c.io,
    );
    assert.equal(code, 1);
    assert.match(c.out(), /^missing-[0-9a-f]{6}\s+failed\s+INPUT_MISSING\s+250\s+1$/m);
    assert.match(c.out(), /failures:\n {2}missing-[0-9a-f]{6}: INPUT_MISSING: no such GSM file/);
    assert.match(c.out(), /converted 0, failed 1 of 1 job in/);
  });

  it('timeout: exit 1 naming the jobs without a result; duplicates and strangers are ignored', async () => {
    const { config, queue } = testConfig();
    const gsm = join(dir, `gsm-${randomUUID()}`);
    mkdirSync(gsm);
    for (const name of ['fast.gsm', 'slow.gsm']) writeFileSync(join(gsm, name), 'x');
    fakeService(queue, (job) => {
      if (job.gsm_path.endsWith('slow.gsm')) return undefined;
      const failed = failedResult({ jobId: job.job_id, attempts: 1, ...times, code: 'TIMEOUT', message: 'late copy' });
      return [
        { body: convertedResult({ jobId: job.job_id, wavBytes: 1, attempts: 1, ...times }) },
        { body: failed }, // at-least-once: a second result for the same job; the first one counts
        {
          body: failedResult({ jobId: 'stranger', attempts: 1, ...times, code: 'TIMEOUT', message: 'not ours' }),
          correlationId: 'stranger',
        },
        { body: { not: 'a result' } },
      ];
    });
    const c = capture();
    const code = await runEnqueue(config, args({ dir: gsm, out: gsm, wait: true, timeout: '1.5' }), c.io);
    assert.equal(code, 1);
    assert.match(c.err(), /timed out after 1\.5 s: no result for 1 job: slow-[0-9a-f]{6}\n/);
    assert.match(c.out(), /^slow-[0-9a-f]{6}\s+no result\s+-\s+-\s+-$/m);
    assert.match(c.out(), /converted 1, failed 0, no result 1 of 2 jobs/);
  });
});
