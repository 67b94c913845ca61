/** The AMI login steps (src/ami/login.ts), fed with the Responses a real Asterisk sent. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { firstLoginStep, md5Key, nextLoginStep, type LoginCredentials } from '../../src/ami/login.js';
import { getHeader, type AmiMessage } from '../../src/ami/protocol.js';
import { serverMessages } from '../helpers/transcripts.js';

const plain: LoginCredentials = { username: 'auditorai', secret: 'test-secret', authType: 'plain', events: 'call,user,system' };
const md5: LoginCredentials = { ...plain, authType: 'md5' };

function recorded(name: string, actionId: string): AmiMessage {
  const found = serverMessages(name).find((m) => getHeader(m, 'ActionID') === actionId);
  assert.ok(found, `${name}: ${actionId}`);
  return found;
}

/** What Asterisk 22.10.1 greets with (every recording's first line). */
const BANNER = 'Asterisk Call Manager/11.0.0';

void test("someone else's banner is not-ami, and nothing is sent", () => {
  for (const banner of ['SSH-2.0-OpenSSH_9.2', 'HTTP/1.1 400 Bad Request', '', 'asterisk call manager/1.0']) {
    const step = firstLoginStep(plain, banner);
    assert.equal(step.kind, 'not-ami', banner);
  }
  assert.equal(firstLoginStep(plain, 'Asterisk Call Manager/2.10.6').kind, 'send');
});

void test('plain: one Login with Username, Secret, Events (the recorded order)', () => {
  assert.deepEqual(firstLoginStep(plain, BANNER), {
    kind: 'send',
    phase: 'login',
    pairs: [
      ['Action', 'Login'],
      ['Username', 'auditorai'],
      ['Secret', 'test-secret'],
      ['Events', 'call,user,system'],
    ],
  });
});

void test('md5: Challenge first, then Login with the lower-case hex key and no Secret', () => {
  assert.deepEqual(firstLoginStep(md5, BANNER), {
    kind: 'send',
    phase: 'challenge',
    pairs: [
      ['Action', 'Challenge'],
      ['AuthType', 'MD5'],
    ],
  });
  const challenge: AmiMessage = {
    pairs: [
      ['Response', 'Success'],
      ['ActionID', 'c'],
      ['Challenge', '840233713'],
    ],
  };
  const step = nextLoginStep({ ...md5, secret: 'simulator' }, 'challenge', challenge);
  assert.equal(step.kind, 'send');
  assert.ok(step.kind === 'send');
  assert.deepEqual(step.pairs, [
    ['Action', 'Login'],
    ['Username', 'auditorai'],
    ['AuthType', 'MD5'],
    ['Key', 'fabcb421d3d49e9782ef5c1bdc6b0914'],
    ['Events', 'call,user,system'],
  ]);
  // Computed independently: python3 -c 'import hashlib; print(hashlib.md5(b"840233713simulator").hexdigest())'
  assert.equal(md5Key('840233713', 'simulator'), 'fabcb421d3d49e9782ef5c1bdc6b0914');
});

void test('a refused Challenge is a transient refusal', () => {
  const refused: AmiMessage = {
    pairs: [
      ['Response', 'Error'],
      ['ActionID', 'c'],
      ['Message', 'Must specify AuthType'],
    ],
  };
  assert.deepEqual(nextLoginStep(md5, 'challenge', refused), { kind: 'refused', message: 'Challenge refused: Must specify AuthType' });
});

void test('recorded Responses: accepted, "Authentication failed", "Asterisk is shutting down"', () => {
  assert.deepEqual(nextLoginStep(plain, 'login', recorded('login-ok', 'login-1')), { kind: 'logged-in' });
  assert.deepEqual(nextLoginStep(plain, 'login', recorded('login-bad-password', 'login-bad')), {
    kind: 'auth-failed',
    message: 'Authentication failed',
  });
  assert.deepEqual(nextLoginStep(plain, 'login', recorded('login-bad-password', 'login-nouser')), {
    kind: 'auth-failed',
    message: 'Authentication failed',
  });
  const shuttingDown = serverMessages('restart-core-restart-now').find((m) => getHeader(m, 'Message') === 'Asterisk is shutting down');
  assert.ok(shuttingDown);
  assert.deepEqual(nextLoginStep(plain, 'login', shuttingDown), { kind: 'refused', message: 'Asterisk is shutting down' });
});
