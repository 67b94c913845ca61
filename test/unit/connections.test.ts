import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseConfig } from '../../src/config.js';
import { amqpServiceOptions } from '../../src/connections.js';

const rabbit = (section: string) => parseConfig(`[AsteriskAMI]\nUser = u\nSecret = s\n[RabbitMQ]\n${section}\n`, 'f', {}).rabbitmq;

void describe("the service's AMQP connection options", () => {
  void test("Nagle's algorithm is off: a result's publish and its ack must not wait for the broker's delayed ACK", () => {
    assert.equal(amqpServiceOptions(rabbit('')).noDelay, true);
  });

  void test('named, with a short acquire timeout and the configured nodes', () => {
    const options = amqpServiceOptions(rabbit('HostName = mq1, mq2'));
    assert.equal(options.connectionName, 'audio-convert');
    assert.equal(options.acquireTimeout, 5000);
    assert.deepEqual(options.hosts, ['mq1:5672', 'mq2:5672']);
    assert.equal(options.tls, undefined);
  });
});
