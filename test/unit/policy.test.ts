/** The outcomes table (docs/messages.md), row by row, through the one policy function. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { OriginateOutcome } from '../../src/ami/originate.js';
import { decide, outcomeError, retryDelayMs } from '../../src/worker/policy.js';

const MAX = 5;

function actionFor(outcome: OriginateOutcome, attempt = 1): { kind: string; code?: string } {
  const action = decide(outcomeError(outcome), attempt, MAX);
  return action.kind === 'complete' ? { kind: 'complete' } : { kind: action.kind, code: action.error.code };
}

describe('policy: outcome → what happens to the message', () => {
  const rows: [string, OriginateOutcome, { kind: string; code?: string }][] = [
    ['converted → complete', { kind: 'converted', wavBytes: 1, detail: 'SUCCESS' }, { kind: 'complete' }],
    ['input missing → dead-letter', { kind: 'conversion-failed', inputMissing: true, invalidPath: false, detail: 'input-missing' }, { kind: 'dead-letter', code: 'INPUT_MISSING' }],
    ['dialplan refused path → dead-letter', { kind: 'conversion-failed', inputMissing: false, invalidPath: true, detail: 'invalid-path' }, { kind: 'dead-letter', code: 'PATH_NOT_ALLOWED' }],
    ['other conversion failure → retry', { kind: 'conversion-failed', inputMissing: false, invalidPath: false, detail: 'convert-failed' }, { kind: 'retry', code: 'CONVERSION_FAILED' }],
    ['Response: Error (extension missing) → requeue, pause', { kind: 'rejected', message: 'Extension does not exist.' }, { kind: 'requeue', code: 'DEPLOYMENT_ERROR' }],
    ['line too long → dead-letter', { kind: 'invalid-request', message: 'Failed to parse message: line too long' }, { kind: 'dead-letter', code: 'INVALID_MESSAGE' }],
    ['OriginateResponse Failure → retry', { kind: 'start-failed', reason: 'Reason 0' }, { kind: 'retry', code: 'ORIGINATE_FAILED' }],
    ['hangup without result → retry', { kind: 'hangup-without-result', cause: 'Normal Clearing' }, { kind: 'retry', code: 'HANGUP_WITHOUT_RESULT' }],
    ['deadline passed → retry', { kind: 'timeout', afterMs: 120000 }, { kind: 'retry', code: 'TIMEOUT' }],
    ['AMI dropped mid-job → retry', { kind: 'disconnected', message: 'socket closed' }, { kind: 'retry', code: 'AMI_DISCONNECTED' }],
  ];
  for (const [title, outcome, expected] of rows) {
    it(title, () => assert.deepEqual(actionFor(outcome), expected));
  }

  it('a transient failure on the last attempt is dead-lettered, saying it gave up', () => {
    const action = decide(outcomeError({ kind: 'timeout', afterMs: 1 }), MAX, MAX);
    assert.equal(action.kind, 'dead-letter');
    assert.match(action.kind === 'dead-letter' ? action.reason : '', /gave up after 5 attempts/);
  });

  it('retry levels follow the attempt number', () => {
    const action = decide(outcomeError({ kind: 'timeout', afterMs: 1 }), 3, MAX);
    assert.equal(action.kind === 'retry' && action.delayLevel, 3);
  });

  it('retry delays grow exponentially and are capped', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map((l) => retryDelayMs(l, 5000, 60000)), [5000, 10000, 20000, 40000, 60000, 60000, 60000]);
  });
});
