/** The chaos run's bookkeeping: it must catch a missing job and must not count a redelivery twice. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ledger } from '../../scripts/chaos/ledger.js';
import { Prng } from '../../scripts/chaos/prng.js';

const converted = (id: string, finished = 't1', attempts = 1) => ({
  job_id: id,
  status: 'converted',
  attempts,
  finished_at: finished,
  wav_bytes: 16044,
});

describe('chaos ledger', () => {
  it('a job with no result and no dead letter is missing', () => {
    const ledger = new Ledger();
    for (const id of ['a', 'b', 'c']) ledger.publish(id);
    ledger.result(converted('a'));
    ledger.deadLetter({ jobId: 'b', code: 'TIMEOUT', reason: 'gave up after 8 attempts', failedAt: 't' });
    const t = ledger.tally();
    assert.equal(t.missing, 1);
    assert.deepEqual(t.missingIds, ['c']);
    assert.equal(t.goodJobsGaveUp, 1);
  });

  it('the same publication seen twice (observer redelivery) is one; a second conversion is a duplicate', () => {
    const ledger = new Ledger();
    ledger.publish('a');
    ledger.result(converted('a'));
    ledger.result(converted('a'));
    assert.equal(ledger.tally().duplicateConversions, 0);
    ledger.result(converted('a', 't2'));
    assert.equal(ledger.tally().duplicateConversions, 1);
    assert.equal(ledger.tally().jobsConvertedMoreThanOnce, 1);
  });

  it('a job built to fail that converts, or a good job refused, is a wrong outcome', () => {
    const ledger = new Ledger();
    ledger.publish('gone', 'INPUT_MISSING');
    ledger.publish('good');
    ledger.result(converted('gone'));
    ledger.deadLetter({ jobId: 'good', code: 'PATH_NOT_ALLOWED', reason: 'outside the roots', failedAt: 't' });
    assert.equal(ledger.tally().wrongOutcomes, 2);
  });

  it('onAllEnded resolves when the last job ends; bad results are counted', async () => {
    const ledger = new Ledger();
    ledger.publish('a');
    ledger.publish('b');
    const ended = ledger.onAllEnded();
    ledger.result({ job_id: 'a', status: 'converted', attempts: 1, finished_at: 'x', wav_bytes: 0 });
    ledger.result(converted('zzz'));
    ledger.deadLetter({ jobId: 'b', code: 'INPUT_MISSING', reason: '', failedAt: 't' });
    await ended;
    const t = ledger.tally();
    assert.equal(t.badResults, 1, 'wav_bytes 0');
    assert.equal(t.unknownResults, 1);
    assert.equal(t.deadLettersWithoutReason, 1);
  });

  it('the PRNG repeats for a seed', () => {
    const a = new Prng(42);
    const b = new Prng(42);
    const xs = Array.from({ length: 5 }, () => a.next());
    assert.deepEqual(
      xs,
      Array.from({ length: 5 }, () => b.next()),
    );
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    assert.deepEqual(new Prng(1).shuffle([1, 2, 3, 4]).sort(), [1, 2, 3, 4]);
  });
});
