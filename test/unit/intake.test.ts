// Intake's pause/resume against consumers that behave like rabbitmq-client's: a close() that
// rejects (the channel dropped mid-request), and two lanes of which one never subscribes.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { BothLanes } from '../../src/worker/lanes.js';
import { Intake } from '../../src/worker/intake.js';

/** Like rabbitmq-client's Consumer: start() does nothing unless closed; a rejected close() leaves it closing. */
class FakeConsumer extends EventEmitter {
  state: 'closed' | 'open' | 'closing' = 'closed';
  starts = 0;
  constructor(private failCloses = 0) {
    super();
  }
  start(): void {
    if (this.state !== 'closed') return;
    this.state = 'open';
    this.starts++;
  }
  close(): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    this.state = 'closing';
    if (this.failCloses > 0) {
      this.failCloses--;
      return Promise.reject(new Error('channel is closed'));
    }
    this.state = 'closed';
    return Promise.resolve();
  }
}

describe('Intake', () => {
  it('a consumer close() that rejects neither rejects pause() nor leaves intake unable to consume again', async () => {
    const consumer = new FakeConsumer(1);
    const failures: unknown[] = [];
    const changes: boolean[] = [];
    const intake = new Intake(consumer, [], {
      onCloseFailed: (error) => failures.push(error),
      onChange: (consuming) => changes.push(consuming),
    });
    await intake.resume('ami-down');
    intake.subscribed();
    assert.equal(intake.consuming, true);
    await intake.pause('ami-down'); // would reject with 'channel is closed' before
    assert.equal(failures.length, 1);
    assert.equal(consumer.state, 'closed');
    await intake.resume('ami-down');
    assert.equal(consumer.starts, 2, 'started again after the failed close');
    intake.subscribed();
    assert.equal(intake.consuming, true);
    assert.deepEqual(changes, [true, false, true]);
  });

  it('gives up after a few failed closes without rejecting', async () => {
    const consumer = new FakeConsumer(10);
    let failures = 0;
    const intake = new Intake(consumer, [], { onCloseFailed: () => failures++ });
    await intake.resume('shutdown');
    await intake.pause('shutdown');
    assert.equal(failures, 3);
  });
});

describe('BothLanes', () => {
  it('is subscribed only when the bulk lane is too: a bulk consumer that never subscribes keeps intake not consuming', async () => {
    const live = new FakeConsumer();
    const bulk = new FakeConsumer();
    const intake: Intake = new Intake(new BothLanes(live, bulk, () => intake.subscribed()), ['topology']);
    await intake.resume('topology');
    live.emit('ready');
    assert.equal(intake.consuming, false, 'only the live lane is subscribed');
    assert.deepEqual(intake.notConsumingFor, ['starting']);
    bulk.emit('ready');
    assert.equal(intake.consuming, true);
    intake.channelLost();
    assert.deepEqual(intake.notConsumingFor, ['amqp-down']);
    live.emit('ready');
    assert.equal(intake.consuming, false, 'the bulk lane has not re-subscribed yet');
    bulk.emit('ready');
    assert.equal(intake.consuming, true);
  });

  it('closes both lanes even when one close fails, and rejects with that failure', async () => {
    const live = new FakeConsumer(1);
    const bulk = new FakeConsumer();
    const lanes = new BothLanes(live, bulk, () => undefined);
    lanes.start();
    await assert.rejects(lanes.close(), /channel is closed/);
    assert.equal(bulk.state, 'closed');
  });
});
