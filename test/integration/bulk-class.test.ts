/**
 * Bulk work does not starve live traffic: with a bulk backlog on `<QueueName>.bulk`, live jobs
 * published later overtake it — each waits at most for the jobs already in flight — and the
 * metrics count each class on its own. Real RabbitMQ, the emulator with a fixed conversion time.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { bulkQueueName } from '../../src/worker/lanes.js';
import { makeStack } from '../helpers/stack.js';

type Result = { job_id: string; status: string };

describe('bulk class', () => {
  it('live jobs overtake a bulk backlog; bulk goes on with what is left; metrics per class', async () => {
    const concurrency = 2;
    const stack = await makeStack({
      emulator: { mode: 'instant', latencyMs: 100 },
      config: { worker: { Concurrency: String(concurrency) } },
    });
    after(() => stack.close());
    const bulkQueue = bulkQueueName(stack.config.rabbitmq.queueName);
    await stack.amqp.queueDeclare({ queue: bulkQueue, durable: true });
    const backlog = 300;
    const body = (id: string) => ({ job_id: id, gsm_path: `${stack.data.gsmDir}/${id}.gsm`, wav_path: stack.data.wav(id) });
    await Promise.all(Array.from({ length: backlog }, (_, i) => stack.publish(body(`bulk-${i}`), { routingKey: bulkQueue })));
    const service = await stack.startService();
    await stack.results.onCount(10); // bulk work is flowing and every slot is busy with it

    const live = 5;
    for (let i = 0; i < live; i++) {
      const before = stack.results.messages.length;
      await stack.publish(body(`live-${i}`));
      const window = 2 * concurrency + 1;
      await stack.results.onCount(before + window);
      const since = stack.results
        .bodies<Result>()
        .slice(before)
        .map((r) => r.job_id);
      // It takes the first slot freed after it arrives: ahead of it end at most the bulk jobs in
      // flight when it arrived and those that started while it was on its way from the broker —
      // not the hundreds waiting in the bulk queue.
      assert.ok(since.slice(0, window).includes(`live-${i}`), `live-${i} waited behind: ${since.join(', ')}`);
    }
    const bulkLeft = (await stack.amqp.queueDeclare({ queue: bulkQueue, passive: true })).messageCount;
    assert.ok(bulkLeft > 100, `the backlog is still there (${bulkLeft}): the live jobs did not wait for it`);
    const text = await service.metrics.registry.metrics();
    assert.match(text, new RegExp(`^audioconvert_jobs_completed_total\\{class="live",result="converted"\\} ${live}$`, 'm'));
    const bulkDone = Number(/^audioconvert_jobs_completed_total\{class="bulk",result="converted"\} (\d+)$/m.exec(text)?.[1]);
    assert.ok(bulkDone >= 10, `bulk converted: ${bulkDone}`);
    assert.equal(stack.results.bodies<Result>().filter((r) => r.status !== 'converted').length, 0);
  });
});
