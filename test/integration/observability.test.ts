/**
 * What operators look at, checked against a running service (real RabbitMQ, the AMI emulator):
 * - every metric the Grafana dashboard and the alert rules query exists in a live /metrics scrape
 *   (a renamed metric breaks this test, not a dashboard nobody looks at), and both files parse;
 * - /readyz goes 503 naming `ami` while Asterisk restarts and naming `amqp` while RabbitMQ drops
 *   the connection, and 200 again after each;
 * - per-job log lines carry job_id, attempt and duration_ms; a connection outage is logged once,
 *   not once per reconnect attempt.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { createLogger, type LogLevel } from '../../src/log.js';
import { start } from '../../src/main.js';
import { AMQP_URL, job, makeStack, onServiceEvent, type Stack } from '../helpers/stack.js';

const DASHBOARD = new URL('../../docs/grafana-dashboard.json', import.meta.url);
const RULES = new URL('../../docs/prometheus-alerts.yml', import.meta.url);

/**
 * Metrics the docs use that audio-convert does not export. Each must really be used (see below),
 * so this list cannot grow stale.
 */
const EXTERNAL_METRICS = new Map<string, string>([
  ['rabbitmq_queue_messages_ready', "RabbitMQ's rabbitmq_prometheus plugin, /metrics/per-object"],
]);

// ---- PromQL: which identifiers are metric names --------------------------------------------

const PROMQL_KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
  'Inf',
  'NaN',
  'atan2',
]);

/**
 * The metric names a PromQL expression selects. Not a full parser; enough for what dashboards and
 * rules contain: string literals, label matchers `{…}`, ranges `[…]`, grouping clauses `by (…)`,
 * numbers and durations, and Grafana variables are removed first; then every identifier that is
 * not a keyword and not followed by `(` (a function or aggregation) is a metric name.
 * Grafana's `label_values(metric, label)` keeps only its first argument.
 */
function metricNames(expr: string): string[] {
  let s = expr.replace(/label_values\(\s*([^,)]*)(?:,[^)]*)?\)/g, ' $1 ');
  s = s.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ');
  s = s.replace(/\{[^}]*\}/g, ' ');
  s = s.replace(/\[[^\]]*\]/g, ' ');
  s = s.replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  s = s.replace(/\$\{?[A-Za-z_][A-Za-z0-9_]*(?::[a-z]+)?\}?/g, ' ');
  s = s.replace(/(?<![A-Za-z0-9_:])\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:ms|s|m|h|d|w|y)?(?![A-Za-z0-9_:])/g, ' ');
  const names: string[] = [];
  for (const match of s.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const id = match[0];
    const rest = s.slice((match.index ?? 0) + id.length);
    if (/^\s*\(/.test(rest) || PROMQL_KEYWORDS.has(id)) continue;
    names.push(id);
  }
  return names;
}

/** Every `expr` of the dashboard's panels and the query of each of its variables. */
function dashboardQueries(dashboard: unknown): string[] {
  const out: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) for (const item of node) walk(item);
    else if (node !== null && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'expr' && typeof value === 'string') out.push(value);
        else walk(value);
      }
    }
  };
  walk((dashboard as { panels?: unknown }).panels);
  for (const variable of (dashboard as { templating?: { list?: { type?: string; query?: unknown }[] } }).templating?.list ?? []) {
    if (variable.type !== 'query') continue;
    const query = typeof variable.query === 'string' ? variable.query : (variable.query as { query?: unknown } | undefined)?.query;
    if (typeof query === 'string') out.push(query);
  }
  return out;
}

interface AlertRule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

function loadRules(): AlertRule[] {
  const doc = parseYaml(readFileSync(RULES, 'utf8')) as { groups?: { name?: string; rules?: AlertRule[] }[] };
  assert.ok(Array.isArray(doc.groups) && doc.groups.length > 0, 'the rules file has groups');
  return doc.groups.flatMap((group) => {
    assert.equal(typeof group.name, 'string', 'every group has a name');
    assert.ok(Array.isArray(group.rules) && group.rules.length > 0, `group ${group.name} has rules`);
    return group.rules;
  });
}

