/**
 * Outgrowing one broker, on the test broker (a single node): a HostName list whose first node
 * refuses connections still gets the service consuming from the next; with QueueType = quorum every
 * queue is declared quorum, with arguments a classic redeclare is refused against. The 3-node
 * cluster run is `npm run chaos:cluster` (docs/reliability.md).
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { brokerNames } from '../../src/queue/broker.js';
import { closedPort } from '../helpers/ami-client.js';
import { AMQP_URL, job, makeStack, openRabbit } from '../helpers/stack.js';

type Result = { job_id: string; status: string };

const broker = new URL(AMQP_URL);
const live = `${broker.hostname}:${broker.port || '5672'}`;

describe('RabbitMQ cluster settings on one node', { timeout: 60_000 }, () => {
  it('HostName lists a node that refuses first: the service connects to the next, consumes and converts', async () => {
    const dead = await closedPort();
    const stack = await makeStack({ config: { rabbitmq: { HostName: `127.0.0.1:${dead}, ${live}` } } });
    after(() => stack.close());
    assert.deepEqual(stack.config.rabbitmq.hosts, [`127.0.0.1:${dead}`, live]);
    const service = await stack.startService();
    await stack.publish(job(stack, 'via-second-node'));
    await stack.results.onCount(1);
    assert.equal(stack.results.bodies<Result>()[0]?.status, 'converted');
    assert.equal(service.readiness().checks['amqp']?.ok, true);
  });

  it('QueueType = quorum: every queue is a quorum queue and a job converts', async () => {
    const stack = await makeStack({ config: { rabbitmq: { QueueType: 'quorum', DeliveryLimit: '3' } } });
    after(() => stack.close());
    await stack.startService();
    await stack.publish(job(stack, 'on-quorum'));
    await stack.results.onCount(1);
    assert.equal(stack.results.bodies<Result>()[0]?.status, 'converted');
    // Redeclaring each queue passively says it exists; declaring it classic must now be refused.
    const rabbit = await openRabbit();
    after(() => rabbit.close());
    const names = brokerNames(stack.config);
    for (const queue of [names.queueName, names.deadLetterQueue]) {
      await assert.rejects(rabbit.queueDeclare({ queue, durable: true }), /PRECONDITION_FAILED.*inequivalent arg/, queue);
    }
  });
});
