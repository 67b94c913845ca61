// The unit under a real systemd (PID 1 of a booted Debian 12 container, test/systemd/container.ts):
// the package installed with dpkg, Debian's RabbitMQ and the package's Asterisk simulator beside it
// on the container's loopback. What docs/systemd.md promises, checked the way an operator sees it:
// READY=1 and STATUS= (`systemctl show -p StatusText`) through each outage, the watchdog, a stop in
// the middle of a batch, a config error that does not loop, SIGHUP.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import {
  CONF,
  Container,
  UNIT,
  VERSION,
  checkPrerequisites,
  configureSimulator,
  copyDeb,
  explain,
  installSimulator,
  waitFor,
} from './container.js';

const DEB = `audio-convert_${VERSION.one}_all.deb`;
const BATCH = 48;

let c: Container;

before(async () => {
  checkPrerequisites([DEB]);
  c = await Container.boot('service');
  await waitFor(
    'RabbitMQ in the container',
    () => (c.run(['systemctl', 'is-active', 'rabbitmq-server']).stdout.trim() === 'active' ? true : undefined),
    120_000,
  );
  // Unpack first: the simulator is the package's own command. Then configure, which creates the
  // config from the example (AMI secret change-me, what the simulator accepts) and starts the unit.
  copyDeb(c, DEB);
  c.ok(['dpkg', '--unpack', `/root/${DEB}`], { timeoutMs: 180_000 });
  installSimulator(c);
  await configureSimulator(c, { secret: 'change-me' });
  const configure = c.run(['dpkg', '--configure', 'audio-convert'], { timeoutMs: 180_000 });
  assert.equal(configure.status, 0, explain('dpkg --configure', configure));
});

after(async () => {
  await c?.shutdown();
});

void test('dpkg installs and starts it: READY=1 only once it consumes, STATUS= "consuming", nothing secret in the journal', () => {
  const s = c.show(UNIT, 'ActiveState', 'SubState', 'StatusText', 'Type', 'NRestarts');
  // Type=notify: "active" only after READY=1; "consuming" (not "started, not ready …", the 20 s
  // fallback) says READY=1 came because it consumes.
  assert.equal(s.Type, 'notify');
  assert.equal(s.ActiveState, 'active', explain('state', { status: 0, stdout: JSON.stringify(s), stderr: c.journal() }));
  assert.equal(s.StatusText, 'consuming');
  assert.equal(s.NRestarts, '0');
  assert.equal(c.ok(['audio-convert', '--version']).stdout.trim(), VERSION.one);
  assert.doesNotMatch(c.journal(), /change-me/, 'the AMI secret reached the journal');
});

