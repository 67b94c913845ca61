/** AMQP state → logs (issue #10 item 5): one line per outage, a refused login at CRITICAL with the fix. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { Connection } from 'rabbitmq-client';
import { createMetrics } from '../../src/metrics.js';
import type { Logger } from '../../src/log.js';
import { followAmqp } from '../../src/main.js';

function recorder(): { log: Logger; lines: [string, string, Record<string, unknown>][] } {
  const lines: [string, string, Record<string, unknown>][] = [];
  const at =
    (level: string) =>
    (message: string, meta: Record<string, unknown> = {}) =>
      lines.push([level, message, meta]);
  const log = { debug: at('debug'), info: at('info'), warning: at('warning'), error: at('error'), crit: at('crit') } as unknown as Logger;
  return { log, lines };
}

const WHERE = { host: 'mq1', vhost: '/', user: 'bridge', file: '/etc/auditorai/transcoding.conf' };
const refused = Object.assign(new Error('undefined: ACCESS_REFUSED - Login was refused'), { code: 'ACCESS_REFUSED' });

describe('followAmqp', () => {
  it('a refused login: CRITICAL once with the fix, the retries at DEBUG, then restored with duration_ms', () => {
    const amqp = new EventEmitter();
    const { log, lines } = recorder();
    let t = 1000;
    let lost = 0;
    const metrics = createMetrics({ version: 'test' });
    followAmqp(amqp as unknown as Connection, WHERE, { metrics, log, onLost: () => lost++, now: () => t });
    amqp.emit('connection');
    amqp.emit('error', refused);
    t = 1500;
    amqp.emit('error', refused);
    t = 4000;
    amqp.emit('connection');
    assert.deepEqual(
      lines.map(([level, message]) => `${level} ${message}`),
      [
        'info RabbitMQ connected',
        "crit RabbitMQ refused the login of user 'bridge': check [RabbitMQ] UserName/Password in /etc/auditorai/transcoding.conf (or AUDIOCONVERT_AMQP_PASSWORD); retrying",
        'debug RabbitMQ reconnect attempt failed',
        'info RabbitMQ connection restored',
      ],
    );
    assert.equal(lines[1]?.[2]['error'], 'ACCESS_REFUSED - Login was refused', 'the library\'s "undefined: " prefix is gone');
    assert.equal(lines[3]?.[2]['duration_ms'], 3000);
    assert.equal(lost, 2);
  });

  it('a lost connection: one WARNING, not ERROR; a different failure in the same outage gets its own line', () => {
    const amqp = new EventEmitter();
    const { log, lines } = recorder();
    followAmqp(amqp as unknown as Connection, WHERE, { metrics: createMetrics({ version: 'test' }), log, onLost: () => undefined });
    amqp.emit('error', new Error('connect ECONNREFUSED'));
    amqp.emit('connection');
    amqp.emit('error', Object.assign(new Error('CONNECTION_FORCED - shutdown'), { code: 'CONNECTION_FORCED' }));
    amqp.emit('error', new Error('connect ECONNREFUSED'));
    amqp.emit('error', refused);
    assert.deepEqual(
      lines.map(([level, message]) => `${level} ${message.split(':')[0]}`),
      [
        'warning cannot connect to RabbitMQ; retrying',
        'info RabbitMQ connected',
        'warning RabbitMQ connection lost; reconnecting',
        'debug RabbitMQ reconnect attempt failed',
        "crit RabbitMQ refused the login of user 'bridge'",
      ],
    );
  });
});
