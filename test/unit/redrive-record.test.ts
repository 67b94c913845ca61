// The dead-letter record → the job redrive publishes again (pure).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { deadLetterEnvelope } from '../../src/queue/message.js';
import { matches, REDRIVEN_HEADER, toRedrive } from '../../src/tools/redrive-record.js';

const record = (originalBody: Buffer, originalHeaders: Record<string, unknown> = {}) =>
  deadLetterEnvelope({
    jobId: 'call-1',
    code: 'INPUT_MISSING',
    reason: 'r',
    attempts: 2,
    failedAt: new Date(0),
    queue: 'Q',
    messageId: 'm-1',
    originalHeaders,
    originalBody,
  });

describe('toRedrive', () => {
  it('gives the original body back, drops the attempts and x-death headers, counts the re-drive', () => {
    const body = Buffer.from('{"job_id":"call-1","gsm_path":"/a/b.gsm","wav_path":"/a/b.wav"}');
    const dl = record(body, {
      'x-audioconvert-attempts': 1,
      'x-death': [{ count: 1 }],
      'x-first-death-queue': 'Q.retry.5000',
      'x-keep': 'v',
      [REDRIVEN_HEADER]: 2,
    });
    const r = toRedrive(dl.body, dl.headers);
    assert.ok(r.ok);
    assert.deepEqual(r.body, body);
    assert.deepEqual(r.headers, { 'x-keep': 'v', [REDRIVEN_HEADER]: 3 });
    assert.equal(r.redriven, 3);
    assert.equal(r.messageId, 'm-1');
    assert.deepEqual(r.record, { jobId: 'call-1', code: 'INPUT_MISSING', attempts: 2, originalQueue: 'Q' });
  });

  it('a body that was not UTF-8 comes back byte for byte; the record as raw JSON bytes reads the same', () => {
    const dl = record(Buffer.from([0xff, 0xfe, 0x00, 0x41]));
    const r = toRedrive(Buffer.from(JSON.stringify(dl.body)), dl.headers);
    assert.ok(r.ok);
    assert.deepEqual(r.body, Buffer.from([0xff, 0xfe, 0x00, 0x41]));
    assert.equal(r.redriven, 1);
  });

  it('cannot: a truncated original, a body that is no record (the headers still name code and job)', () => {
    const cut = toRedrive({ ...record(Buffer.from('{}')).body, original_body_truncated: true }, {});
    assert.equal(cut.ok, false);
    assert.match(cut.ok ? '' : cut.problem, /cut at 1 MiB/);
    const junk = toRedrive(Buffer.from('junk'), { 'x-audioconvert-error-code': 'TIMEOUT', 'x-audioconvert-job-id': 'j' });
    assert.equal(junk.ok, false);
    assert.deepEqual([junk.record.code, junk.record.jobId], ['TIMEOUT', 'j']);
  });
});

describe('matches', () => {
  const r = { jobId: 'a', code: 'TIMEOUT', attempts: 1, originalQueue: undefined };
  it('codes OR, job ids OR, the two AND; empty lists match all', () => {
    assert.equal(matches(r, { codes: [], jobIds: [] }), true);
    assert.equal(matches(r, { codes: ['INPUT_MISSING', 'TIMEOUT'], jobIds: [] }), true);
    assert.equal(matches(r, { codes: ['TIMEOUT'], jobIds: ['b'] }), false);
    assert.equal(matches(r, { codes: ['INPUT_MISSING'], jobIds: ['a'] }), false);
    assert.equal(matches(r, { codes: [], jobIds: ['a'] }), true);
  });
});
