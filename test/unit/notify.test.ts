import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import {
  describe,
  followService,
  statusText,
  systemdNotifier,
  watchdogIntervalMs,
  type Observable,
  type SystemdNotifier,
} from '../../src/systemd/notify.js';

void test('watchdogIntervalMs: half of WATCHDOG_USEC, only under a NOTIFY_SOCKET and for this pid', () => {
  const socket = '/run/systemd/notify';
  assert.equal(watchdogIntervalMs({ NOTIFY_SOCKET: socket, WATCHDOG_USEC: '30000000' }, 42), 15_000);
  assert.equal(watchdogIntervalMs({ NOTIFY_SOCKET: socket, WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), 15_000);
  assert.equal(
    watchdogIntervalMs({ NOTIFY_SOCKET: socket, WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42),
    undefined,
    'meant for another process',
  );
  assert.equal(watchdogIntervalMs({ WATCHDOG_USEC: '30000000' }, 42), undefined, 'no socket, no pings');
  assert.equal(watchdogIntervalMs({ NOTIFY_SOCKET: socket }, 42), undefined);
  for (const bad of ['0', '-5', 'abc', ''])
    assert.equal(watchdogIntervalMs({ NOTIFY_SOCKET: socket, WATCHDOG_USEC: bad }, 42), undefined, bad);
});

void test('statusText keeps STATUS= on one line: a newline would smuggle in another assignment', () => {
  assert.equal(statusText('not ready\nREADY=1'), 'STATUS=not ready READY=1');
  assert.equal(statusText('x'.repeat(1000)).length, 'STATUS='.length + 400);
});

void test('without NOTIFY_SOCKET the notifier is a no-op (never runs the command)', async () => {
  const n = systemdNotifier(
    { WATCHDOG_USEC: '1000', PATH: '/nonexistent' },
    { command: '/nonexistent/systemd-notify', onError: () => assert.fail('ran') },
  );
  assert.equal(n.enabled, false);
  assert.equal(n.watchdogMs, undefined);
  n.notify(['READY=1']);
  n.startWatchdog();
  await n.close();
});

void test('a command that cannot run is reported once, not once per message', async () => {
  const errors: string[] = [];
  const n = systemdNotifier(
    { NOTIFY_SOCKET: '/nonexistent.sock' },
    { command: '/nonexistent/systemd-notify', onError: (e) => errors.push(e.message) },
  );
  for (let i = 0; i < 3; i++) n.notify(['WATCHDOG=1']);
  await n.close();
  assert.equal(errors.length, 1, errors.join('\n'));
  assert.match(errors[0]!, /\/nonexistent\/systemd-notify WATCHDOG: spawn .*ENOENT/);
});

function fakes(): { service: Observable & { ready: boolean }; notifier: SystemdNotifier; sent: string[][]; watchdog: () => boolean } {
  const events = new EventEmitter();
  const sent: string[][] = [];
  let watching = false;
  const service = {
    events,
    ready: false,
    readiness() {
      return this.ready
        ? { ready: true, checks: { amqp: { ok: true, detail: 'connected' } } }
        : {
            ready: false,
            checks: {
              amqp: { ok: true, detail: 'connected' },
              ami: { ok: false, detail: 'AMI not connected' },
              consuming: { ok: false, detail: 'paused: ami-down' },
            },
          };
    },
  };
  const notifier: SystemdNotifier = {
    enabled: true,
    watchdogMs: 1000,
    notify: (a) => void sent.push([...a]),
    startWatchdog: () => void (watching = true),
    close: () => Promise.resolve(),
  };
  return { service, notifier, sent, watchdog: () => watching };
}

void test('followService: STATUS while not ready, READY=1 once consuming, STATUS on changes, STOPPING=1', () => {
  const { service, notifier, sent, watchdog } = fakes();
  const s = followService(service, notifier, 60_000);
  assert.ok(watchdog(), 'watchdog pings start with supervision');
  assert.deepEqual(sent, [['STATUS=not ready (ami: AMI not connected; consuming: paused: ami-down)']]);
  service.events.emit('readiness'); // the same text: nothing sent
  assert.equal(sent.length, 1);
  service.ready = true;
  service.events.emit('readiness');
  assert.deepEqual(sent[1], ['READY=1', 'STATUS=consuming']);
  service.ready = false;
  service.events.emit('readiness');
  assert.deepEqual(
    sent[2],
    ['STATUS=not ready (ami: AMI not connected; consuming: paused: ami-down)'],
    'READY=1 is sent once; later changes are STATUS only',
  );
  s.stopping();
  assert.deepEqual(sent[3], ['STOPPING=1', 'STATUS=stopping: draining jobs in flight']);
  service.events.emit('readiness');
  assert.equal(sent.length, 4, 'nothing after STOPPING=1');
});

void test('followService: READY=1 at the deadline when the service cannot consume yet (a PBX down at boot)', async () => {
  const { service, notifier, sent } = fakes();
  const readySent = new Promise<void>((resolve) => {
    followService(service, { ...notifier, notify: (a) => (notifier.notify(a), a[0] === 'READY=1' && resolve()) }, 20);
  });
  await readySent;
  assert.deepEqual(sent.at(-1), ['READY=1', 'STATUS=started, not ready (ami: AMI not connected; consuming: paused: ami-down)']);
});

void test('describe names every failing check', () => {
  assert.equal(describe({ ready: true, checks: {} }), 'consuming');
  assert.equal(
    describe({ ready: false, checks: { amqp: { ok: false, detail: 'RabbitMQ not connected' }, ami: { ok: true, detail: 'logged in' } } }),
    'not ready (amqp: RabbitMQ not connected)',
  );
});
