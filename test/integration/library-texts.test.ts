/**
 * The texts of rabbitmq-client and RabbitMQ that the service matches because neither exposes a code
 * for them (queue/broker.ts keeps each match in one place). If an upgrade changes one, this fails.
 * (The "undefined: " prefix on a refused login is pinned against the real broker by amqp-logs.test.ts.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { after, describe, it } from 'node:test';
import { describeDeclareMismatch, isSettleFailure } from '../../src/queue/broker.js';
import { openRabbit } from '../helpers/stack.js';

describe("the library's texts the service matches", { timeout: 30_000 }, () => {
  it("rabbitmq-client's consumer prefixes a failed ack/nack with the text isSettleFailure matches", () => {
    const main = createRequire(import.meta.url).resolve('rabbitmq-client');
    const source = readFileSync(path.join(path.dirname(main), 'Consumer.js'), 'utf8');
    const prefix = /err\.message = '([^']+)' \+ err\.message/.exec(source)?.[1];
    assert.equal(prefix, 'failed to ack/nack message; ');
    assert.equal(isSettleFailure(new Error(`${prefix}channel is closed`)), true);
    assert.equal(isSettleFailure(new Error('channel is closed')), false);
  });

  it("RabbitMQ's PRECONDITION_FAILED reply for a queue and for an exchange declared with other arguments", async () => {
    const rabbit = await openRabbit();
    const queue = `ac-texts-${randomUUID()}`;
    const exchange = `ac-texts-${randomUUID()}`;
    after(async () => {
      await rabbit.queueDelete({ queue });
      await rabbit.exchangeDelete({ exchange });
      await rabbit.close();
    });
    await rabbit.queueDeclare({ queue, durable: false, autoDelete: true, arguments: { 'x-max-length': 10 } });
    const queueError = await rabbit.queueDeclare({ queue, durable: false, autoDelete: true }).then(
      () => assert.fail('declared with other arguments'),
      (error: unknown) => error,
    );
    assert.deepEqual(describeDeclareMismatch(queueError, 'fallback'), {
      problem: `queue '${queue}' already exists with other arguments (argument x-max-length: received none but current is the value '10' of type 'byte')`,
      fix: `Either make the config match the existing queue (e.g. [RabbitMQ] QueueType), or drain and delete it (rabbitmqctl delete_queue '${queue}') so the service can declare it again.`,
    });
    await rabbit.exchangeDeclare({ exchange, type: 'topic', autoDelete: true });
    const exchangeError = await rabbit.exchangeDeclare({ exchange, type: 'direct', autoDelete: true }).then(
      () => assert.fail('declared with another type'),
      (error: unknown) => error,
    );
    assert.match(
      describeDeclareMismatch(exchangeError, 'fallback')?.problem ?? '',
      new RegExp(
        `^exchange '${exchange}' already exists with other arguments \\(argument type: received 'direct' but current is 'topic'\\)$`,
      ),
    );
    assert.equal(describeDeclareMismatch(new Error('inequivalent arg but no code'), 'q'), undefined);
  });
});