/** Every sample name of a Prometheus text exposition (histograms appear as _bucket, _sum, _count). */
function sampleNames(exposition: string): Set<string> {
  const names = new Set<string>();
  for (const line of exposition.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const name = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(line)?.[0];
    if (name !== undefined) names.add(name);
  }
  return names;
}

// ---- service helpers -------------------------------------------------------------------------

interface ReadyzReply {
  status: number;
  body: { status: string; down: string[]; checks: Record<string, { ok: boolean; detail: string }> };
}

async function readyz(port: number | undefined): Promise<ReadyzReply> {
  assert.ok(port !== undefined, 'the service serves HTTP');
  const response = await fetch(`http://127.0.0.1:${port}/readyz`);
  return { status: response.status, body: (await response.json()) as ReadyzReply['body'] };
}

/** One parsed line of the `json` log format. */
type LogLine = Record<string, unknown> & { level: string; message: string };

/** The service's log lines as they are written; waiters are told of each new line. */
class LogCapture {
  readonly lines: LogLine[] = [];
  private waiters: { match: (line: LogLine) => boolean; resolve: (line: LogLine) => void }[] = [];

  push(line: LogLine): void {
    this.lines.push(line);
    this.waiters = this.waiters.filter((w) => (w.match(line) ? (w.resolve(line), false) : true));
  }

  /**
   * Resolves with the first line (already written or to come) that matches. The line is written
   * after the result and the dead letter are published, so a test waits for it, not for them.
   */
  onLine(what: string, match: (line: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no log line ${what} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({ match, resolve: (line) => (clearTimeout(timer), resolve(line)) });
    });
  }
}

/** Starts the service in-process with a logger that writes JSON lines into a LogCapture. */
async function startWithLogs(stack: Stack, level: LogLevel): Promise<LogCapture> {
  const capture = new LogCapture();
  const stream = new PassThrough();
  let partial = '';
  stream.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts) if (part !== '') capture.push(JSON.parse(part) as LogLine);
  });
  stack.service = await start(stack.config, { logger: createLogger({ level, format: 'json', stream }), version: 'test' });
  return capture;
}

const run = promisify(execFile);

/**
 * Fails with a message saying what to do when nothing listens at the broker's address. Called
 * first in each test that needs the broker, so that each one FAILS: when the connection is refused,
 * makeStack's own check can leave its promise pending with nothing holding the event loop, and
 * node:test then reports the tests as cancelled instead of failed with the message.
 */
async function requireBrokerPort(): Promise<void> {
  const url = new URL(AMQP_URL);
  const port = Number(url.port || (url.protocol === 'amqps:' ? 5671 : 5672));
  const error = await new Promise<Error | undefined>((resolve) => {
    const socket = connect({ host: url.hostname, port, timeout: 3000 });
    socket.once('connect', () => (socket.destroy(), resolve(undefined)));
    socket.once('timeout', () => (socket.destroy(), resolve(new Error('connect timeout'))));
    socket.once('error', (err) => resolve(err));
  });
  if (error !== undefined) {
    assert.fail(
      `RabbitMQ is not reachable at ${url.hostname}:${port} (${error.message}). Start it with ` +
        `'rabbitmq-server -detached' (or point AUDIOCONVERT_TEST_AMQP_URL at one); .ci/run does this for you.`,
    );
  }
}

// ---- tests -------------------------------------------------------------------------------------

