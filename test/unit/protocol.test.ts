/**
 * The AMI wire format against the bytes a real Asterisk 22.10.1 sent (test/fixtures/ami-transcripts)
 * and against literal CRLF strings. Pure: no sockets.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AmiProtocolError, AmiSerializeError } from '../../src/ami/errors.js';
import {
  AmiParser,
  getHeader,
  getHeaders,
  type AmiFrame,
  type AmiMessage,
  type AmiPair,
  type ParserOptions,
} from '../../src/ami/protocol.js';
import { serialize } from '../../src/ami/protocol.js';
import {
  blockBytes,
  clientActions,
  listTranscripts,
  readTranscript,
  serverBlocks,
  serverMessages,
  serverStream,
} from '../helpers/transcripts.js';

const b = (text: string): Buffer => Buffer.from(text, 'utf8');

function parseAll(chunks: readonly Buffer[], options?: ParserOptions): AmiFrame[] {
  const parser = new AmiParser(options);
  return chunks.flatMap((chunk) => parser.push(chunk));
}

function messagesOf(frames: readonly AmiFrame[]): AmiMessage[] {
  return frames.flatMap((f) => (f.kind === 'message' ? [f.message] : []));
}

function bytewise(buffer: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < buffer.length; i++) out.push(buffer.subarray(i, i + 1));
  return out;
}

function findMessage(name: string, actionId: string): AmiMessage {
  const found = serverMessages(name).find((m) => getHeader(m, 'ActionID') === actionId);
  assert.ok(found, `${name}: no message with ActionID ${actionId}`);
  return found;
}

const recordings = listTranscripts();

void describe('parser on every recording', () => {
  void test('the recordings are there', () => {
    assert.ok(recordings.length >= 30, `only ${recordings.length} recordings found`);
  });

  for (const name of recordings) {
    void test(name, () => {
      readTranscript(name).connections.forEach((_conn, i) => {
        const blocks = serverBlocks(name, i);
        const stream = serverStream(name, i);
        const oneShot = parseAll([stream]);
        if (blocks.length === 0) {
          assert.equal(oneShot.length, 0);
          return;
        }
        // One banner, then one message per S->C block.
        assert.deepEqual(oneShot[0], { kind: 'banner', text: 'Asterisk Call Manager/11.0.0' });
        assert.equal(messagesOf(oneShot).length, blocks.length - 1, `${name}#${i}: messages vs S->C blocks`);
        assert.ok(messagesOf(oneShot).every((m) => m.overlong === undefined && m.pairs.length > 0));
        assert.deepEqual(parseAll(bytewise(stream)), oneShot, `${name}#${i}: byte by byte`);
        splitEveryByteOfEachMessage(name, i, oneShot);
      });
    });
  }
});

/**
 * Two chunks, split at every byte boundary. Splitting the whole stream at every byte is O(n²) in
 * parse work (minutes over all recordings), so each message is split at every byte of itself,
 * read by a parser that has read only the banner. That is the state a parser is in after the
 * previous message whatever came before (checked below once per message: nothing is buffered at
 * a message end). The small recordings are also split whole at every byte (next describe).
 */
function splitEveryByteOfEachMessage(name: string, connIndex: number, expected: readonly AmiFrame[]): void {
  const pieces = serverBlocks(name, connIndex).map((block, j) => blockBytes(block, j === 0));
  const banner = pieces[0]!;
  const prefix = new AmiParser();
  pieces.forEach((piece, j) => {
    assert.deepEqual(prefix.push(piece), [expected[j]], `${name}#${connIndex} block ${j} in sequence`);
    assert.equal(prefix.bufferedBytes, 0, 'nothing is carried across a message end');
    for (let k = 1; k < piece.length; k++) {
      const parser = new AmiParser();
      if (j > 0) parser.push(banner);
      const frames = [...parser.push(piece.subarray(0, k)), ...parser.push(piece.subarray(k))];
      assert.deepEqual(frames, [expected[j]], `${name}#${connIndex} block ${j} split at ${k}`);
    }
  });
}

void describe('parser: whole stream split at every byte boundary', () => {
  for (const name of ['login-ok', 'login-bad-password', 'hdr-line-too-long']) {
    void test(name, () => {
      readTranscript(name).connections.forEach((_conn, i) => {
        const stream = serverStream(name, i);
        const oneShot = parseAll([stream]);
        assert.ok(oneShot.length > 1);
        for (let k = 0; k <= stream.length; k++) {
          assert.deepEqual(parseAll([stream.subarray(0, k), stream.subarray(k)]), oneShot, `split at ${k}`);
        }
      });
    });
  }
});

