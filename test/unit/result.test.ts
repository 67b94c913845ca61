// Result messages and dead-letter envelopes: exact shapes, and nothing unsafe in AMQP headers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  MAX_DEAD_LETTER_BODY_BYTES,
  MAX_REASON_HEADER_CHARS,
  convertedResult,
  deadLetterEnvelope,
  failedResult,
  type DeadLetterArgs,
} from '../../src/queue/message.js';

const GSM = '/var/local/auditorai/gsm/call-123.gsm';
const WAV = '/var/local/auditorai/wav/call-123.wav';
const STARTED = new Date('2026-11-26T10:00:00.000Z');
const FINISHED = new Date('2026-11-26T10:00:00.412Z');

describe('convertedResult', () => {
  it('has the documented fields, in order', () => {
    const result = convertedResult({
      jobId: 'call-123',
      gsmPath: GSM,
      wavPath: WAV,
      wavBytes: 96044,
      attempts: 1,
      startedAt: STARTED,
      finishedAt: FINISHED,
    });
    assert.deepEqual(result, {
      job_id: 'call-123',
      status: 'converted',
      gsm_path: GSM,
      wav_path: WAV,
      wav_bytes: 96044,
      attempts: 1,
      started_at: '2026-11-26T10:00:00.000Z',
      finished_at: '2026-11-26T10:00:00.412Z',
      duration_ms: 412,
    });
    assert.deepEqual(Object.keys(result), [
      'job_id',
      'status',
      'gsm_path',
      'wav_path',
      'wav_bytes',
      'attempts',
      'started_at',
      'finished_at',
      'duration_ms',
    ]);
  });

  it('never reports a negative duration (clock stepped back)', () => {
    const result = convertedResult({
      jobId: 'j',
      gsmPath: GSM,
      wavPath: WAV,
      wavBytes: 1,
      attempts: 2,
      startedAt: FINISHED,
      finishedAt: STARTED,
    });
    assert.equal(result.duration_ms, 0);
  });
});

describe('failedResult', () => {
  it('carries status failed and the error', () => {
    const result = failedResult({
      jobId: 'call-123',
      gsmPath: GSM,
      wavPath: WAV,
      attempts: 5,
      startedAt: STARTED,
      finishedAt: FINISHED,
      code: 'TIMEOUT',
      message: 'no result after 120 s',
    });
    assert.deepEqual(result, {
      job_id: 'call-123',
      status: 'failed',
      gsm_path: GSM,
      wav_path: WAV,
      attempts: 5,
      started_at: '2026-11-26T10:00:00.000Z',
      finished_at: '2026-11-26T10:00:00.412Z',
      duration_ms: 412,
      error: { code: 'TIMEOUT', message: 'no result after 120 s' },
    });
  });

  it('leaves out paths it was not given (an invalid message)', () => {
    const result = failedResult({
      jobId: 'mid-1',
      attempts: 0,
      startedAt: STARTED,
      finishedAt: STARTED,
      code: 'INVALID_MESSAGE',
      message: 'body is not valid UTF-8',
    });
    assert.deepEqual(Object.keys(result), ['job_id', 'status', 'attempts', 'started_at', 'finished_at', 'duration_ms', 'error']);
    assert.equal('gsm_path' in result, false);
  });

  it('never echoes a path that breaks the character rule', () => {
    const result = failedResult({
      jobId: 'j',
      gsmPath: `${GSM}\r\nAction: Command`,
      wavPath: '/x/a;b.wav',
      attempts: 0,
      startedAt: STARTED,
      finishedAt: STARTED,
      code: 'PATH_NOT_ALLOWED',
      message: 'm',
    });
    assert.equal('gsm_path' in result, false);
    assert.equal('wav_path' in result, false);
  });

  it('round-trips through JSON', () => {
    const result = failedResult({
      jobId: 'j',
      gsmPath: GSM,
      attempts: 1,
      startedAt: STARTED,
      finishedAt: FINISHED,
      code: 'INPUT_MISSING',
      message: 'input-missing',
    });
    assert.deepEqual(JSON.parse(JSON.stringify(result)), result);
  });
});

function args(over: Partial<DeadLetterArgs> = {}): DeadLetterArgs {
  return {
    jobId: 'call-123',
    code: 'INVALID_MESSAGE',
    reason: 'gsm_path contains U+000A (line feed) at offset 30',
    attempts: 1,
    originalBody: Buffer.from('{"gsm_path":"x"}'),
    failedAt: new Date('2026-11-26T10:00:01.000Z'),
    queue: 'Asterisk.Transcoding',
    ...over,
  };
}