void describe('observability', () => {
  it('the PromQL name extractor finds metric names and nothing else', () => {
    assert.deepEqual(
      metricNames('histogram_quantile(0.99, sum by (instance, le) (rate(foo_seconds_bucket{result="x",a=~"$i"}[$__rate_interval]))) > 10'),
      ['foo_seconds_bucket'],
    );
    assert.deepEqual(
      metricNames('a_total / on (instance) group_left(code) b_total and on() sum(rate(c_total[5m] offset 1h)) == 0 unless d'),
      ['a_total', 'b_total', 'c_total', 'd'],
    );
    assert.deepEqual(metricNames('label_values(audioconvert_build_info, instance)'), ['audioconvert_build_info']);
    assert.deepEqual(metricNames('absent(x_info) or vector(1e3)'), ['x_info']);
  });

  it('the dashboard and the alert rules parse, and every metric they use is in a live /metrics scrape', async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Record<string, unknown>;
    const inputs = dashboard['__inputs'] as { name: string; type: string; pluginId: string }[] | undefined;
    assert.ok(
      inputs?.some((i) => i.name === 'DS_PROMETHEUS' && i.type === 'datasource' && i.pluginId === 'prometheus'),
      'the dashboard asks for its Prometheus datasource as the input DS_PROMETHEUS',
    );
    const datasources = JSON.stringify(dashboard).match(/"uid":"[^"]*"/g) ?? [];
    for (const uid of datasources) {
      assert.ok(
        uid === '"uid":"${DS_PROMETHEUS}"' || uid === '"uid":"-- Grafana --"' || uid === '"uid":"audio-convert"',
        `datasource ${uid} is the input`,
      );
    }
    const panelQueries = dashboardQueries(dashboard);
    assert.ok(panelQueries.length >= 15, `the dashboard has queries (found ${panelQueries.length})`);

    const rules = loadRules();
    const alerts = rules.filter((r) => r.alert !== undefined);
    assert.ok(alerts.length >= 8, `the rules file has alerts (found ${alerts.length})`);
    assert.equal(new Set(alerts.map((r) => r.alert)).size, alerts.length, 'alert names are unique');
    for (const rule of alerts) {
      assert.equal(typeof rule.expr, 'string', `${rule.alert}: expr`);
      if (rule.for !== undefined) assert.match(rule.for, /^\d+[smh]$/, `${rule.alert}: for`);
      assert.match(rule.labels?.['severity'] ?? '', /^(critical|warning)$/, `${rule.alert}: severity label`);
      assert.ok((rule.annotations?.['summary'] ?? '').length > 10, `${rule.alert}: summary annotation`);
    }
    const amiDown = alerts.find((r) => r.alert === 'AudioConvertAmiDown');
    assert.equal(amiDown?.for, '2m', 'AMI down alerts after 2 minutes');

    const used = new Map<string, string>();
    for (const q of panelQueries) for (const name of metricNames(q)) used.set(name, 'docs/grafana-dashboard.json');
    for (const r of rules) for (const name of metricNames(r.expr)) used.set(name, `docs/prometheus-alerts.yml ${r.alert ?? r.record}`);

    await requireBrokerPort();
    const stack = await makeStack({ emulator: { mode: 'instant' } });
    after(() => stack.close());
    const service = await stack.startService();
    const response = await fetch(`http://127.0.0.1:${service.httpPort}/metrics`);
    assert.equal(response.status, 200);
    const exported = sampleNames(await response.text());
    assert.ok(exported.has('audioconvert_jobs_completed_total'), 'the scrape has the service metrics');

    const missing = [...used].filter(([name]) => !exported.has(name) && !EXTERNAL_METRICS.has(name));
    assert.deepEqual(missing, [], 'metrics used in the docs but not exported (nor listed as external)');
    for (const name of EXTERNAL_METRICS.keys()) {
      assert.ok(used.has(name), `${name} is allow-listed as external but no longer used: remove it from EXTERNAL_METRICS`);
      assert.ok(!exported.has(name), `${name} is exported by the service after all: remove it from EXTERNAL_METRICS`);
    }
    for (const name of used.keys()) {
      assert.match(name, /^(audioconvert_|process_|nodejs_|rabbitmq_)/, `${name}: a metric of the service, node, or RabbitMQ`);
    }
  });

  it('/readyz: 503 naming ami while Asterisk restarts, 503 naming amqp while RabbitMQ drops us, 200 after each', async () => {
    await requireBrokerPort();
    const stack = await makeStack({ emulator: { mode: 'instant' } });
    after(() => stack.close());
    const logs = await startWithLogs(stack, 'info');
    const service = stack.service!;
    await onServiceEvent(stack, 'consuming', true);
    assert.equal((await readyz(service.httpPort)).status, 200);

    // AMI: the service tells us (events 'ami' and 'consuming'); no polling needed.
    const amiDown = onServiceEvent(stack, 'ami', false);
    const back = onServiceEvent(stack, 'ami', true).then(() => onServiceEvent(stack, 'consuming', true));
    const restarted = stack.emulator.restart({ downMs: 800 });
    await amiDown;
    const down = await readyz(service.httpPort);
    assert.equal(down.status, 503);
    assert.equal(down.body.checks['ami']?.ok, false);
    assert.ok(
      down.body.down.some((d) => d.startsWith('ami: ')),
      `down names ami: ${JSON.stringify(down.body.down)}`,
    );
    await back;
    await restarted;
    assert.equal((await readyz(service.httpPort)).status, 200, 'ready again once AMI is back and consuming resumed');

    // RabbitMQ: the service emits no event for an AMQP loss, and the reconnect starts after only
    // 250-500 ms (rabbitmq-client's first retry), so /readyz is polled every 10 ms from BEFORE the
    // connections are closed until it has been 503 naming amqp and then 200 again (bounded deadline).
    // close_all_connections also drops this harness's own connections; they reconnect too.
    const closing = run('rabbitmqctl', ['close_all_connections', 'test']).catch((error: unknown) => error);
    const deadline = Date.now() + 20_000;
    let sawAmqpDown: ReadyzReply | undefined;
    let backUp = false;
    while (!backUp && Date.now() < deadline) {
      const reply = await readyz(service.httpPort);
      if (reply.status === 503 && reply.body.down.some((d) => d.startsWith('amqp: '))) sawAmqpDown ??= reply;
      else if (reply.status === 200 && sawAmqpDown !== undefined) backUp = true;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const closed = await closing;
    assert.ok(!(closed instanceof Error), `rabbitmqctl close_all_connections failed: ${String(closed)}`);
    assert.ok(sawAmqpDown, '/readyz was 503 naming amqp after RabbitMQ closed the connection');
    assert.equal(sawAmqpDown.body.checks['amqp']?.ok, false);
    assert.ok(backUp, '/readyz was 200 again after the service reconnected to RabbitMQ');

    // Like an AMI outage: one WARNING, not an ERROR (a refused login is CRITICAL: amqp-logs.test.ts).
    const amqp = logs.lines.filter((l) => l['component'] === 'amqp');
    const warnings = amqp.filter((l) => l.level === 'warning');
    assert.equal(warnings.length, 1, `one WARNING line for the RabbitMQ outage: ${JSON.stringify(amqp)}`);
    assert.match(warnings[0]?.message ?? '', /RabbitMQ connection lost; reconnecting/);
    assert.deepEqual(
      amqp.filter((l) => l.level === 'error' || l.level === 'crit'),
      [],
      'an outage is not an error',
    );
    assert.equal(amqp.filter((l) => l.message === 'RabbitMQ connection restored').length, 1);
  });

  it('at INFO, the outcome line of each job carries job_id, attempt and duration_ms; DEBUG lines are off', async () => {
    await requireBrokerPort();
    const stack = await makeStack();
    after(() => stack.close());
    const logs = await startWithLogs(stack, 'info');
    await stack.publish(job(stack, 'good-1'));
    await stack.publish(job(stack, 'missing-1', false));
    await stack.publish(Buffer.from('not json'), { messageId: 'msg-invalid-1' });

    const outcome = (jobId: string): Promise<LogLine> =>
      logs.onLine(
        `job converted|dead-lettered job_id=${jobId}`,
        (l) => l['job_id'] === jobId && /^job (converted|dead-lettered)$/.test(l.message),
      );
    const converted = await outcome('good-1');
    assert.equal(converted.message, 'job converted');
    assert.equal(converted.level, 'info');
    assert.equal(converted['attempt'], 1);
    assert.equal(typeof converted['duration_ms'], 'number');
    assert.equal(typeof converted['wav_bytes'], 'number');

    const dead = await outcome('missing-1');
    assert.equal(dead.message, 'job dead-lettered');
    assert.equal(dead.level, 'error');
    assert.equal(dead['attempt'], 1);
    assert.equal(typeof dead['duration_ms'], 'number');
    assert.equal(dead['code'], 'INPUT_MISSING');
    assert.ok(String(dead['reason']).length > 10, 'a reason a person can read');

    const invalid = await outcome('msg-invalid-1');
    assert.equal(invalid.message, 'job dead-lettered', 'an invalid message is logged under its message_id');
    assert.equal(invalid['attempt'], 0);
    assert.equal(invalid['code'], 'INVALID_MESSAGE');

    for (const line of logs.lines.filter((l) => l.message.startsWith('job '))) {
      assert.equal(typeof line['job_id'], 'string', `job line without job_id: ${JSON.stringify(line)}`);
    }
    assert.deepEqual(
      logs.lines.filter((l) => l.level === 'debug'),
      [],
      'no DEBUG line at MinimumLevel INFO',
    );
  });

  it('at DEBUG, received and originated lines carry job_id; an AMI outage logs one WARNING, not one per retry', async () => {
    await requireBrokerPort();
    const stack = await makeStack({ emulator: { mode: 'instant' } });
    after(() => stack.close());
    const logs = await startWithLogs(stack, 'debug');
    await onServiceEvent(stack, 'consuming', true);
    await stack.publish(job(stack, 'dbg-1'));
    await logs.onLine('job converted job_id=dbg-1', (l) => l['job_id'] === 'dbg-1' && l.message === 'job converted');
    const jobLines = logs.lines.filter((l) => l['job_id'] === 'dbg-1').map((l) => `${l.level} ${l.message}`);
    assert.deepEqual(jobLines, ['debug job received', 'debug job originated', 'info job converted']);
    const originated = logs.lines.find((l) => l['job_id'] === 'dbg-1' && l.message === 'job originated');
    assert.equal(originated?.['attempt'], 1);
    assert.match(String(originated?.['attempt_id']), /^[0-9a-f-]{36}$/, 'the per-attempt ChannelId is logged');

    // kill -9 style (no Shutdown event), port closed for 1.5 s: the client's backoff (100-200 ms,
    // then doubling) makes at least two more attempts fail before it is back.
    const firstLine = logs.lines.length;
    const back = onServiceEvent(stack, 'ami', true);
    await stack.emulator.restart({ graceful: false, downMs: 1500 });
    await back;
    const outage = logs.lines.slice(firstLine).filter((l) => l['component'] === 'ami');
    const warnings = outage.filter((l) => l.level === 'warning');
    const retries = outage.filter((l) => l.level === 'debug' && l.message === 'AMI reconnect attempt failed');
    assert.ok(retries.length >= 2, `several reconnect attempts failed (${retries.length})`);
    assert.equal(warnings.length, 1, `one WARNING for the outage: ${JSON.stringify(warnings)}`);
    assert.match(warnings[0]?.message ?? '', /unavailable; reconnecting/);
    assert.deepEqual(
      outage.filter((l) => l.level === 'error' || l.level === 'crit'),
      [],
      'an outage is not an error',
    );
    assert.equal(outage.filter((l) => l.message === 'AMI connection restored').length, 1);
  });
});
