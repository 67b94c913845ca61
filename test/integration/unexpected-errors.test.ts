/**
 * Issue #10 item 1, for real: the service runs as an unprivileged user (nobody) and a job names an
 * input inside a directory that user cannot read. realpath meets a real EACCES. Before, the
 * handler re-threw it and the consumer requeued it: ~3,000 redeliveries a second, forever. Now the
 * job ends in bounded time: MaxAttempts deliveries through the delay queues, then a `failed`
 * result with INPUT_UNREADABLE, counted on /metrics and logged once (rate-limited), not per delivery.
 * The built CLI is spawned as nobody because root bypasses the permission check.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { cliBridge } from '../helpers/cli-bridge.js';
import { makeStack } from '../helpers/stack.js';

const NOBODY = { uid: 65534, gid: 65534 };

function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line !== undefined, `${name} is on /metrics`);
  return Number(line.slice(name.length + 1));
}

describe('an error that is not one of ours (EACCES on the path check)', { timeout: 60_000 }, () => {
  it('ends in a failed INPUT_UNREADABLE result after MaxAttempts deliveries, not a hot requeue loop', async () => {
    const stack = await makeStack({ config: { worker: { MaxAttempts: '3', RetryDelay: '50ms', RetryMaxDelay: '200ms' } } });
    after(() => stack.close());
    // The data root must be reachable by nobody; one directory inside it is not.
    chmodSync(stack.data.root, 0o755);
    const locked = path.join(stack.data.gsmDir, 'locked');
    mkdirSync(locked);
    const gsm = stack.data.gsm('locked/call-1');
    chmodSync(locked, 0o000);

    const bridge = cliBridge(stack, stack.emulator.port, 'nobody', { runAs: NOBODY, listen: '127.0.0.1:0' });
    after(() => bridge.remove());
    const lines: Record<string, unknown>[] = [];
    bridge.on('log', (line: Record<string, unknown>) => lines.push(line));
    const listening = bridge.onLog((line) => line['message'] === 'http listening');
    const consuming = bridge.onConsuming();
    bridge.start();
    const port = Number((await listening)['port']);
    await consuming;

    await stack.publish({ job_id: 'unreadable-1', gsm_path: gsm, wav_path: stack.data.wav('call-1') });
    await stack.results.onCount(1);
    await stack.dead.onCount(1);
    const [result] = stack.results.bodies<{ status: string; attempts: number; error: { code: string; message: string } }>();
    assert.equal(result?.status, 'failed');
    assert.equal(result.error.code, 'INPUT_UNREADABLE');
    assert.equal(result.attempts, 3, 'three attempts, through the delay queues');
    assert.match(result.error.message, /EACCES/);
    assert.ok(result.error.message.includes(locked), `the message names the directory: ${result.error.message}`);

    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.equal(metric(text, 'audioconvert_jobs_received_total{class="live"}'), 3, 'three deliveries, not thousands');
    assert.equal(metric(text, 'audioconvert_unexpected_errors_total{code="INPUT_UNREADABLE"}'), 3);
    assert.equal(metric(text, 'audioconvert_jobs_retried_total{class="live",code="INPUT_UNREADABLE"}'), 2);
    assert.equal(metric(text, 'audioconvert_jobs_dead_lettered_total{class="live",code="INPUT_UNREADABLE"}'), 1);
    assert.equal(metric(text, 'audioconvert_jobs_requeued_total{class="live"}'), 0, 'never handed back for an immediate redelivery');
    assert.equal(await stack.queueDepth(), 0);

    const storm = lines.filter((l) => l['message'] === 'job failed with an unexpected error; retried later through the delay queues');
    assert.equal(storm.length, 1, 'one rate-limited line for the three errors');
    assert.equal(storm[0]?.['code'], 'INPUT_UNREADABLE');
    assert.deepEqual(bridge.stray, [], 'no crash trace on stderr');
  });
});
