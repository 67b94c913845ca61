/**
 * Stopping the built CLI with signals, jobs in flight (outcomes table, row SIGTERM): one SIGTERM
 * drains and exits 0; a second signal exits at once; a job hung past DrainTimeout goes back to the
 * queue and the exit is still 0. Afterwards every job id has a result or is back in the queue.
 * SIGHUP (the reflex "reload") is ignored with a log line saying what to do instead.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { cliBridge, onOriginates, takeFromQueue } from '../helpers/cli-bridge.js';
import { job, makeStack, type Stack } from '../helpers/stack.js';

type Result = { job_id: string; status: string };

async function publishJobs(stack: Stack, prefix: string, n: number): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  for (const id of ids) await stack.publish(job(stack, id), { messageId: id });
  return ids;
}

describe('signals (the built CLI)', { timeout: 60_000 }, () => {
  it('SIGTERM with jobs in flight: they finish, the rest stay queued, exit 0 within DrainTimeout', async () => {
    const stack = await makeStack({
      emulator: { mode: 'instant', latencyMs: 1500 },
      config: { worker: { Concurrency: '4', DrainTimeout: '5' } },
    });
    after(() => stack.close());
    const bridge = cliBridge(stack);
    after(() => bridge.remove());
    const ids = await publishJobs(stack, 'term', 12);
    const inFlight = onOriginates(stack.emulator, 4);
    bridge.start();
    await inFlight;

    const exit = bridge.onExit();
    bridge.signal('SIGTERM');
    const { code, afterSignalMs } = (await exit)!;
    assert.equal(code, 0, 'SIGTERM exits 0');
    assert.ok(afterSignalMs! < 5000, `exited ${afterSignalMs} ms after SIGTERM, within DrainTimeout (5 s)`);
    assert.ok(afterSignalMs! >= 500, `waited for the jobs in flight (${afterSignalMs} ms)`);

    await stack.results.onCount(4);
    const results = stack.results.bodies<Result>();
    assert.ok(
      results.every((r) => r.status === 'converted'),
      'the 4 jobs in flight finished during the drain',
    );
    const queued = await takeFromQueue(stack, 8);
    assert.deepEqual(
      [...results.map((r) => r.job_id), ...queued].sort(),
      [...ids].sort(),
      'every job id has a result or is back in the queue, once',
    );
    assert.equal(stack.dead.messages.length, 0);
  });

  it('a second signal exits at once; the unacked jobs go back to the queue', async () => {
    const stack = await makeStack({
      emulator: { mode: 'instant', latencyMs: 5000 },
      config: { worker: { Concurrency: '4', DrainTimeout: '20' } },
    });
    after(() => stack.close());
    const bridge = cliBridge(stack);
    after(() => bridge.remove());
    const ids = await publishJobs(stack, 'twice', 10);
    const inFlight = onOriginates(stack.emulator, 4);
    bridge.start();
    await inFlight;

    const exit = bridge.onExit();
    bridge.signal('SIGTERM');
    await bridge.onLog((line) => /draining/.test(String(line['message'])));
    bridge.signal('SIGINT');
    const { code, afterSignalMs } = (await exit)!;
    assert.notEqual(code, 0, 'the forced exit says so');
    assert.ok(afterSignalMs! < 2000, `exited at once (${afterSignalMs} ms), not after the 5 s jobs or the 20 s drain`);

    const queued = await takeFromQueue(stack, 10);
    assert.deepEqual(queued.sort(), [...ids].sort(), 'all 10 back in the queue: 6 never taken, 4 unacked returned by the broker');
    assert.equal(stack.results.messages.length, 0);
    assert.equal(stack.dead.messages.length, 0);
  });

  it('a job hung past DrainTimeout is requeued and the exit is still 0', async () => {
    const stack = await makeStack({
      emulator: { mode: 'instant', conversionTimeoutMs: 60_000 },
      config: { worker: { Concurrency: '4', JobTimeout: '30', DrainTimeout: '1' } },
    });
    after(() => stack.close());
    stack.emulator.hangConversions(true);
    const bridge = cliBridge(stack);
    after(() => bridge.remove());
    const ids = await publishJobs(stack, 'hung', 2);
    const started = new Promise<void>((resolve) => {
      let n = 0;
      stack.emulator.on('conversionStart', () => ++n === 2 && resolve());
    });
    bridge.start();
    await started;

    const exit = bridge.onExit();
    bridge.signal('SIGTERM');
    const { code, afterSignalMs } = (await exit)!;
    assert.equal(code, 0, 'exit 0 even though jobs were abandoned');
    assert.ok(afterSignalMs! >= 900 && afterSignalMs! < 4000, `gave up after DrainTimeout (1 s): ${afterSignalMs} ms`);
    const queued = await takeFromQueue(stack, 2);
    assert.deepEqual(queued.sort(), [...ids].sort(), 'the hung jobs are back in the queue');
    assert.equal(stack.results.messages.length + stack.dead.messages.length, 0, 'no result: the jobs are not finished, not failed');
  });

  it('SIGHUP is ignored with a log line saying to restart instead; the service goes on converting', async () => {
    const stack = await makeStack({ emulator: { mode: 'instant' } });
    after(() => stack.close());
    const bridge = cliBridge(stack);
    after(() => bridge.remove());
    const consuming = bridge.onConsuming();
    bridge.start();
    await consuming;

    const exit = bridge.onExit();
    const ignored = bridge.onLog((line) => /SIGHUP/.test(String(line['message'])));
    bridge.signal('SIGHUP');
    // Without a handler node dies of the signal: the exit comes instead of the line.
    const line = await Promise.race([
      ignored,
      exit.then((e) =>
        assert.fail(`the service ended on SIGHUP (code ${e?.code}, signal ${e?.signal}); stderr: ${bridge.stray.join('\n')}`),
      ),
    ]);
    assert.equal(line['level'], 'warning');
    assert.match(String(line['message']), /SIGHUP received and ignored/);
    assert.match(String(line['message']), /config is read at start only/);
    assert.match(String(line['message']), /systemctl restart auditorai-transcoding/);

    await stack.publish(job(stack, 'after-hup'), { messageId: 'after-hup' });
    await stack.results.onCount(1);
    assert.deepEqual(
      stack.results.bodies<Result>().map((r) => [r.job_id, r.status]),
      [['after-hup', 'converted']],
      'still consuming after the SIGHUP',
    );
    assert.equal(bridge.running, true);
    bridge.signal('SIGTERM');
    assert.equal((await exit)?.code, 0, 'and SIGTERM still drains and exits 0');
  });
});
