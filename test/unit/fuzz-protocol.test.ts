/**
 * Fuzzing the AMI parser and serializer with a seeded PRNG (test/helpers/fuzz.ts): random bytes,
 * random AMI-shaped text and mutated recordings of a real Asterisk, each fed whole, byte by byte
 * and in random chunks. Properties: only AmiProtocolError is ever thrown, the buffered line and
 * the pending message stay within their limits, the chunking never changes the outcome, and the
 * serializer either refuses or writes exactly the message it was given. Bounded to a few seconds;
 * `npm run fuzz` runs the same properties for longer. A failure prints the seed and input:
 * replay it with AUDIOCONVERT_FUZZ_SEED=<seed>.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AmiParser } from '../../src/ami/protocol.js';
import { AmiProtocolError } from '../../src/ami/errors.js';
import { checkParserInput, checkSerialize, fuzz, mutate, randomChunks, recordedStreams, Rng, type FuzzOptions } from '../helpers/fuzz.js';

const SEED = Number(process.env['AUDIOCONVERT_FUZZ_SEED'] ?? 20261126);
const CLIENT: FuzzOptions = {
  expectBanner: true,
  maxLineBytes: 64 * 1024,
  overlong: 'throw',
  maxPairs: 4096,
  maxMessageBytes: 1024 * 1024,
};

void describe('AMI protocol fuzzing (seeded)', () => {
  const streams = recordedStreams();

  void test('the recordings are there to mutate', () => {
    assert.ok(streams.length >= 30, `only ${streams.length} recorded streams`);
  });

  void test(
    `3,000 random inputs × 4 chunkings, seed ${SEED}: parser properties hold, serializer never injects`,
    { timeout: 30_000 },
    () => {
      const stats = fuzz(SEED, 3000, 6000, streams);
      // The budget is a ceiling for slow machines; far fewer iterations would mean the test proves little.
      assert.ok(stats.iterations >= 500, `only ${stats.iterations} iterations within the time budget`);
      assert.ok(stats.protocolErrors > 0 && stats.frames > 0, `the inputs exercised both paths: ${JSON.stringify(stats)}`);
      assert.ok(
        stats.serializeRefused > 0 && stats.serializeWritten > 0,
        `the serializer was exercised both ways: ${JSON.stringify(stats)}`,
      );
    },
  );

  void test('every recording, mutated 20 times, fed in random chunks with the client limits', () => {
    const rng = new Rng(SEED + 1);
    for (const stream of streams) {
      checkParserInput(rng, stream, CLIENT);
      for (let i = 0; i < 20; i++) checkParserInput(rng, mutate(rng, stream.subarray(0, 6000)), CLIENT);
    }
  });

  void test('an unmutated recording in random chunks parses exactly as in one piece', () => {
    const rng = new Rng(SEED + 2);
    for (const stream of streams) {
      const whole = new AmiParser(CLIENT).push(stream);
      assert.ok(whole.length > 1);
      for (let i = 0; i < 5; i++) {
        const parser = new AmiParser(CLIENT);
        assert.deepEqual(
          randomChunks(rng, stream).flatMap((chunk) => parser.push(chunk)),
          whole,
        );
        assert.equal(parser.bufferedBytes, 0);
        assert.equal(parser.pendingMessageBytes, 0);
      }
    }
  });

  void test('a message growing past maxMessageBytes is a protocol error long before maxPairs × maxLineBytes', () => {
    const parser = new AmiParser(CLIENT);
    parser.push(Buffer.from('Asterisk Call Manager/11.0.0\r\n'));
    const line = Buffer.from(`Output: ${'a'.repeat(60_000)}\r\n`);
    let lines = 0;
    assert.throws(
      () => {
        for (; lines < 4096; lines++) {
          parser.push(line);
          assert.ok(parser.pendingMessageBytes <= CLIENT.maxMessageBytes);
        }
      },
      (error: unknown) => error instanceof AmiProtocolError && /AMI message larger than 1048576 bytes/.test(error.message),
    );
    assert.ok(lines <= 18, `${lines} lines of 60 KB were kept`);
  });

  void test('the serializer refuses every CR, LF and NUL, wherever it is, and nothing else escapes', () => {
    const rng = new Rng(SEED + 3);
    for (let i = 0; i < 2000; i++) {
      const at = rng.int(40);
      const base = `/var/local/auditorai/wav/${'x'.repeat(40)}.wav`;
      const bad = rng.pick(['\r', '\n', '\0', '\r\n', '\n\n']);
      assert.equal(
        checkSerialize([
          ['Action', 'Originate'],
          ['Variable', `WAV_PATH=${base.slice(0, at)}${bad}${base.slice(at)}`],
        ]),
        'refused',
      );
    }
  });
});
