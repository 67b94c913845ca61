import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { createLogger, nullLogger, SYSLOG_PRIORITY, type LogFormat, type Logger, type LogLevel } from '../../src/log.js';

/** A logger writing into an array of lines. */
function capture(format: LogFormat, level: LogLevel = 'debug', secrets?: string[]): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter((l) => l !== ''),
      );
      callback();
    },
  });
  return { log: createLogger({ level, format, secrets, stream }), lines };
}

void test('journald: <N> syslog priority prefix for every level, message, then key=value', () => {
  const { log, lines } = capture('journald');
  log.emerg('e0');
  log.alert('e1');
  log.crit('e2');
  log.error('e3', { queue: 'Asterisk.Transcoding', attempt: 2 });
  log.warning('e4');
  log.notice('e5');
  log.info('e6');
  log.debug('e7');
  assert.deepEqual(lines, ['<0>e0', '<1>e1', '<2>e2', '<3>e3 queue=Asterisk.Transcoding attempt=2', '<4>e4', '<5>e5', '<6>e6', '<7>e7']);
  assert.deepEqual(SYSLOG_PRIORITY, { emerg: 0, alert: 1, crit: 2, error: 3, warning: 4, notice: 5, info: 6, debug: 7 });
});

void test('journald: one line per entry, no timestamp, values quoted only when needed, errors as text', () => {
  const { log, lines } = capture('journald');
  const err = new Error('socket closed', { cause: new Error('ECONNRESET') });
  log.child({ component: 'ami' }).warning('lost\nconnection', { reason: 'two words', empty: '', err, obj: { a: 1 } });
  assert.equal(lines.length, 1);
  assert.equal(
    lines[0],
    '<4>lost\\nconnection component=ami reason="two words" empty="" ' +
      'err="Error: socket closed (cause: Error: ECONNRESET)" obj="{\\"a\\":1}"',
  );
});

void test('the level filter drops what is below the minimum', () => {
  const { log, lines } = capture('journald', 'error');
  log.warning('dropped');
  log.info('dropped');
  log.error('kept');
  log.crit('kept too');
  assert.deepEqual(lines, ['<3>kept', '<2>kept too']);
});

void test('child loggers carry their component', () => {
  const { log, lines } = capture('json');
  log.child({ component: 'http' }).info('listening', { port: 9464 });
  const entry = JSON.parse(lines[0] ?? '') as Record<string, unknown>;
  assert.equal(entry.level, 'info');
  assert.equal(entry.message, 'listening');
  assert.equal(entry.component, 'http');
  assert.equal(entry.port, 9464);
  assert.match(String(entry.timestamp), /^\d{4}-\d\d-\d\dT/);
});

void test('text: timestamp, level, message, fields', () => {
  const { log, lines } = capture('text');
  log.error('boom', { job: 'call-1' });
  assert.match(lines[0] ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ERROR {3}boom job=call-1$/);
});

for (const format of ['journald', 'text', 'json'] as const) {
  void test(`${format}: every secret becomes *** in the message and anywhere in the metadata`, () => {
    const secrets = ['Tu6...JYL', 'pa"ss\\word'];
    const { log, lines } = capture(format, 'debug', secrets);
    const meta = {
      url: 'amqp://guest:pa"ss\\word@localhost',
      nested: { deeper: ['x', { secret: 'Tu6...JYL' }] },
      err: new Error('login with Tu6...JYL refused'),
      'key-Tu6...JYL': 1,
    };
    log.child({ component: 'ami' }).error('login failed for secret Tu6...JYL', meta);
    log.error(new Error('thrown with pa"ss\\word'));
    const out = lines.join('\n');
    assert.equal(lines.length, 2);
    assert.doesNotMatch(out, /Tu6|pa"ss|pa\\"ss|word/);
    assert.ok(out.includes('***'));
    // The caller's objects are not changed by redaction.
    assert.equal(meta.nested.deeper[1] && (meta.nested.deeper[1] as { secret: string }).secret, 'Tu6...JYL');
  });
}

void test('circular metadata does not hang or throw', () => {
  const { log, lines } = capture('json');
  const a: Record<string, unknown> = { name: 'a' };
  a.self = a;
  log.info('circular', { a });
  assert.match(lines[0] ?? '', /"self":"\[circular\]"/);
});

void test('nullLogger drops everything and still has children', () => {
  const log = nullLogger();
  log.child({ component: 'x' }).error('nothing');
  log.info('nothing');
});

void test('the Logger type has no npm-only methods (log.warn would throw at run time)', () => {
  const { log } = capture('journald');
  // @ts-expect-error: syslog levels have `warning`, not `warn`
  assert.equal(typeof log.warn, 'undefined');
});
