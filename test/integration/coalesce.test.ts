/**
 * coalesceWrites against a real RabbitMQ: it engages with the pinned rabbitmq-client (if an
 * upgrade drops the private socket it relies on, this fails instead of the bridge silently
 * getting slower), writes of one event-loop turn leave together, and nothing is lost or
 * reordered: publishes with confirms, consumes with acks, across a reconnect.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import { describe, test } from 'node:test';
import { Connection, type AsyncMessage } from 'rabbitmq-client';
import { coalesceWrites } from '../../src/queue/coalesce.js';
import { AMQP_URL, requireRabbit } from '../helpers/stack.js';

const socketOf = (c: Connection): Socket => (c as unknown as { _socket: Socket })._socket;
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

void describe('coalesceWrites', () => {
  void test('engages with the installed rabbitmq-client; one turn of writes is corked until setImmediate', async (t) => {
    await requireRabbit();
    const connection = new Connection(AMQP_URL);
    assert.equal(coalesceWrites(connection), true, "rabbitmq-client no longer exposes its socket as _socket: coalescing is off");
    await connection.onConnect(5000);
    const publisher = connection.createPublisher({ confirm: true });
    // One hook, in this order: rabbitmq-client's close() waits for open publishers.
    t.after(async () => {
      await publisher.close();
      await connection.close();
    });
    const queue = `test.coalesce.${randomUUID()}`;
    await connection.queueDeclare({ queue, exclusive: true });
    await publisher.send({ routingKey: queue }, 'warm-up');
    await nextTurn();
    const sends = [publisher.send({ routingKey: queue }, 'a'), publisher.send({ routingKey: queue }, 'b')];
    assert.ok(socketOf(connection).writableCorked > 0, 'the socket is corked after the first write of the turn');
    await nextTurn();
    assert.equal(socketOf(connection).writableCorked, 0, 'uncorked at setImmediate');
    await Promise.all(sends);
  });

  void test('1000 publishes in one turn, with confirms: all arrive, in order, each acked; again after a reconnect', async (t) => {
    await requireRabbit();
    const connection = new Connection({ url: AMQP_URL, retryLow: 20, retryHigh: 100 });
    connection.on('error', () => undefined);
    coalesceWrites(connection);
    const queue = `test.coalesce.${randomUUID()}`;
    const received: string[] = [];
    let waiting: { n: number; resolve: () => void } | undefined;
    const consumer = connection.createConsumer({ queue, queueOptions: { durable: false, autoDelete: true }, qos: { prefetchCount: 50 } }, (m: AsyncMessage) => {
      received.push(String(m.body));
      if (waiting !== undefined && received.length >= waiting.n) waiting.resolve();
    });
    await once(consumer, 'ready');
    const publisher = connection.createPublisher({ confirm: true });
    t.after(async () => {
      await publisher.close();
      await consumer.close();
      await connection.close();
    });
    const onCount = (n: number): Promise<void> => new Promise((resolve) => (waiting = { n, resolve }));

    const round = async (tag: string, n: number): Promise<string[]> => {
      const want = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
      const arrived = onCount(received.length + n);
      await Promise.all(want.map((body) => publisher.send({ routingKey: queue }, body)));
      await arrived;
      return want;
    };
    const first = await round('one', 1000);
    assert.deepEqual(received, first);
    // A reconnect gets a new socket: it must be coalesced too and keep working.
    // (not events.once: it would reject on the 'error' the lost socket emits)
    const reconnected = new Promise<void>((resolve) => consumer.once('ready', () => resolve()));
    socketOf(connection).destroy();
    await reconnected;
    await nextTurn();
    const probeArrived = onCount(received.length + 1);
    const probe = publisher.send({ routingKey: queue }, 'probe');
    assert.ok(socketOf(connection).writableCorked > 0, 'the new socket is coalesced too');
    await Promise.all([probe, probeArrived]);
    received.length = 0;
    const second = await round('two', 1000);
    assert.deepEqual(received, second);
  });
});
