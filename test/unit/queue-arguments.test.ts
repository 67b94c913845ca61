import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config.js';
import { brokerNames, mainQueueDeclare, publisherQueues } from '../../src/queue/broker.js';
import { amqpTarget } from '../../src/queue/nodes.js';

const MINIMAL = '[AsteriskAMI]\nUser = u\nSecret = s\n';
const names = (rabbit: string) =>
  brokerNames(parseConfig(`${MINIMAL}[RabbitMQ]\n${rabbit}\n[Worker]\nMaxAttempts = 3\nRetryDelay = 1\n`, 'f', {}));

void describe('queue arguments', () => {
  void test('classic: the input and dead-letter queues have no arguments (as before)', () => {
    const n = names('QueueType = classic');
    assert.deepEqual(mainQueueDeclare(n), { queue: 'Asterisk.Transcoding', durable: true });
    const [dead, ...delays] = publisherQueues(n);
    assert.deepEqual(dead, { queue: 'Asterisk.Transcoding.dead', durable: true });
    assert.deepEqual(
      delays.map((d) => d.arguments),
      [
        { 'x-message-ttl': 1000, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'Asterisk.Transcoding' },
        { 'x-message-ttl': 2000, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'Asterisk.Transcoding' },
      ],
    );
  });

  void test('quorum: the input queue ends poison messages — a delivery limit, dead-lettered into the DLQ', () => {
    const n = names('QueueType = quorum\nDeliveryLimit = 7\nDeadLetterQueue = DLQ');
    assert.deepEqual(mainQueueDeclare(n), {
      queue: 'Asterisk.Transcoding',
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-delivery-limit': 7,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': 'DLQ',
      },
    });
  });

  void test('quorum: the dead-letter and delay queues are quorum queues too (they survive a node as the backlog does)', () => {
    const [dead, ...delays] = publisherQueues(names('QueueType = quorum'));
    assert.deepEqual(dead, { queue: 'Asterisk.Transcoding.dead', durable: true, arguments: { 'x-queue-type': 'quorum' } });
    assert.equal(delays.length, 2);
    for (const d of delays) {
      assert.equal(d.arguments?.['x-queue-type'], 'quorum');
      assert.equal(d.arguments?.['x-dead-letter-routing-key'], 'Asterisk.Transcoding');
      assert.equal(typeof d.arguments?.['x-message-ttl'], 'number');
    }
  });
});

void describe('amqpTarget: which nodes the client tries', () => {
  const rabbit = (text: string) => parseConfig(`${MINIMAL}[RabbitMQ]\n${text}\n`, 'f', {}).rabbitmq;

  void test('one host: the URL alone', () => {
    assert.deepEqual(amqpTarget(rabbit('HostName = mq')), { url: 'amqp://guest:guest@mq:5672/%2F' });
    assert.deepEqual(amqpTarget(rabbit('HostName = [::1]')), { url: 'amqp://guest:guest@[::1]:5672/%2F' });
  });

  void test('a list: every node, in the order written', () => {
    assert.deepEqual(amqpTarget(rabbit('HostName = rmq1, rmq2:5673, rmq3')), {
      url: 'amqp://guest:guest@rmq1:5672/%2F',
      hosts: ['rmq1:5672', 'rmq2:5673', 'rmq3:5672'],
    });
  });
});
