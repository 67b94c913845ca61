/**
 * `audio-convert redrive` against the real RabbitMQ: dead letters re-driven after their cause is
 * fixed end converted (through the real service and the emulator with sox); records that do not
 * match stay, in order; a dry run moves nothing; and a redrive killed mid-way (SIGKILL of the built
 * CLI) loses no job: each is in the input queue or still in the dead-letter queue.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import type { Connection } from 'rabbitmq-client';
import { deadLetterEnvelope } from '../../src/queue/message.js';
import { REDRIVEN_HEADER } from '../../src/tools/redrive-record.js';
import { redrive, runRedrive, type RedriveArgs } from '../../src/tools/redrive.js';
import { bulkQueueName } from '../../src/worker/lanes.js';
import { AMQP_URL, job, makeStack, type Stack } from '../helpers/stack.js';

type Result = { job_id: string; status: string; attempts: number; error?: { code: string } };

const ROOT = path.resolve(import.meta.dirname, '../..');
const all: RedriveArgs = { codes: [], jobIds: [], limit: undefined, dryRun: false };

function output(): { out: PassThrough; text: () => string } {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  return { out, text: () => text };
}

/** Takes every message of a queue (basic.get, acked): job ids in queue order, with the headers. */
async function drain(
  amqp: Connection,
  queue: string,
): Promise<{ jobId: string; headers: Record<string, unknown>; body: Record<string, unknown> }[]> {
  const ch = await amqp.acquire();
  const got: { jobId: string; headers: Record<string, unknown>; body: Record<string, unknown> }[] = [];
  try {
    for (;;) {
      const m = await ch.basicGet({ queue, noAck: true });
      if (m === undefined) return got;
      const body = (Buffer.isBuffer(m.body) ? JSON.parse(m.body.toString()) : m.body) as Record<string, unknown>;
      got.push({ jobId: String(body['job_id']), headers: m.headers ?? {}, body });
    }
  } finally {
    await ch.close();
  }
}

/** Puts synthetic dead-letter records on the stack's DLQ (confirmed), as the service writes them. */
async function deadLetters(stack: Stack, ids: readonly string[], code: string, queue = stack.config.rabbitmq.queueName): Promise<void> {
  const publisher = stack.amqp.createPublisher({ confirm: true });
  for (const id of ids) {
    const original = Buffer.from(JSON.stringify({ job_id: id, gsm_path: `${stack.data.gsmDir}/${id}.gsm`, wav_path: stack.data.wav(id) }));
    const record = deadLetterEnvelope({
      jobId: id,
      code,
      reason: 'test',
      attempts: 3,
      failedAt: new Date(),
      queue,
      messageId: id,
      originalHeaders: { 'x-audioconvert-attempts': 2, 'x-keep': 'yes' },
      originalBody: original,
    });
    await publisher.send(
      {
        routingKey: stack.config.rabbitmq.deadLetterQueue,
        durable: true,
        contentType: 'application/json',
        messageId: id,
        headers: record.headers,
      },
      record.body,
    );
  }
  await publisher.close();
}

