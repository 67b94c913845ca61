/**
 * Issue #10 item 5: a refused AMQP login is a deployment problem a person must fix. It is logged
 * once, at CRITICAL, with the fix — like a refused AMI login — not as "connection lost" at ERROR
 * with the library's `undefined: ` prefix, and not once per retry.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { createLogger } from '../../src/log.js';
import { start } from '../../src/main.js';
import { AMQP_URL, makeStack } from '../helpers/stack.js';

type Line = Record<string, unknown> & { level: string; message: string };

/** A JSON logger whose lines are collected; `onLine` waits for the n-th line matching. */
function capture(): {
  logger: ReturnType<typeof createLogger>;
  lines: Line[];
  onLine(match: (l: Line) => boolean, n?: number): Promise<void>;
} {
  const lines: Line[] = [];
  let waiters: { match: (l: Line) => boolean; n: number; resolve: () => void }[] = [];
  const stream = new PassThrough();
  let partial = '';
  stream.on('data', (chunk: Buffer) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const part of parts.filter((p) => p !== '')) {
      lines.push(JSON.parse(part) as Line);
      waiters = waiters.filter((w) => (lines.filter(w.match).length >= w.n ? (w.resolve(), false) : true));
    }
  });
  return {
    logger: createLogger({ level: 'debug', format: 'json', stream }),
    lines,
    onLine: (match, n = 1) =>
      lines.filter(match).length >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ match, n, resolve })),
  };
}

describe('AMQP logs', { timeout: 30_000 }, () => {
  it('a refused login: one CRITICAL line naming the user and the fix (retries of the same outage go to DEBUG), no "undefined:"', async () => {
    const wrong = AMQP_URL.replace(/\/\/([^:/@]+):[^@]*@/, '//$1:not-the-password@');
    assert.notEqual(wrong, AMQP_URL, 'the test URL carries a password to replace');
    const stack = await makeStack({ config: { rabbitmq: { Url: wrong } } });
    after(() => stack.close());
    const logs = capture();
    const service = await start(stack.config, { logger: logs.logger, version: 'test' });
    after(() => service.close());

    await logs.onLine((l) => l['component'] === 'amqp' && l.level === 'crit');
    const amqp = logs.lines.filter((l) => l['component'] === 'amqp');
    const crit = amqp.filter((l) => l.level === 'crit');
    assert.equal(crit.length, 1, JSON.stringify(amqp));
    assert.match(
      crit[0]?.message ?? '',
      /^RabbitMQ refused the login of user 'guest': check \[RabbitMQ\] UserName\/Password in .* \(or AUDIOCONVERT_AMQP_PASSWORD\); retrying$/,
    );
    assert.match(String(crit[0]?.['error']), /^ACCESS_REFUSED/);
    assert.deepEqual(
      amqp.filter((l) => /connection lost/.test(l.message) || l.level === 'error'),
      [],
    );
    assert.deepEqual(
      logs.lines.filter((l) => JSON.stringify(l).includes('undefined: ')),
      [],
    );
    assert.equal(service.readiness().checks['amqp']?.ok, false);
  });

  it('the start line names the version', async () => {
    const stack = await makeStack();
    after(() => stack.close());
    const logs = capture();
    const service = await start(stack.config, { logger: logs.logger, version: '9.8.7' });
    after(() => service.close());
    const started = logs.lines.find((l) => l.message === 'started');
    assert.equal(started?.['version'], '9.8.7');
  });
});
