/** The outcomes table (docs/messages.md), row by row, through the one policy function. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OriginateOutcome } from '../../src/worker/originate.js';
import {
  DeploymentError,
  ERROR_CODES,
  ERROR_POLICY,
  InputMissingError,
  InputUnreadableError,
  PathNotAllowedError,
  UNEXPECTED_CODES,
} from '../../src/errors.js';
import { retryDelayMs } from '../../src/queue/broker.js';
import { decide, type Action } from '../../src/worker/handler.js';

const MAX = 5;

/** Attempt number `attempt` (1-based) ended in `outcome`. */
function actionFor(outcome: OriginateOutcome, attempt = 1): { kind: string; code?: string } {
  const action = decide(outcome, attempt - 1, MAX);
  return action.kind === 'complete' || action.kind === 'defer' ? { kind: action.kind } : { kind: action.kind, code: action.error.code };
}

function thrown(error: unknown, attemptsBefore = 0): Action {
  return decide({ kind: 'thrown', error }, attemptsBefore, MAX);
}

describe('policy: outcome → what happens to the message', () => {
  const rows: [string, OriginateOutcome, { kind: string; code?: string }][] = [
    ['converted → complete', { kind: 'converted', wavBytes: 1, detail: 'SUCCESS' }, { kind: 'complete' }],
    [
      'input missing → dead-letter',
      { kind: 'conversion-failed', inputMissing: true, invalidPath: false, detail: 'input-missing', reason: '' },
      { kind: 'dead-letter', code: 'INPUT_MISSING' },
    ],
    [
      'dialplan refused path → dead-letter',
      { kind: 'conversion-failed', inputMissing: false, invalidPath: true, detail: 'invalid-path', reason: '' },
      { kind: 'dead-letter', code: 'PATH_NOT_ALLOWED' },
    ],
    [
      'other conversion failure → retry',
      { kind: 'conversion-failed', inputMissing: false, invalidPath: false, detail: 'convert-failed', reason: '' },
      { kind: 'retry', code: 'CONVERSION_FAILED' },
    ],
    [
      'Response: Error (extension missing) → requeue, pause',
      { kind: 'rejected', message: 'Extension does not exist.' },
      { kind: 'requeue', code: 'DEPLOYMENT_ERROR' },
    ],
    [
      'line too long → dead-letter',
      { kind: 'invalid-request', message: 'Failed to parse message: line too long' },
      { kind: 'dead-letter', code: 'INVALID_MESSAGE' },
    ],
    ['OriginateResponse Failure → retry', { kind: 'start-failed', reason: 'Reason 0' }, { kind: 'retry', code: 'ORIGINATE_FAILED' }],
    [
      'hangup without result → retry',
      { kind: 'hangup-without-result', cause: 'Normal Clearing' },
      { kind: 'retry', code: 'HANGUP_WITHOUT_RESULT' },
    ],
    ['deadline passed → retry', { kind: 'timeout', afterMs: 120000 }, { kind: 'retry', code: 'TIMEOUT' }],
    ['AMI dropped mid-job → retry', { kind: 'disconnected', message: 'socket closed' }, { kind: 'retry', code: 'AMI_DISCONNECTED' }],
  ];
  for (const [title, outcome, expected] of rows) {
    it(title, () => assert.deepEqual(actionFor(outcome), expected));
  }

  it('a transient failure on the last attempt is dead-lettered, saying it gave up', () => {
    const action = decide({ kind: 'timeout', afterMs: 1 }, MAX - 1, MAX);
    assert.equal(action.kind, 'dead-letter');
    assert.match(action.kind === 'dead-letter' ? action.reason : '', /gave up after 5 attempts/);
  });

  it('retry levels follow the attempt number', () => {
    const action = decide({ kind: 'timeout', afterMs: 1 }, 2, MAX);
    assert.equal(action.kind === 'retry' && action.delayLevel, 3);
    assert.equal(action.kind === 'retry' && action.attempts, 3);
  });

  it('converted → complete, carrying the WAV size and the attempt count', () => {
    assert.deepEqual(decide({ kind: 'converted', wavBytes: 96044, detail: 'SUCCESS' }, 1, MAX), {
      kind: 'complete',
      attempts: 2,
      wavBytes: 96044,
    });
  });

  it('a deployment error is the one requeue that pauses intake', () => {
    const action = decide({ kind: 'rejected', message: 'Extension does not exist.' }, 0, MAX);
    assert.deepEqual(action.kind === 'requeue' && [action.pauseIntake, action.quiet], [true, false]);
  });

  it('the drain deadline → requeue SHUTTING_DOWN, intake not paused by it, no attempt counted', () => {
    const action = decide({ kind: 'abandoned', started: true }, 2, MAX);
    assert.deepEqual(action.kind === 'requeue' && [action.error.code, action.pauseIntake, action.quiet], ['SHUTTING_DOWN', false, false]);
    assert.equal(action.kind === 'requeue' && action.error.message, 'the service stopped before the job finished');
  });

  it('a job handed back before it started says so, not that it was stopped before it finished', () => {
    const action = decide({ kind: 'abandoned', started: false }, 0, MAX);
    assert.deepEqual(action.kind === 'requeue' && [action.error.code, action.quiet], ['SHUTTING_DOWN', false]);
    assert.equal(action.kind === 'requeue' && action.error.message, 'the service is stopping: handed back before it started');
  });

  it('AMI down when the message arrived → quiet requeue, no attempt', () => {
    const action = decide({ kind: 'ami-down' }, 0, MAX);
    assert.deepEqual(action.kind === 'requeue' && [action.pauseIntake, action.quiet], [false, true]);
  });
});