void test('RabbitMQ stopped: the service stays up, STATUS= says amqp is down; started again: consuming', async () => {
  const pid = c.mainPid();
  c.ok(['systemctl', 'stop', 'rabbitmq-server']);
  const down = await c.onStatus(/^not ready \(.*amqp: /);
  assert.match(down, /RabbitMQ/);
  c.ok(['systemctl', 'start', 'rabbitmq-server'], { timeoutMs: 120_000 });
  await c.onStatus(/^consuming$/, 120_000);
  assert.equal(c.mainPid(), pid, 'an outage of RabbitMQ must not restart the service');
});

void test('the simulator (AMI) stopped: STATUS= says ami is down; started again: consuming', async () => {
  const pid = c.mainPid();
  c.ok(['systemctl', 'stop', 'ac-simulator.service']);
  const down = await c.onStatus(/^not ready \(.*ami: /);
  assert.match(down, /AMI/);
  await configureSimulator(c, { secret: 'change-me' });
  await c.onStatus(/^consuming$/, 90_000);
  assert.equal(c.mainPid(), pid, 'an outage of Asterisk must not restart the service');
});

void test('the simulator refuses the login: STATUS= says so (without the secret); accepted again: consuming', async () => {
  await configureSimulator(c, { secret: 'another-secret' });
  try {
    // The service logs the refusal within a second or two (its reconnect backoff starts small).
    const refused = await c.onStatus(/^not ready \(.*ami: .*login refused/i, 30_000);
    assert.doesNotMatch(refused, /change-me|another-secret/);
    assert.doesNotMatch(c.journal(), /change-me|another-secret/, 'a secret reached the journal');
  } finally {
    await configureSimulator(c, { secret: 'change-me' });
  }
  await c.onStatus(/^consuming$/, 90_000);
});

void test('frozen (SIGSTOP): the watchdog kills it and systemd starts it again', async () => {
  // The shipped WatchdogSec=30 plus TimeoutAbortSec (= TimeoutStopSec 45: a stopped process cannot
  // act on the watchdog's SIGABRT, so systemd waits that long before SIGKILL) would cost 80 s; a
  // drop-in shortens both, the mechanism is the same: the pings come from the service's event loop.
  const dropIn = `/etc/systemd/system/${UNIT}.d/zz-test-watchdog.conf`;
  c.write(dropIn, '[Service]\nWatchdogSec=4\nTimeoutAbortSec=2\n');
  c.ok(['systemctl', 'daemon-reload']);
  try {
    assert.equal(c.restart().status, 0);
    await c.onStatus(/^consuming$/);
    const before_ = c.show(UNIT, 'MainPID', 'NRestarts');
    c.ok(['kill', '-STOP', before_.MainPID ?? '0']);
    const after_ = await waitFor(
      'a restart by the watchdog',
      () => {
        const s = c.show(UNIT, 'MainPID', 'NRestarts', 'ActiveState');
        return s.ActiveState === 'active' && s.MainPID !== before_.MainPID && s.MainPID !== '0' ? s : undefined;
      },
      60_000,
    );
    assert.equal(Number(after_.NRestarts), Number(before_.NRestarts) + 1);
    assert.match(c.journal(), /Watchdog timeout/);
    await c.onStatus(/^consuming$/);
  } finally {
    c.ok(['rm', '-f', dropIn]);
    c.ok(['systemctl', 'daemon-reload']);
  }
  assert.equal(c.restart().status, 0);
  await c.onStatus(/^consuming$/);
});

void test(`systemctl stop in the middle of a batch of ${BATCH}, then start: every job converted exactly once`, async () => {
  // Each conversion takes 0.25 s (the sox double), 4 at a time: the batch lasts ~3 s.
  await configureSimulator(c, { secret: 'change-me', soxDelay: 0.25 });
  await c.onStatus(/^consuming$/, 90_000);
  c.sh(
    `mkdir -p /var/local/auditorai/gsm/batch /var/local/auditorai/wav/batch; : >/var/log/ac-sox.log
     for i in $(seq 1 ${BATCH}); do sox -n -r 8000 -c 1 /var/local/auditorai/gsm/batch/call-$i.gsm synth 0.5 sine 440; done`,
    120_000,
  );
  const enqueue = c.start([
    'audio-convert',
    'enqueue',
    '--dir',
    '/var/local/auditorai/gsm/batch',
    '--out',
    '/var/local/auditorai/wav/batch',
    '--wait',
    '--timeout',
    '240',
    '--config',
    CONF,
  ]);
  const conversions = (): string[] =>
    c
      .read('/var/log/ac-sox.log')
      .split('\n')
      .filter((l) => l.includes('/gsm/batch/'));
  await waitFor('the batch to be under way', () => (conversions().length >= BATCH / 4 ? true : undefined), 120_000, 50);
  const stop = c.run(['systemctl', 'stop', UNIT], { timeoutMs: 120_000 });
  assert.equal(stop.status, 0, explain('systemctl stop', stop));
  const stopped = c.show(UNIT, 'ActiveState', 'Result', 'ExecMainStatus');
  assert.deepEqual(
    [stopped.ActiveState, stopped.Result, stopped.ExecMainStatus],
    ['inactive', 'success', '0'],
    'the drain must end in exit 0',
  );
  const converted = Number(c.sh('ls /var/local/auditorai/wav/batch | grep -c "\\.wav$" || true').trim());
  assert.ok(converted < BATCH, `the stop came after the batch (${converted} of ${BATCH} converted): it proves nothing`);
  c.run(['systemctl', 'reset-failed', UNIT]);
  c.ok(['systemctl', 'start', UNIT], { timeoutMs: 120_000 });
  const result = await enqueue;
  assert.equal(result.status, 0, explain('enqueue --wait', result));
  const wavs = c
    .sh('ls /var/local/auditorai/wav/batch')
    .split('\n')
    .filter((n) => n.endsWith('.wav'));
  assert.equal(wavs.length, BATCH);
  const perInput = new Map<string, number>();
  for (const line of conversions()) {
    const input = /\/gsm\/batch\/(call-\d+)\.gsm/.exec(line)?.[1] ?? line;
    perInput.set(input, (perInput.get(input) ?? 0) + 1);
  }
  assert.equal(perInput.size, BATCH, 'every input converted');
  const twice = [...perInput].filter(([, n]) => n !== 1);
  assert.deepEqual(twice, [], 'converted more than once');
  await configureSimulator(c, { secret: 'change-me' });
  await c.onStatus(/^consuming$/, 90_000);
});

void test('a config error: exit 2, failed, no restart loop (RestartPreventExitStatus=2); fixed: it starts', async () => {
  const good = c.read(CONF);
  assert.match(good, /^# Concurrency = 4$/m);
  c.write(CONF, good.replace(/^# Concurrency = 4$/m, 'Concurrency = lots'), 0o640);
  c.ok(['chgrp', 'reincar-auditorai', CONF]);
  const restart = c.restart();
  assert.notEqual(restart.status, 0, 'a service with a bad config must not start');
  const s = c.show(UNIT, 'ActiveState', 'SubState', 'Result', 'ExecMainStatus', 'NRestarts');
  // "failed", not "auto-restart": systemd is not going to try again.
  assert.deepEqual([s.ActiveState, s.SubState, s.Result, s.ExecMainStatus, s.NRestarts], ['failed', 'failed', 'exit-code', '2', '0']);
  assert.match(c.journal(), /\[Worker\] Concurrency = "?lots"?/);
  c.write(CONF, good, 0o640);
  c.ok(['chgrp', 'reincar-auditorai', CONF]);
  assert.equal(c.restart().status, 0);
  await c.onStatus(/^consuming$/);
});

// Last: on a build without SIGHUP handling the service ends here (node's default action, and
// Restart=on-failure does not count SIGHUP as a failure).
void test('SIGHUP: the service keeps running or is restarted, never silently ends', async () => {
  const pid = c.mainPid();
  assert.ok(pid > 0);
  c.ok(['systemctl', 'kill', '--kill-whom=main', '-s', 'SIGHUP', UNIT]);
  // A process that dies of the signal does so at once; 5 s of observation covers a restart too
  // (RestartSec=5 would show as "activating"/auto-restart, never "inactive" or "failed").
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline) {
    const s = c.show(UNIT, 'ActiveState', 'SubState', 'Result');
    assert.ok(
      !['inactive', 'failed'].includes(s.ActiveState ?? ''),
      `SIGHUP ended the service: ${JSON.stringify(s)}\n${c.journal().split('\n').slice(-10).join('\n')}`,
    );
    await delay(200); // the polling interval of a bounded observation, not a wait for an event
  }
  await c.onStatus(/^consuming$/, 60_000);
});
