import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { startHttpServer, type HttpServer, type Readiness } from '../../src/http.js';
import { nullLogger } from '../../src/log.js';
import { createMetrics } from '../../src/metrics.js';

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with a fresh (non keep-alive) agent-less connection. */
function call(port: number, path: string, method = 'GET'): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

void describe('http server', () => {
  let server: HttpServer;
  let state: Readiness = { ready: false, checks: {} };
  const metrics = createMetrics({ version: 'test' });

  before(async () => {
    server = await startHttpServer({
      host: '127.0.0.1',
      port: 0,
      registry: metrics.registry,
      readiness: () => state,
      logger: nullLogger(),
    });
  });
  after(() => server.close());

  void test('GET /metrics: Prometheus text from the given registry', async () => {
    metrics.jobsReceived.inc(3);
    const r = await call(server.port, '/metrics');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], metrics.registry.contentType);
    assert.match(r.body, /^audioconvert_jobs_received_total 3$/m);
    assert.match(r.body, /^audioconvert_build_info\{version="test"/m);
  });

  void test('GET /healthz: 200 {"status":"ok"}', async () => {
    const r = await call(server.port, '/healthz');
    assert.equal(r.status, 200);
    assert.match(String(r.headers['content-type']), /^application\/json/);
    assert.deepEqual(JSON.parse(r.body), { status: 'ok' });
  });

  void test('GET /readyz flips between 503 and 200 with the readiness function', async () => {
    state = {
      ready: false,
      checks: {
        amqp: { ok: true, detail: 'connected' },
        ami: { ok: false, detail: 'login refused: check [AsteriskAMI] User/Secret' },
      },
    };
    const down = await call(server.port, '/readyz');
    assert.equal(down.status, 503);
    const body = JSON.parse(down.body) as { status: string; down: string[]; checks: Readiness['checks'] };
    assert.equal(body.status, 'not ready');
    assert.deepEqual(body.down, ['ami: login refused: check [AsteriskAMI] User/Secret']);
    assert.deepEqual(body.checks, state.checks);

    state = { ready: true, checks: { amqp: { ok: true, detail: 'connected' }, ami: { ok: true, detail: 'logged in' } } };
    const up = await call(server.port, '/readyz');
    assert.equal(up.status, 200);
    assert.deepEqual(JSON.parse(up.body), { status: 'ready', down: [], checks: state.checks });
    assert.equal(up.headers['cache-control'], 'no-store');
  });

  void test('query strings are ignored; HEAD gets headers only', async () => {
    assert.equal((await call(server.port, '/healthz?probe=1')).status, 200);
    const head = await call(server.port, '/metrics', 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.ok(Number(head.headers['content-length']) > 0);
  });

  void test('unknown path → 404; other methods → 405 with Allow', async () => {
    assert.equal((await call(server.port, '/')).status, 404);
    assert.equal((await call(server.port, '/metrics/extra')).status, 404);
    const post = await call(server.port, '/metrics', 'POST');
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
  });
});

void test('close() is idempotent and does not wait for keep-alive connections', async () => {
  const server = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    registry: createMetrics({ version: 't' }).registry,
    readiness: () => ({ ready: true, checks: {} }),
    logger: nullLogger(),
  });
  // A keep-alive request leaves an idle socket open, as a Prometheus scraper does.
  const res = await fetch(`http://127.0.0.1:${server.port}/healthz`, { headers: { connection: 'keep-alive' } });
  assert.equal(res.status, 200);
  await res.text();
  const started = Date.now();
  await Promise.all([server.close(), server.close()]);
  await server.close();
  assert.ok(Date.now() - started < 1000, 'close waited for the idle keep-alive socket');
  await assert.rejects(fetch(`http://127.0.0.1:${server.port}/healthz`));
});

void test('a port in use is a clear error naming the address', async (t) => {
  const first = await startHttpServer({
    host: '127.0.0.1',
    port: 0,
    registry: createMetrics({ version: 't' }).registry,
    readiness: () => ({ ready: true, checks: {} }),
    logger: nullLogger(),
  });
  t.after(() => first.close());
  await assert.rejects(
    startHttpServer({
      host: '127.0.0.1',
      port: first.port,
      registry: createMetrics({ version: 't' }).registry,
      readiness: () => ({ ready: true, checks: {} }),
      logger: nullLogger(),
    }),
    new RegExp(`cannot listen on 127\\.0\\.0\\.1:${first.port} for /metrics: EADDRINUSE`),
  );
});
