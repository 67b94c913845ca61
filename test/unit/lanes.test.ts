// The gate live and bulk jobs share, and the bulk lane's queue names.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { publisherQueues, retryQueueName, type BrokerNames } from '../../src/queue/broker.js';
import type { ReleaseSlot } from '../../src/worker/handler.js';
import { bulkBrokerNames, ClassGate, serviceQueues } from '../../src/worker/lanes.js';

describe('ClassGate', () => {
  it('hands a freed slot to a waiting live job before any waiting bulk job, each class in arrival order', async () => {
    const gate = new ClassGate(2);
    const order: string[] = [];
    const r1 = (await gate.acquire('bulk'))!;
    const r2 = (await gate.acquire('bulk'))!;
    assert.equal(gate.busy, 2);
    const waits = [
      gate.acquire('bulk').then((r) => (order.push('bulk-a'), r!)),
      gate.acquire('bulk').then((r) => (order.push('bulk-b'), r!)),
      gate.acquire('live').then((r) => (order.push('live-a'), r!)),
      gate.acquire('live').then((r) => (order.push('live-b'), r!)),
    ];
    r1();
    r1(); // a second call is ignored: the slot is not freed twice
    r2();
    const [la, lb] = await Promise.all([waits[2]!, waits[3]!]);
    assert.deepEqual(order, ['live-a', 'live-b']);
    la();
    lb();
    const [ba, bb] = await Promise.all([waits[0]!, waits[1]!]);
    assert.deepEqual(order, ['live-a', 'live-b', 'bulk-a', 'bulk-b']);
    ba();
    bb();
    assert.equal(gate.busy, 0);
  });

  it('closing it sends every waiter and every later request away without a slot; slots in use free as usual', async () => {
    const gate = new ClassGate(1);
    const holder = (await gate.acquire('live'))!;
    const waiting: Promise<ReleaseSlot | undefined>[] = [gate.acquire('bulk'), gate.acquire('live')];
    gate.close();
    assert.deepEqual(await Promise.all(waiting), [undefined, undefined]);
    assert.equal(await gate.acquire('live'), undefined);
    assert.equal(gate.busy, 1);
    holder();
    assert.equal(gate.busy, 0);
  });
});

describe('bulk lane names', () => {
  const names: BrokerNames = {
    queueName: 'Q',
    resultsExchange: 'Q.results',
    deadLetterQueue: 'Q.dead',
    queueType: 'classic',
    deliveryLimit: 20,
    retryDelaysMs: [5000, 10000],
  };
  it('its own queue and delay queues, which expire back into the bulk queue; DLQ and results shared', () => {
    const bulk = bulkBrokerNames(names);
    assert.equal(bulk.queueName, 'Q.bulk');
    assert.equal(retryQueueName(bulk, 1), 'Q.bulk.retry.5000');
    const delay = publisherQueues(bulk).find((q) => q.queue === 'Q.bulk.retry.10000');
    assert.equal(delay?.arguments?.['x-dead-letter-routing-key'], 'Q.bulk');
    assert.deepEqual([bulk.deadLetterQueue, bulk.resultsExchange], ['Q.dead', 'Q.results']);
    assert.deepEqual(serviceQueues(names), [
      'Q',
      'Q.bulk',
      'Q.dead',
      'Q.retry.5000',
      'Q.retry.10000',
      'Q.bulk.retry.5000',
      'Q.bulk.retry.10000',
    ]);
  });
});