void describe('parser: message shape', () => {
  void test('repeated keys are kept, in order (Output from a recording, Variable literal)', () => {
    const usage = findMessage('ami-command-file-convert', 'cmd-usage');
    const output = getHeaders(usage, 'Output');
    assert.equal(output.length, 7);
    assert.equal(output[0], 'Usage: file convert <file_in> <file_out>');
    assert.equal(output[4], '', '"Output: " is an empty value, still kept');
    const [message] = messagesOf(parseAll([b('Banner\r\nEvent: VarSet\r\nVariable: A=1\r\nVariable: B=2\r\nvariable: C=3\r\n\r\n')]));
    assert.deepEqual(getHeaders(message!, 'Variable'), ['A=1', 'B=2', 'C=3']);
  });

  void test('a value containing ": " is kept whole; only the first colon separates', () => {
    const usage = findMessage('ami-command-file-convert', 'cmd-usage');
    assert.equal(getHeader(usage, 'Message'), 'Command output follows');
    const [message] = messagesOf(parseAll([b('B\r\nEvent: UserEvent\r\nAppData: JobId: x,Status: OK\r\nKey:no-space\r\n\r\n')]));
    assert.deepEqual(message!.pairs, [
      ['Event', 'UserEvent'],
      ['AppData', 'JobId: x,Status: OK'],
      ['Key', 'no-space'],
    ]);
  });

  void test('bare LF is a line end (recorded: fail-unknown-extension)', () => {
    const message = findMessage('fail-unknown-extension', 'long-id');
    assert.equal(getHeader(message, 'Message'), 'Uniqueid length exceeds maximum of 149');
    const frames = parseAll([b('Asterisk Call Manager/11.0.0\nResponse: Success\nActionID: 1\n\n')]);
    assert.deepEqual(frames, [
      { kind: 'banner', text: 'Asterisk Call Manager/11.0.0' },
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

  void test('CRLF lines; blank lines between messages carry nothing; blanks after the colon skipped', () => {
    const frames = parseAll([b('B\r\n\r\nResponse: Success\r\nActionID:  \t a\r\nAccountCode: \r\n\r\n\r\n\r\nEvent: X\r\n\r\n')]);
    assert.deepEqual(messagesOf(frames), [
      {
        pairs: [
          ['Response', 'Success'],
          ['ActionID', 'a'],
          ['AccountCode', ''],
        ],
      },
      { pairs: [['Event', 'X']] },
    ]);
  });

  void test('a bare CR inside a value stays in the value (recorded: hdr-crlf-injection)', () => {
    const appData = serverMessages('hdr-crlf-injection')
      .map((m) => getHeader(m, 'AppData'))
      .find((v) => v?.includes('\r'));
    assert.ok(appData?.includes('x.wav\rAction: Command\rCommand: core show version'));
  });

  void test('no banner expected: the first line is a header', () => {
    const frames = parseAll([b('Action: Ping\r\n\r\n')], { expectBanner: false });
    assert.deepEqual(frames, [{ kind: 'message', message: { pairs: [['Action', 'Ping']] } }]);
  });
});

void describe('parser: limits', () => {
  const limit = { maxLineBytes: 16 } as const;
  const line16 = 'K: 0123456789abc'; // 16 bytes

  void test('a line of exactly maxLineBytes is kept, with CRLF or LF, split or not', () => {
    for (const end of ['\r\n', '\n']) {
      const text = `B${end}${line16}${end}${end}`;
      const expected = [
        { kind: 'banner', text: 'B' },
        { kind: 'message', message: { pairs: [['K', '0123456789abc']] } },
      ];
      assert.deepEqual(parseAll([b(text)], limit), expected);
      assert.deepEqual(parseAll(bytewise(b(text)), limit), expected);
    }
  });

  void test("'throw' mode: one byte more is an AmiProtocolError, whole or split", () => {
    const text = b(`B\r\n${line16}x\r\n\r\n`);
    assert.throws(() => parseAll([text], limit), AmiProtocolError);
    assert.throws(() => parseAll(bytewise(text), limit), AmiProtocolError);
    assert.throws(() => parseAll([text.subarray(0, 10), text.subarray(10)], limit), AmiProtocolError);
  });

  void test("'mark' mode: the line is dropped, its message flagged, the next message clean", () => {
    const text = b(`B\r\nResponse: Error\r\n${line16}xyz\r\nActionID: 7\r\n\r\nEvent: Next\r\n\r\n`);
    const expected = [
      {
        pairs: [
          ['Response', 'Error'],
          ['ActionID', '7'],
        ],
        overlong: true,
      },
      { pairs: [['Event', 'Next']] },
    ];
    const options = { ...limit, overlong: 'mark' } as const;
    assert.deepEqual(messagesOf(parseAll([text], options)), expected);
    assert.deepEqual(messagesOf(parseAll(bytewise(text), options)), expected);
    for (let k = 0; k <= text.length; k++) {
      assert.deepEqual(messagesOf(parseAll([text.subarray(0, k), text.subarray(k)], options)), expected, `split at ${k}`);
    }
  });

  void test('a 10 MB line with no LF never grows the buffer beyond the limit', () => {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    const max = 1024;
    const mark = new AmiParser({ maxLineBytes: max, overlong: 'mark' });
    mark.push(b('Asterisk Call Manager/11.0.0\r\nEvent: Big\r\n'));
    for (let sent = 0; sent < 10 * 1024 * 1024; sent += chunk.length) {
      assert.deepEqual(mark.push(chunk), []);
      assert.ok(mark.bufferedBytes <= max + 1, `buffered ${mark.bufferedBytes}`);
    }
    assert.deepEqual(messagesOf(mark.push(b('\r\nAfter: yes\r\n\r\n'))), [
      {
        pairs: [
          ['Event', 'Big'],
          ['After', 'yes'],
        ],
        overlong: true,
      },
    ]);
    assert.equal(mark.bufferedBytes, 0);

    const whole = new AmiParser({ maxLineBytes: max, overlong: 'mark' });
    whole.push(Buffer.alloc(10 * 1024 * 1024, 0x61));
    assert.equal(whole.bufferedBytes, 0, 'one 10 MB chunk: nothing kept');

    const strict = new AmiParser({ maxLineBytes: max });
    strict.push(b('B\r\n'));
    assert.throws(() => {
      for (let sent = 0; sent < 10 * 1024 * 1024; sent += chunk.length) {
        strict.push(chunk);
        assert.ok(strict.bufferedBytes <= max + 1);
      }
    }, AmiProtocolError);
  });

  void test('maxPairs: one line more than allowed is a protocol error', () => {
    const lines = (n: number): string => 'B\r\n' + Array.from({ length: n }, (_v, i) => `K${i}: v\r\n`).join('') + '\r\n';
    assert.equal(messagesOf(parseAll([b(lines(3))], { maxPairs: 3 }))[0]?.pairs.length, 3);
    assert.throws(() => parseAll([b(lines(4))], { maxPairs: 3 }), AmiProtocolError);
  });
});

void describe('serialize', () => {
  void test('byte-exact output: CRLF lines, empty line at the end, order kept', () => {
    const pairs: AmiPair[] = [
      ['Action', 'Originate'],
      ['Variable', 'JOB_ID=x'],
      ['Variable', 'GSM_PATH=/var/local/auditorai/gsm/a.gsm'],
      ['AccountCode', ''],
    ];
    assert.equal(
      serialize(pairs),
      'Action: Originate\r\nVariable: JOB_ID=x\r\nVariable: GSM_PATH=/var/local/auditorai/gsm/a.gsm\r\nAccountCode: \r\n\r\n',
    );
  });

  void test('the recorded client actions serialize back to their recorded bytes', () => {
    let checked = 0;
    for (const name of recordings) {
      for (const action of clientActions(name)) {
        if (action.messages.length !== 1 || action.bytes.includes(0x0a, 0) === false) continue;
        const pairs = action.messages[0]!.pairs;
        // Injection cases (a CR/LF inside a value) and overlong lines are refused; see the next tests.
        if (action.bytes.toString().includes('\r\n\r\n\r\n') || pairs.some(([, v]) => v.includes('\r'))) continue;
        if (pairs.some(([k, v]) => Buffer.byteLength(`${k}: ${v}\r\n`) > 1024)) {
          assert.throws(() => serialize(pairs), AmiSerializeError);
          continue;
        }
        assert.equal(serialize(pairs), action.bytes.toString('utf8'), `${name} at +${action.ms} ms`);
        checked++;
      }
    }
    assert.ok(checked > 50, `only ${checked} actions checked`);
  });

  void test('refuses CR, LF and NUL in a value (header injection)', () => {
    for (const bad of ['a\rb', 'a\nb', 'a\r\nAction: Command', 'a\0b', '\n']) {
      assert.throws(() => serialize([['Variable', bad]]), AmiSerializeError, JSON.stringify(bad));
    }
  });

  void test('refuses header names outside [A-Za-z0-9_-]', () => {
    for (const bad of ['', 'Bad Name', 'Key:', 'Ke\ny', 'Ünï', 'a.b']) {
      assert.throws(() => serialize([[bad, 'v']]), AmiSerializeError, JSON.stringify(bad));
    }
    assert.equal(serialize([['X-Custom_1', 'v']]), 'X-Custom_1: v\r\n\r\n');
  });

  void test('a line of exactly 1024 bytes (CRLF included) is accepted, 1025 refused, bytes not chars', () => {
    const value = (n: number): string => 'a'.repeat(n - 'Variable: '.length - 2);
    assert.equal(Buffer.byteLength(serialize([['Variable', value(1024)]])), 1024 + 2);
    assert.throws(() => serialize([['Variable', value(1025)]]), AmiSerializeError);
    // 'é' is 2 bytes: 1024 chars but 1025 bytes.
    const multibyte = 'é' + value(1023);
    assert.equal(`Variable: ${multibyte}\r\n`.length, 1024);
    assert.equal(Buffer.byteLength(`Variable: ${multibyte}\r\n`), 1025);
    assert.throws(() => serialize([['Variable', multibyte]]), AmiSerializeError);
    assert.doesNotThrow(() => serialize([['Variable', value(1100)]], { maxLineBytes: 2048 }));
  });
});
