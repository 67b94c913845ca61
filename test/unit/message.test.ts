// parseJob on valid input, and what an invalid message's `failed` result may carry.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ASTERISK_MAX_LINE_BYTES } from '../../src/ami/protocol.js';
import { InvalidMessageError } from '../../src/errors.js';
import {
  MAX_BODY_BYTES,
  MAX_JSON_DEPTH,
  MAX_PATH_BYTES,
  idForInvalid,
  invalidMessageFields,
  parseJob,
  type PathRules,
} from '../../src/queue/message.js';
import { asciiSafe, describeCodePoint } from '../../src/util/text.js';

const RULES: PathRules = { allowedRoots: ['/var/local/auditorai'], inputExtension: '.gsm', outputExtension: '.wav' };
const GSM = '/var/local/auditorai/gsm/call-123.gsm';
const WAV = '/var/local/auditorai/wav/call-123.wav';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function json(fields: Record<string, unknown>): string {
  return JSON.stringify({ gsm_path: GSM, wav_path: WAV, ...fields });
}

describe('parseJob: valid messages', () => {
  it('reads a Buffer body (the raw AMQP bytes)', () => {
    const job = parseJob(Buffer.from(json({ job_id: 'call-123' })), undefined, RULES);
    assert.deepEqual(job, { jobId: 'call-123', gsmPath: GSM, wavPath: WAV });
  });

  it('reads a string body (rabbitmq-client decodes text/plain)', () => {
    assert.deepEqual(parseJob(json({ job_id: 'call-123' }), undefined, RULES), { jobId: 'call-123', gsmPath: GSM, wavPath: WAV });
  });

  it('reads an already parsed object (rabbitmq-client decodes application/json)', () => {
    const job = parseJob({ gsm_path: GSM, wav_path: WAV, job_id: 'call-123' }, 'mid-1', RULES);
    assert.deepEqual(job, { jobId: 'call-123', gsmPath: GSM, wavPath: WAV });
  });

  it('reads a plain Uint8Array and an object without prototype', () => {
    assert.equal(parseJob(new TextEncoder().encode(json({ job_id: 'u8' })), undefined, RULES).jobId, 'u8');
    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { gsm_path: GSM, wav_path: WAV, job_id: 'bare' });
    assert.equal(parseJob(bare, undefined, RULES).jobId, 'bare');
  });

  it('prefers job_id over the AMQP message_id', () => {
    assert.equal(parseJob(json({ job_id: 'from-body' }), 'from-amqp', RULES).jobId, 'from-body');
  });

  it('falls back to a valid message_id when job_id is absent', () => {
    assert.equal(parseJob(json({}), 'amqp-id:42', RULES).jobId, 'amqp-id:42');
  });

  it('generates a fresh UUID when neither is usable', () => {
    const a = parseJob(json({}), undefined, RULES).jobId;
    const b = parseJob(json({}), 'not valid: has spaces', RULES).jobId;
    const c = parseJob(json({}), '', RULES).jobId;
    for (const id of [a, b, c]) assert.match(id, UUID);
    assert.notEqual(a, b);
  });

  it('accepts job ids at the edge of the rule', () => {
    const longest = 'A'.repeat(128);
    assert.equal(parseJob(json({ job_id: longest }), undefined, RULES).jobId, longest);
    assert.equal(parseJob(json({ job_id: 'a.b_c:d-E9' }), undefined, RULES).jobId, 'a.b_c:d-E9');
    assert.equal(parseJob(json({ job_id: 'x' }), undefined, RULES).jobId, 'x');
  });

  it('ignores unknown extra fields, of any type and with any characters', () => {
    const body = json({ job_id: 'j', priority: 5, tags: ['a', 'b'], meta: { note: 'ñ\r\n;$(id)', n: null }, extra: true });
    assert.deepEqual(parseJob(body, undefined, RULES), { jobId: 'j', gsmPath: GSM, wavPath: WAV });
  });

  it('allows whitespace around the JSON', () => {
    assert.equal(parseJob(`\r\n  ${json({ job_id: 'ws' })}\n\t`, undefined, RULES).jobId, 'ws');
  });

  it('accepts nesting up to the limit, and brackets inside strings do not count', () => {
    const nested = `${'{"a":'.repeat(MAX_JSON_DEPTH - 1)}1${'}'.repeat(MAX_JSON_DEPTH - 1)}`;
    const body = `{"gsm_path":"${GSM}","wav_path":"${WAV}","deep":${nested},"s":"${'[{'.repeat(500)}"}`;
    assert.equal(parseJob(body, 'deep-ok', RULES).jobId, 'deep-ok');
  });

  it('accepts a body of exactly 64 KiB, as bytes, as a string and as an object', () => {
    const base = json({ pad: '' });
    const pad = 'x'.repeat(MAX_BODY_BYTES - Buffer.byteLength(base));
    const text = json({ pad });
    assert.equal(Buffer.byteLength(text), MAX_BODY_BYTES);
    assert.equal(parseJob(Buffer.from(text), 'edge', RULES).jobId, 'edge');
    assert.equal(parseJob(text, 'edge', RULES).jobId, 'edge');
    assert.equal(parseJob(JSON.parse(text), 'edge', RULES).jobId, 'edge');
  });

  it('accepts any of several roots, written with or without a trailing slash', () => {
    const rules: PathRules = { ...RULES, allowedRoots: ['/srv/a/', '/var/local/auditorai'] };
    const job = parseJob(JSON.stringify({ gsm_path: '/srv/a/x.gsm', wav_path: WAV }), undefined, rules);
    assert.equal(job.gsmPath, '/srv/a/x.gsm');
  });

  it('accepts dots, dashes and underscores inside names', () => {
    const gsm = '/var/local/auditorai/gsm/2026-11-26/call_123.part-1.gsm';
    assert.equal(parseJob(json({ gsm_path: gsm }), undefined, RULES).gsmPath, gsm);
  });

  it('uses the configured extensions', () => {
    const rules: PathRules = { ...RULES, inputExtension: '.GSM', outputExtension: '.wav16' };
    const job = parseJob(json({ gsm_path: '/var/local/auditorai/A.GSM', wav_path: '/var/local/auditorai/a.wav16' }), undefined, rules);
    assert.equal(job.gsmPath, '/var/local/auditorai/A.GSM');
  });

  it(`accepts a ${MAX_PATH_BYTES}-byte path, whose AMI Variable line stays under Asterisk's 1024`, () => {
    const dir = '/var/local/auditorai/';
    const segment = 'a'.repeat(200);
    const gsm = `${dir}${segment}/${segment}/${'b'.repeat(MAX_PATH_BYTES - dir.length - 2 * 201 - 4)}.gsm`;
    assert.equal(gsm.length, MAX_PATH_BYTES);
    assert.equal(parseJob(json({ gsm_path: gsm }), undefined, RULES).gsmPath, gsm);
    const line = `Variable: GSM_PATH=${gsm}\r\n`;
    assert.ok(Buffer.byteLength(line) < ASTERISK_MAX_LINE_BYTES - 400, `${Buffer.byteLength(line)} bytes`);
  });
});

