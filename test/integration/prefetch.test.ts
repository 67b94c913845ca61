/**
 * A lane holds a headroom of messages beyond Concurrency (src/worker/lanes.ts), so the next job is
 * already in the process when a slot frees; the gate still keeps Asterisk at Concurrency. Real
 * RabbitMQ, the emulator with every conversion taking 2 s.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { headroom } from '../../src/worker/lanes.js';
import { makeStack } from '../helpers/stack.js';

describe('prefetch headroom', () => {
  it('Concurrency 2: three messages leave the queue, two conversions run, all six jobs convert', async () => {
    const concurrency = 2;
    assert.equal(headroom(concurrency), 1);
    const stack = await makeStack({
      emulator: { mode: 'instant', latencyMs: 2000 },
      config: { worker: { Concurrency: String(concurrency), JobTimeout: '60' } },
    });
    after(() => stack.close());
    const jobs = 6;
    for (let i = 0; i < jobs; i++) {
      const id = `pf-${i}`;
      await stack.publish({ job_id: id, gsm_path: `${stack.data.gsmDir}/${id}.gsm`, wav_path: stack.data.wav(id) });
    }
    const started = new Promise<void>((resolve) => {
      let n = 0;
      stack.emulator.on('conversionStart', () => ++n === concurrency && resolve());
    });
    const service = await stack.startService();
    await started;

    // The broker sent prefetch = Concurrency + headroom deliveries when the consumer started; the
    // first two conversions hold their slots for 2 s, so the third message waits in the bridge.
    const ready = (await stack.amqp.queueDeclare({ queue: stack.config.rabbitmq.queueName, passive: true })).messageCount;
    assert.equal(ready, jobs - concurrency - headroom(concurrency), 'messages taken by the bridge: Concurrency + headroom');
    assert.equal(stack.emulator.stats.conversionsStarted, concurrency, 'on Asterisk: Concurrency, never more');
    assert.match(await service.metrics.registry.metrics(), /^audioconvert_jobs_in_flight\{class="live"\} 2$/m);

    await stack.results.onCount(jobs);
    assert.deepEqual(
      stack.results.bodies<{ status: string }>().map((r) => r.status),
      Array.from({ length: jobs }, () => 'converted'),
    );
  });
});