describe('redrive', () => {
  it('dead letters re-driven after the cause is fixed end converted; the others stay, in order', async () => {
    const stack = await makeStack({ collectDeadLetters: false });
    after(() => stack.close());
    await stack.startService();
    // Interleaved: inputs missing (fixable) and invalid messages (not re-driven).
    const order = ['gone-0', 'bad-0', 'gone-1', 'bad-1', 'gone-2', 'bad-2'];
    for (const id of order) {
      if (id.startsWith('gone')) await stack.publish(job(stack, id, false));
      else await stack.publish(Buffer.from('not json'), { messageId: id });
    }
    await stack.results.onCount(order.length);
    await stack.service?.close(); // every dead letter is confirmed before its job's ack: all are in now
    assert.equal((await stack.amqp.queueDeclare({ queue: stack.config.rabbitmq.deadLetterQueue, passive: true })).messageCount, 6);

    for (const id of ['gone-0', 'gone-1', 'gone-2']) stack.data.gsm(id); // the cause, fixed
    const dry = output();
    assert.equal(
      await runRedrive(stack.config, { ...all, codes: ['INPUT_MISSING'], dryRun: true }, { stdout: dry.out, stderr: dry.out }, [
        stack.config.rabbitmq.queueName,
      ]),
      0,
    );
    assert.match(dry.text(), /^would move job_id=gone-0 code=INPUT_MISSING attempts=1 redriven=1 → test\.[0-9a-f]+$/m);
    assert.match(dry.text(), /^would move 3 of 6 records looked at; left 3 not matching in /m);
    assert.equal(await stack.queueDepth(), 0, 'a dry run moves nothing');

    const run = output();
    assert.equal(
      await runRedrive(stack.config, { ...all, codes: ['INPUT_MISSING'] }, { stdout: run.out, stderr: run.out }, [
        stack.config.rabbitmq.queueName,
      ]),
      0,
    );
    assert.match(run.text(), /^moved 3 of 6 records looked at; left 3 not matching in /m);
    assert.deepEqual(
      [...run.text().matchAll(/^moved job_id=(\S+)/gm)].map((m) => m[1]),
      ['gone-0', 'gone-1', 'gone-2'],
    );

    await stack.startService();
    await stack.results.onCount(order.length + 3);
    const again = stack.results.bodies<Result>().slice(order.length);
    assert.deepEqual(again.map((r) => [r.job_id, r.status, r.attempts]).sort(), [
      ['gone-0', 'converted', 1],
      ['gone-1', 'converted', 1],
      ['gone-2', 'converted', 1],
    ]);
    await stack.service?.close();
    const left = await drain(stack.amqp, stack.config.rabbitmq.deadLetterQueue);
    assert.deepEqual(
      left.map((r) => r.body['message_id']),
      ['bad-0', 'bad-1', 'bad-2'],
      'the records that did not match, in their order',
    );
  });

  it('the re-driven job: original body and headers, attempts reset, x-audioconvert-redriven counted; --job-id and --limit', async () => {
    const stack = await makeStack({ collectDeadLetters: false });
    after(() => stack.close());
    const ids = Array.from({ length: 8 }, (_, i) => `j${i}`);
    await deadLetters(stack, ids, 'CONVERSION_FAILED');
    const a = output();
    const picked = await redrive(
      stack.amqp,
      stack.config.rabbitmq.deadLetterQueue,
      [stack.config.rabbitmq.queueName],
      { ...all, jobIds: ['j1', 'j4', 'j6'], limit: 2 },
      a.out,
    );
    assert.deepEqual(picked, { moved: 2, notMatching: 3, cannot: 0, scanned: 5 });
    const moved = await drain(stack.amqp, stack.config.rabbitmq.queueName);
    assert.deepEqual(
      moved.map((m) => m.jobId),
      ['j1', 'j4'],
    );
    assert.deepEqual(moved[0]!.body, { job_id: 'j1', gsm_path: `${stack.data.gsmDir}/j1.gsm`, wav_path: stack.data.wav('j1') });
    assert.deepEqual(moved[0]!.headers, { 'x-keep': 'yes', [REDRIVEN_HEADER]: 1 });
    const left = await drain(stack.amqp, stack.config.rabbitmq.deadLetterQueue);
    assert.deepEqual(
      left.map((r) => r.jobId),
      ['j0', 'j2', 'j3', 'j5', 'j6', 'j7'],
      'in order',
    );
  });

  it('a record from the bulk queue goes back to the bulk queue', async () => {
    const stack = await makeStack({ collectDeadLetters: false });
    after(() => stack.close());
    const bulk = bulkQueueName(stack.config.rabbitmq.queueName);
    await stack.amqp.queueDeclare({ queue: bulk, durable: true });
    await deadLetters(stack, ['b0'], 'TIMEOUT', bulk);
    await deadLetters(stack, ['l0'], 'TIMEOUT');
    const a = output();
    await redrive(stack.amqp, stack.config.rabbitmq.deadLetterQueue, [stack.config.rabbitmq.queueName, bulk], all, a.out);
    assert.deepEqual(
      (await drain(stack.amqp, bulk)).map((m) => m.jobId),
      ['b0'],
    );
    assert.deepEqual(
      (await drain(stack.amqp, stack.config.rabbitmq.queueName)).map((m) => m.jobId),
      ['l0'],
    );
  });

  it('killed mid-way (SIGKILL of the CLI): no job lost, the records left keep their order', async () => {
    const stack = await makeStack({ collectDeadLetters: false });
    after(() => stack.close());
    const n = 400;
    const ids = Array.from({ length: n }, (_, i) => `k${String(i).padStart(4, '0')}`);
    await deadLetters(stack, ids, 'INPUT_MISSING');
    const dir = mkdtempSync(path.join(tmpdir(), 'ac-redrive-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'transcoding.conf');
    const { rabbitmq } = stack.config;
    writeFileSync(
      file,
      `[RabbitMQ]\nUrl = ${AMQP_URL}\nQueueName = ${rabbitmq.queueName}\nDeadLetterQueue = ${rabbitmq.deadLetterQueue}\nResultsExchange = ${rabbitmq.resultsExchange}\n[AsteriskAMI]\nUser = auditorai\nSecret = simulator\n`,
      { mode: 0o600 },
    );
    const child = spawn(process.execPath, [path.join(ROOT, 'dist/cli.js'), 'redrive', '--config', file], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let moved = 0;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdout.on('data', (c: Buffer) => {
      moved += c
        .toString()
        .split('\n')
        .filter((l) => l.startsWith('moved job_id=')).length;
      if (moved >= 25) child.kill('SIGKILL');
    });
    await exited;
    assert.ok(moved >= 25 && moved < n, `killed after ${moved} moved`);
    // The broker hands the record taken but not acked back once it has processed the closed
    // connection: until then it is in neither count. Ask until both queues hold every job.
    const depth = async (queue: string): Promise<number> => (await stack.amqp.queueDeclare({ queue, passive: true })).messageCount;
    while ((await depth(rabbitmq.queueName)) + (await depth(rabbitmq.deadLetterQueue)) < n);
    const input = await drain(stack.amqp, rabbitmq.queueName);
    let dead = await drain(stack.amqp, rabbitmq.deadLetterQueue);
    const seen = new Set([...input, ...dead].map((m) => m.jobId));
    assert.deepEqual([...seen].sort(), ids, 'every job is in the input queue or the dead-letter queue');
    assert.ok(input.length >= moved, 'every job reported moved is in the input queue');
    dead = dead.filter((d) => !input.some((i) => i.jobId === d.jobId));
    assert.deepEqual(
      dead.map((d) => d.jobId),
      [...dead.map((d) => d.jobId)].sort(),
      'the records left keep their order',
    );
  });
});