describe('deadLetterEnvelope', () => {
  it('keeps a UTF-8 body as text and sets every header', () => {
    const { body, headers } = deadLetterEnvelope(args({ messageId: 'mid-1' }));
    assert.deepEqual(body, {
      job_id: 'call-123',
      error: { code: 'INVALID_MESSAGE', reason: 'gsm_path contains U+000A (line feed) at offset 30' },
      attempts: 1,
      failed_at: '2026-11-26T10:00:01.000Z',
      original_queue: 'Asterisk.Transcoding',
      message_id: 'mid-1',
      body_encoding: 'utf8',
      original_body: '{"gsm_path":"x"}',
      original_body_bytes: 16,
      original_body_truncated: false,
    });
    assert.deepEqual(headers, {
      'x-audioconvert-error-code': 'INVALID_MESSAGE',
      'x-audioconvert-reason': 'gsm_path contains U+000A (line feed) at offset 30',
      'x-audioconvert-job-id': 'call-123',
      'x-audioconvert-attempts': 1,
      'x-audioconvert-failed-at': '2026-11-26T10:00:01.000Z',
      'x-audioconvert-original-queue': 'Asterisk.Transcoding',
    });
  });

  it('keeps a body that is not UTF-8 as base64, losslessly', () => {
    const bytes = Buffer.from([0x7b, 0xff, 0xfe, 0x00, 0xc0, 0xaf, 0x7d]);
    const { body } = deadLetterEnvelope(args({ originalBody: bytes }));
    assert.equal(body.body_encoding, 'base64');
    assert.deepEqual(Buffer.from(body.original_body, 'base64'), bytes);
  });

  it('keeps control characters of a UTF-8 body in the JSON body (JSON escapes them)', () => {
    const text = '{"gsm_path":"/a\\r\\n"}\r\n\u0000';
    const { body } = deadLetterEnvelope(args({ originalBody: Buffer.from(text) }));
    assert.equal(body.original_body, text);
    assert.ok(![...JSON.stringify(body)].some((ch) => ch.charCodeAt(0) < 0x20), 'raw control character in the JSON');
  });

  it('makes headers printable ASCII, whatever the reason says', () => {
    const { headers } = deadLetterEnvelope(
      args({ reason: 'line1\r\nX-Injected: 1\u0000 caf\u00e9 \u2215', jobId: 'bad\nid', queue: 'q\u00e9' }),
    );
    assert.equal(headers['x-audioconvert-reason'], 'line1<U+000D><U+000A>X-Injected: 1<U+0000> caf<U+00E9> <U+2215>');
    assert.equal(headers['x-audioconvert-job-id'], 'bad<U+000A>id');
    assert.equal(headers['x-audioconvert-original-queue'], 'q<U+00E9>');
    for (const value of Object.values(headers)) {
      if (typeof value === 'string') assert.match(value, /^[\x20-\x7e]*$/);
      else assert.equal(typeof value, 'number');
    }
  });

  it(`cuts the reason header at ${MAX_REASON_HEADER_CHARS} characters, but keeps it whole in the body`, () => {
    const reason = 'r'.repeat(5000);
    const { body, headers } = deadLetterEnvelope(args({ reason }));
    const header = String(headers['x-audioconvert-reason']);
    assert.equal(header.length, MAX_REASON_HEADER_CHARS);
    assert.ok(header.endsWith('...'));
    assert.equal(body.error.reason, reason);
  });

  it('leaves out message_id and original_headers when absent', () => {
    const { body } = deadLetterEnvelope(args());
    assert.equal('message_id' in body, false);
    assert.equal('original_headers' in body, false);
  });

  it('turns AMQP header values JSON cannot hold into JSON', () => {
    const originalHeaders = {
      'x-death': [{ count: 2n, time: new Date('2026-11-26T09:00:00.000Z'), queue: 'q' }],
      raw: Buffer.from('hi'),
      inf: Number.POSITIVE_INFINITY,
      fn: () => 1,
      nested: { a: { b: { c: { d: { e: { f: { g: { h: { i: 'deep' } } } } } } } } },
    };
    const { body } = deadLetterEnvelope(args({ originalHeaders }));
    const text = JSON.stringify(body);
    assert.deepEqual((JSON.parse(text) as { original_headers: unknown }).original_headers, {
      'x-death': [{ count: '2', time: '2026-11-26T09:00:00.000Z', queue: 'q' }],
      raw: 'aGk=',
      inf: 'Infinity',
      nested: { a: { b: { c: { d: { e: { f: { g: { h: '[nested too deep]' } } } } } } } },
    });
  });

  it('truncates a huge body on a character boundary and says so', () => {
    // 3-byte characters: the limit falls inside one.
    const big = Buffer.from('\u20ac'.repeat(Math.ceil(MAX_DEAD_LETTER_BODY_BYTES / 3) + 10));
    const { body } = deadLetterEnvelope(args({ originalBody: big }));
    assert.equal(body.body_encoding, 'utf8');
    assert.equal(body.original_body_truncated, true);
    assert.equal(body.original_body_bytes, big.byteLength);
    assert.ok(!body.original_body.includes('\ufffd'));
    assert.ok(Buffer.byteLength(body.original_body) <= MAX_DEAD_LETTER_BODY_BYTES);
    assert.ok(Buffer.byteLength(body.original_body) > MAX_DEAD_LETTER_BODY_BYTES - 3);
  });

  it('truncates a huge binary body before base64', () => {
    const big = Buffer.alloc(MAX_DEAD_LETTER_BODY_BYTES + 100, 0xff);
    const { body } = deadLetterEnvelope(args({ originalBody: big }));
    assert.equal(body.body_encoding, 'base64');
    assert.equal(body.original_body_truncated, true);
    assert.equal(Buffer.from(body.original_body, 'base64').byteLength, MAX_DEAD_LETTER_BODY_BYTES);
  });
});
