/**
 * The parser's `keepEvents` filter (the bridge's hot path reads 3 of the 14 events a job makes):
 * a left-out event yields nothing, everything else comes out exactly as without the filter, at
 * any chunking, and the limits still hold inside a left-out event. Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AmiProtocolError } from '../../src/ami/errors.js';
import { AmiParser, getHeader, type AmiFrame, type ParserOptions } from '../../src/ami/protocol.js';
import { listTranscripts, readTranscript, serverStream } from '../helpers/transcripts.js';

const KEEP = new Set(['OriginateResponse', 'UserEvent', 'Hangup', 'FullyBooted', 'Shutdown']);

function parse(chunks: readonly Buffer[], options: ParserOptions): AmiFrame[] {
  const parser = new AmiParser(options);
  return chunks.flatMap((chunk) => parser.push(chunk));
}

function chunked(buffer: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buffer.length; i += size) out.push(buffer.subarray(i, i + size));
  return out;
}

/** What the filter must give: the unfiltered frames minus the left-out events. */
function expected(frames: readonly AmiFrame[]): AmiFrame[] {
  return frames.filter((f) => {
    if (f.kind !== 'message') return true;
    const first = f.message.pairs[0];
    return first === undefined || first[0] !== 'Event' || KEEP.has(first[1]);
  });
}

const JOB = Buffer.from(
  'Asterisk Call Manager/11.0.0\r\n' +
    'Response: Success\r\nActionID: a1\r\nMessage: Originate successfully queued\r\n\r\n' +
    'Event: Newchannel\r\nPrivilege: call,all\r\nChannel: Local/s@hold-1;1\r\nUniqueid: u1\r\n\r\n' +
    'Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: a1\r\nResponse: Success\r\nUniqueid: u1\r\n\r\n' +
    'Event: Newstate\r\nPrivilege: call,all\r\nUniqueid: u1\r\n\r\n' +
    'Event: UserEvent\r\nPrivilege: user,all\r\nUniqueid: u1\r\nUserEvent: AudioConvert\r\nStatus: OK\r\n\r\n' +
    'Event:Hangup\r\nUniqueid: u1\r\nCause-txt: Normal Clearing\r\n\r\n' +
    'Event: DialEnd\r\nDialStatus: ANSWER\r\n\r\n',
);

void describe('AmiParser keepEvents', () => {
  void test('left-out events yield nothing; responses and kept events come out whole, at every chunk size', () => {
    const all = parse([JOB], {});
    const want = expected(all);
    assert.equal(want.filter((f) => f.kind === 'message').length, 4, 'response, OriginateResponse, UserEvent, Hangup');
    for (let size = 1; size <= JOB.length; size++)
      assert.deepEqual(parse(chunked(JOB, size), { keepEvents: KEEP }), want, `chunk size ${size}`);
  });

  void test('every recording, filtered, equals the unfiltered parse minus the left-out events', () => {
    for (const name of listTranscripts()) {
      readTranscript(name).connections.forEach((_conn, i) => {
        const stream = serverStream(name, i);
        const all = parse([stream], {});
        assert.deepEqual(parse([stream], { keepEvents: KEEP }), expected(all), `${name} #${i}`);
        assert.deepEqual(parse(chunked(stream, 7), { keepEvents: KEEP }), expected(all), `${name} #${i}, 7-byte chunks`);
      });
    }
  });

  void test('an event whose Event line is not first is kept (the filter only looks at the first line)', () => {
    const frames = parse([Buffer.from('Privilege: call,all\r\nEvent: Newchannel\r\n\r\n')], { expectBanner: false, keepEvents: KEEP });
    assert.equal(frames.length, 1);
    assert.equal(frames[0]?.kind === 'message' ? getHeader(frames[0].message, 'Event') : '', 'Newchannel');
  });

  void test('the line and size limits hold inside a left-out event', () => {
    const many = `Event: Newchannel\r\n${'X: y\r\n'.repeat(10)}\r\n`;
    assert.throws(() => parse([Buffer.from(many)], { expectBanner: false, keepEvents: KEEP, maxPairs: 5 }), AmiProtocolError);
    const big = `Event: Newchannel\r\nX: ${'y'.repeat(200)}\r\n\r\n`;
    assert.throws(() => parse([Buffer.from(big)], { expectBanner: false, keepEvents: KEEP, maxMessageBytes: 100 }), AmiProtocolError);
    const long = `Event: Newchannel\r\nX: ${'y'.repeat(200)}\r\n\r\n`;
    assert.throws(() => parse([Buffer.from(long)], { expectBanner: false, keepEvents: KEEP, maxLineBytes: 100 }), AmiProtocolError);
  });

  void test("an overlong line in a left-out event ('mark' mode) does not mark the next message", () => {
    const text = `Event: Newchannel\r\nX: ${'y'.repeat(200)}\r\n\r\nResponse: Success\r\nActionID: 1\r\n\r\n`;
    const frames = parse([Buffer.from(text)], { expectBanner: false, keepEvents: KEEP, maxLineBytes: 100, overlong: 'mark' });
    assert.deepEqual(frames, [
      {
        kind: 'message',
        message: {
          pairs: [
            ['Response', 'Success'],
            ['ActionID', '1'],
          ],
        },
      },
    ]);
  });

  void test('non-ASCII bytes take the byte path and give the same frames', () => {
    const text = Buffer.from('Event: UserEvent\r\nDetail: caf\u00e9\r\n\r\nEvent: Newstate\r\nX: \u00fc\r\n\r\n');
    const frames = parse(chunked(text, 3), { expectBanner: false, keepEvents: KEEP });
    assert.deepEqual(frames, [
      {
        kind: 'message',
        message: {
          pairs: [
            ['Event', 'UserEvent'],
            ['Detail', 'caf\u00e9'],
          ],
        },
      },
    ]);
  });
});
