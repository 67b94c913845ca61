/**
 * The bridge end to end: real RabbitMQ, the AMI emulator over TCP, real sox conversions.
 * Each row of the outcomes table (docs/messages.md "Where every message ends") ends where it says.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { job, makeStack, onServiceEvent } from '../helpers/stack.js';
import { readWav } from '../helpers/wav.js';

type Result = { job_id: string; status: string; wav_bytes?: number; attempts: number; error?: { code: string; message: string } };

describe('bridge end to end', () => {
  it('200 jobs → 200 valid PCM WAVs and 200 converted results, all acked', async () => {
    const stack = await makeStack({ config: { worker: { Concurrency: '8' } } });
    after(() => stack.close());
    await stack.startService();
    const names = Array.from({ length: 200 }, (_, i) => `call-${i}`);
    for (const name of names) await stack.publish(job(stack, name));
    await stack.results.onCount(200);

    const results = stack.results.bodies<Result>();
    assert.deepEqual(new Set(results.map((r) => r.job_id)), new Set(names));
    for (const r of results) assert.equal(r.status, 'converted', `${r.job_id}: ${JSON.stringify(r.error)}`);
    for (const name of names) {
      const wav = readWav(stack.data.wav(name));
      assert.deepEqual([wav.format, wav.channels, wav.sampleRate, wav.bitsPerSample], [1, 1, 8000, 16], name);
      assert.ok(Math.abs(wav.seconds - 1) < 0.05, `${name}: ${wav.seconds} s`);
    }
    assert.equal(stack.dead.messages.length, 0);
    await stack.service?.close();
    assert.equal(await stack.queueDepth(), 0, 'nothing left or returned to the queue');
  });

  it('input missing and invalid messages → dead-lettered with a reason and a failed result; the service goes on', async () => {
    const stack = await makeStack();
    after(() => stack.close());
    await stack.startService();
    await stack.publish(job(stack, 'gone', false));
    await stack.publish(Buffer.from('not json'));
    await stack.publish({ gsm_path: '/etc/passwd', wav_path: stack.data.wav('x') });
    await stack.publish({ ...job(stack, 'inj', false), gsm_path: `${stack.data.gsmDir}/a.gsm;touch /tmp/pwned` });
    await stack.publish(job(stack, 'fine'));
    await stack.results.onCount(5);
    await stack.dead.onCount(4);

    const results = stack.results.bodies<Result>();
    const byId = new Map(results.map((r) => [r.job_id, r]));
    assert.equal(byId.get('gone')?.error?.code, 'INPUT_MISSING');
    assert.equal(byId.get('fine')?.status, 'converted');
    const codes = results
      .filter((r) => r.status === 'failed')
      .map((r) => r.error?.code)
      .sort();
    assert.deepEqual(codes, ['INPUT_MISSING', 'INVALID_MESSAGE', 'PATH_NOT_ALLOWED', 'PATH_NOT_ALLOWED']);
    for (const d of stack.dead.messages) {
      assert.ok(String(d.headers?.['x-audioconvert-reason'] ?? '').length > 10, 'a readable reason in the headers');
    }
    assert.equal(stack.emulator.stats.forbiddenBytes, 0, 'no forbidden byte reached AMI');
    assert.equal(stack.emulator.stats.originates, 2, 'only the two valid jobs reached Asterisk');
  });

  it('AMI dropped mid-run → the jobs in flight are retried and converted', async () => {
    const stack = await makeStack({ emulator: { mode: 'instant', latencyMs: 50 } });
    after(() => stack.close());
    const service = await stack.startService();
    stack.emulator.dropAfterOriginates(5);
    for (let i = 0; i < 20; i++) await stack.publish(job(stack, `d${i}`));
    await stack.results.onCount(20);
    const results = stack.results.bodies<Result>();
    assert.ok(
      results.every((r) => r.status === 'converted'),
      JSON.stringify(results.filter((r) => r.status !== 'converted')),
    );
    assert.equal(new Set(results.map((r) => r.job_id)).size, 20);
    const metrics = await service.metrics.registry.getSingleMetricAsString('audioconvert_jobs_retried_total');
    assert.match(metrics, /code="AMI_DISCONNECTED"} [1-9]/, 'some jobs were retried because AMI dropped');
  });

  it('Asterisk restarted (Shutdown event) mid-run → jobs retried and converted', async () => {
    const stack = await makeStack({ emulator: { mode: 'instant', latencyMs: 100 } });
    after(() => stack.close());
    await stack.startService();
    // Restart right after the 6th Originate is accepted: jobs are then certainly in flight.
    let originates = 0;
    const restarted = new Promise<void>((resolve) => {
      stack.emulator.on('originate', () => {
        if (++originates === 6) void stack.emulator.restart({ downMs: 300 }).then(resolve);
      });
    });
    for (let i = 0; i < 12; i++) await stack.publish(job(stack, `r${i}`));
    await restarted;
    await stack.results.onCount(12);
    const results = stack.results.bodies<Result>();
    assert.ok(results.every((r) => r.status === 'converted'));
    assert.ok(
      results.some((r) => r.attempts > 1),
      'at least one job needed a second attempt',
    );
  });

  it('extension missing → consuming stops, messages stay queued, resumes by itself after the fix', async () => {
    const stack = await makeStack({ emulator: { mode: 'instant' } });
    after(() => stack.close());
    const service = await stack.startService();
    await onServiceEvent(stack, 'consuming', true);
    stack.emulator.setDialplan({ convertContextPresent: false });
    const stopped = onServiceEvent(stack, 'consuming', false);
    for (let i = 0; i < 5; i++) await stack.publish(job(stack, `m${i}`));
    await stopped;
    assert.equal(service.readiness().ready, false);
    assert.match(service.readiness().checks['dialplan']?.detail ?? '', /Extension does not exist/);
    assert.equal(await stack.queueDepth(), 5, 'every message kept in the queue');
    assert.equal(stack.results.messages.length + stack.dead.messages.length, 0, 'nothing failed or dead-lettered');

    const resumed = onServiceEvent(stack, 'consuming', true);
    stack.emulator.setDialplan({ convertContextPresent: true });
    await resumed;
    await stack.results.onCount(5);
    assert.ok(stack.results.bodies<Result>().every((r) => r.status === 'converted'));
  });

  it('hung conversion → job deadline → retried, then dead-lettered with TIMEOUT', async () => {
    const stack = await makeStack({ emulator: { mode: 'instant' }, config: { worker: { JobTimeout: '300ms', MaxAttempts: '2' } } });
    after(() => stack.close());
    await stack.startService();
    stack.emulator.hangConversions(true);
    await stack.publish(job(stack, 'stuck'));
    await stack.dead.onCount(1);
    await stack.results.onCount(1);
    const [result] = stack.results.bodies<Result>();
    assert.equal(result?.error?.code, 'TIMEOUT');
    assert.equal(result?.attempts, 2);
    assert.match(result?.error?.message ?? '', /gave up after 2 attempts/);
    assert.equal(stack.emulator.stats.originates, 2, 'one Originate per attempt');
    assert.equal(existsSync(stack.data.wav('stuck')), false);
  });

  it('AMI down → not ready and not consuming; back → consuming again', async () => {
    const stack = await makeStack({ emulator: { mode: 'instant' } });
    after(() => stack.close());
    const service = await stack.startService();
    await onServiceEvent(stack, 'consuming', true);
    const down = onServiceEvent(stack, 'consuming', false);
    const back = once(service.events, 'ami').then(() => onServiceEvent(stack, 'consuming', true));
    void stack.emulator.restart({ downMs: 500 });
    await down;
    assert.equal(service.readiness().checks['ami']?.ok, false);
    await back;
    assert.equal(service.readiness().ready, true);
  });
});
