import assert from 'node:assert/strict';
import { test } from 'node:test';
import { register as globalRegistry } from 'prom-client';
import { ERROR_CODES } from '../../src/errors.js';
import { createMetrics, JOB_DURATION_BUCKETS } from '../../src/metrics.js';

const NAMES = [
  'audioconvert_jobs_received_total',
  'audioconvert_jobs_completed_total',
  'audioconvert_job_duration_seconds',
  'audioconvert_jobs_in_flight',
  'audioconvert_worker_concurrency',
  'audioconvert_jobs_retried_total',
  'audioconvert_jobs_dead_lettered_total',
  'audioconvert_jobs_requeued_total',
  'audioconvert_ami_connected',
  'audioconvert_ami_reconnects_total',
  'audioconvert_amqp_connected',
  'audioconvert_consuming',
  'audioconvert_build_info',
];

void test('every metric is exposed, with its series at 0 before the first event', async () => {
  const m = createMetrics({ version: '1.2.3' });
  const text = await m.registry.metrics();
  for (const name of NAMES) assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  for (const cls of ['live', 'bulk']) {
    for (const result of ['converted', 'failed']) {
      assert.match(text, new RegExp(`^audioconvert_jobs_completed_total\\{class="${cls}",result="${result}"\\} 0$`, 'm'));
      assert.match(text, new RegExp(`^audioconvert_job_duration_seconds_count\\{class="${cls}",result="${result}"\\} 0$`, 'm'));
    }
    for (const code of ERROR_CODES) {
      assert.match(text, new RegExp(`^audioconvert_jobs_retried_total\\{class="${cls}",code="${code}"\\} 0$`, 'm'));
      assert.match(text, new RegExp(`^audioconvert_jobs_dead_lettered_total\\{class="${cls}",code="${code}"\\} 0$`, 'm'));
    }
    for (const name of ['jobs_received_total', 'jobs_requeued_total', 'jobs_in_flight']) {
      assert.match(text, new RegExp(`^audioconvert_${name}\\{class="${cls}"\\} 0$`, 'm'));
    }
  }
  for (const name of ['worker_concurrency', 'ami_connected', 'ami_reconnects_total', 'amqp_connected', 'consuming']) {
    assert.match(text, new RegExp(`^audioconvert_${name} 0$`, 'm'));
  }
  assert.match(text, new RegExp(`^audioconvert_build_info\\{version="1.2.3",node="${process.versions.node}"\\} 1$`, 'm'));
});

void test("prom-client's default process metrics are in the same registry", async () => {
  const text = await createMetrics({ version: 't' }).registry.metrics();
  assert.match(text, /^process_cpu_seconds_total /m);
  assert.match(text, /^nodejs_eventloop_lag_seconds /m);
});

void test('histogram buckets fit second-scale jobs', async () => {
  const m = createMetrics({ version: 't' });
  m.jobDuration.observe({ class: 'live', result: 'converted' }, 0.4);
  const text = await m.registry.metrics();
  for (const le of JOB_DURATION_BUCKETS) {
    assert.match(
      text,
      new RegExp(`^audioconvert_job_duration_seconds_bucket\\{le="${le}",class="live",result="converted"\\} ${le >= 0.4 ? 1 : 0}$`, 'm'),
    );
  }
});

void test('a fresh registry per instance: no clash, nothing in the global registry', async () => {
  const a = createMetrics({ version: 'a' });
  const b = createMetrics({ version: 'b' });
  a.jobsReceived.inc({ class: 'bulk' });
  a.jobsCompleted.inc({ class: 'bulk', result: 'converted' });
  a.jobsRetried.inc({ class: 'live', code: 'TIMEOUT' });
  a.amiConnected.set(1);
  assert.match(await a.registry.metrics(), /^audioconvert_jobs_received_total\{class="bulk"\} 1$/m);
  assert.match(await a.registry.metrics(), /^audioconvert_jobs_retried_total\{class="live",code="TIMEOUT"\} 1$/m);
  assert.match(await b.registry.metrics(), /^audioconvert_jobs_received_total\{class="bulk"\} 0$/m);
  assert.match(await b.registry.metrics(), /^audioconvert_ami_connected 0$/m);
  assert.equal(globalRegistry.getSingleMetric('audioconvert_jobs_received_total'), undefined);
});

void test('labels are closed sets: class, result, code, flag, outcome, version, node — never ids or paths', () => {
  const m = createMetrics({ version: 't' });
  const labels = new Set(
    m.registry
      .getMetricsAsArray()
      .filter((metric) => metric.name.startsWith('audioconvert_'))
      .flatMap((metric) => (metric as unknown as { labelNames: string[] }).labelNames),
  );
  assert.deepEqual([...labels].sort(), ['class', 'code', 'flag', 'node', 'outcome', 'result', 'version']);
});