describe("policy: Convert()'s reason reaches the error message", () => {
  it('detail and reason both appear, so a person reads why without the Asterisk log', () => {
    const action = decide(
      {
        kind: 'conversion-failed',
        inputMissing: false,
        invalidPath: false,
        detail: 'input-corrupt',
        reason: 'GSM frame 51 of 150 cannot be decoded',
      },
      0,
      5,
    );
    assert.equal(action.kind, 'retry');
    assert.equal(
      action.kind === 'retry' && action.error.message,
      'the conversion step failed (dialplan: input-corrupt — GSM frame 51 of 150 cannot be decoded)',
    );
  });
});

describe('policy: errors thrown while checking a job', () => {
  it('an invalid message is dead-lettered at once, counting no attempt', () => {
    const action = thrown(new PathNotAllowedError('gsm_path is outside the allowed roots'), 0);
    assert.deepEqual(action.kind === 'dead-letter' && [action.error.code, action.attempts, action.unexpected], [
      'PATH_NOT_ALLOWED',
      0,
      false,
    ]);
  });

  it('an unreadable input counts an attempt and is retried through the delay queues, never requeued', () => {
    const action = thrown(new InputUnreadableError('cannot examine /data/gsm/locked: EACCES'), 0);
    assert.equal(action.kind, 'retry');
    assert.deepEqual(action.kind === 'retry' && [action.error.code, action.attempts, action.delayLevel, action.unexpected], [
      'INPUT_UNREADABLE',
      1,
      1,
      true,
    ]);
  });

  it('an unreadable input on the last attempt is dead-lettered with its code', () => {
    const action = thrown(new InputUnreadableError('cannot examine /data/gsm/locked: EACCES'), MAX - 1);
    assert.deepEqual(action.kind === 'dead-letter' && [action.error.code, action.attempts], ['INPUT_UNREADABLE', MAX]);
    assert.match(action.kind === 'dead-letter' ? action.reason : '', /gave up after 5 attempts: cannot examine/);
  });

  const foreign: [string, unknown][] = [
    ['a TypeError (a bug)', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['a raw EIO from the file system', Object.assign(new Error('EIO: i/o error, realpath'), { code: 'EIO' })],
    ['a thrown string', 'boom'],
    ['undefined', undefined],
  ];
  for (const [what, error] of foreign) {
    it(`${what} → INTERNAL, retried, then dead-lettered; the original kept as cause`, () => {
      const first = thrown(error, 0);
      assert.deepEqual(first.kind === 'retry' && [first.error.code, first.attempts, first.unexpected], ['INTERNAL', 1, true]);
      assert.equal(first.kind === 'retry' && first.error.cause, error);
      const last = thrown(error, MAX - 1);
      assert.deepEqual(last.kind === 'dead-letter' && [last.error.code, last.attempts], ['INTERNAL', MAX]);
    });
  }

  it('no thrown error ever becomes a requeue (the hot redelivery loop)', () => {
    for (const error of [new InputMissingError('x'), new InputUnreadableError('x'), new Error('x'), null]) {
      for (let before = 0; before < MAX + 2; before++) assert.notEqual(thrown(error, before).kind, 'requeue');
    }
  });

  it('retry delays grow exponentially and are capped', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((l) => retryDelayMs(l, 5000, 60000)),
      [5000, 10000, 20000, 40000, 60000, 60000, 60000],
    );
  });
});

describe('policy: the ERROR_POLICY table is the one source', () => {
  it('the code lists derive from it, and each error class reads its own row', () => {
    assert.deepEqual(ERROR_CODES, Object.keys(ERROR_POLICY));
    assert.deepEqual(UNEXPECTED_CODES, ['INPUT_UNREADABLE', 'OUTPUT_UNREADABLE', 'INTERNAL']);
    assert.deepEqual(
      ERROR_CODES.filter((code) => ERROR_POLICY[code].pausesIntake),
      ['DEPLOYMENT_ERROR'],
    );
    for (const error of [new InputMissingError('x'), new InputUnreadableError('x'), new DeploymentError('x')]) {
      const row = ERROR_POLICY[error.code];
      assert.deepEqual(
        [error.disposition, error.pausesIntake, error.unexpected],
        [row.disposition, row.pausesIntake, row.unexpected],
        error.code,
      );
    }
  });
});