describe('invalidMessageFields / idForInvalid', () => {
  it('keeps a valid job_id even when the rest is invalid', () => {
    assert.equal(idForInvalid(JSON.stringify({ job_id: 'call-9', gsm_path: 5 }), 'mid'), 'call-9');
  });

  it('falls back to the message_id when job_id breaks the rule or the body is unreadable', () => {
    assert.equal(idForInvalid(JSON.stringify({ job_id: 'bad id' }), 'mid-1'), 'mid-1');
    assert.equal(idForInvalid(JSON.stringify({ job_id: 42 }), 'mid-2'), 'mid-2');
    assert.equal(idForInvalid(Buffer.from([0xff, 0xfe]), 'mid-3'), 'mid-3');
    assert.equal(idForInvalid('{not json', 'mid-4'), 'mid-4');
    assert.equal(idForInvalid(Buffer.alloc(MAX_BODY_BYTES + 1, 0x20), 'mid-5'), 'mid-5');
  });

  it('generates a UUID when neither id is valid', () => {
    assert.match(idForInvalid(JSON.stringify({ job_id: 'a\r\nb' }), 'also bad\n'), UUID);
    assert.match(idForInvalid(null, undefined), UUID);
  });

  it('carries paths only when they are safe to echo', () => {
    const safe = invalidMessageFields(
      JSON.stringify({ job_id: 'a b', gsm_path: '/outside/x.gsm', wav_path: '/x/y\r\nAction: Command' }),
      'm',
    );
    assert.deepEqual(safe, { jobId: 'm', gsmPath: '/outside/x.gsm' });
    const none = invalidMessageFields({ gsm_path: 12, wav_path: 'x'.repeat(MAX_PATH_BYTES + 1) }, undefined);
    assert.deepEqual(Object.keys(none), ['jobId']);
  });

  it('never throws, whatever the body', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    for (const body of [undefined, null, 1, 'x', [], cyclic, new Date(), Buffer.from('\ufeff{}'), Symbol('s')]) {
      assert.match(idForInvalid(body, undefined), UUID);
    }
  });
});

describe('helpers', () => {
  it('names characters by code point, without writing control characters', () => {
    assert.equal(describeCodePoint(0x0a), 'U+000A (line feed)');
    assert.equal(describeCodePoint(0x3b), "U+003B ';'");
    assert.equal(describeCodePoint(0x2215), 'U+2215 (division slash)');
    assert.equal(describeCodePoint(0x1f600), 'U+1F600');
  });

  it('asciiSafe escapes everything outside printable ASCII', () => {
    assert.equal(asciiSafe('a\r\nb\u0000c\u2215d😀'), 'a<U+000D><U+000A>b<U+0000>c<U+2215>d<U+1F600>');
  });

  it('InvalidMessageError is what the shape rules throw', () => {
    assert.throws(() => parseJob('[]', undefined, RULES), InvalidMessageError);
  });
});
