/**
 * Fuzzing the AMI wire code (src/ami/protocol.ts) with a seeded PRNG: input generators (random
 * bytes, random AMI-shaped text, mutated recordings of a real Asterisk), random chunkings, and the
 * properties every input must keep. Used by test/unit/fuzz-protocol.test.ts (bounded, in `npm test`)
 * and test/fuzz.ts (`npm run fuzz`, as long as you like). Pure: no sockets, no timers.
 */
import assert from 'node:assert/strict';
import { AmiParser, type AmiFrame, type AmiPair, type ParserOptions } from '../../src/ami/protocol.js';
import { serialize } from '../../src/ami/protocol.js';
import { AmiProtocolError, AmiSerializeError } from '../../src/ami/errors.js';
import { Prng } from '../../scripts/chaos/prng.js';
import { listTranscripts, readTranscript, serverStream } from './transcripts.js';

/** The chaos run's seeded mulberry32, with the helpers a fuzzer wants; the same seed replays the same run. */
export class Rng {
  private readonly source: Prng;
  constructor(readonly seed: number) {
    this.source = new Prng(seed);
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.source.next();
  }

  /** Integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** `n` bytes, biased towards the bytes AMI cares about (CR, LF, ':', ' ', NUL, high bytes). */
  bytes(n: number): Buffer {
    const out = Buffer.alloc(n);
    for (let i = 0; i < n; i++) out[i] = this.chance(0.3) ? this.pick(INTERESTING_BYTES) : this.int(256);
    return out;
  }
}

const INTERESTING_BYTES = [0x0d, 0x0a, 0x0a, 0x3a, 0x20, 0x09, 0x00, 0xff, 0xc3, 0xe2, 0x80];
const WORDS = [
  'Event',
  'Response',
  'ActionID',
  'Message',
  'Uniqueid',
  'Variable',
  'Output',
  'Success',
  'Error',
  'Hangup',
  'UserEvent',
  'AudioConvert',
  'Status',
  'Newchannel',
  'OriginateResponse',
  'FullyBooted',
  'Shutdown',
];

/** Random AMI-shaped text: messages of `Key: Value` lines, odd line endings, blank lines, garbage. */
export function randomAmi(rng: Rng): Buffer {
  let text = rng.chance(0.7) ? 'Asterisk Call Manager/11.0.0\r\n' : '';
  const messages = 1 + rng.int(8);
  for (let m = 0; m < messages; m++) {
    const lines = rng.int(12);
    for (let l = 0; l < lines; l++) {
      const key = rng.chance(0.9) ? rng.pick(WORDS) : rng.bytes(rng.int(6)).toString('latin1');
      const sep = rng.pick([': ', ':', ':  ', ':\t', '', ' : ']);
      const value = rng.chance(0.4)
        ? rng.pick(WORDS)
        : rng.chance(0.7)
          ? `${rng.pick(WORDS)}-${rng.int(1e6)}`
          : rng.bytes(rng.int(40)).toString('latin1');
      text += `${key}${sep}${value}${rng.pick(['\r\n', '\r\n', '\n', '\r', '\r\r\n'])}`;
    }
    text += rng.pick(['\r\n', '\n', '\r\n\r\n', '']);
  }
  return Buffer.from(text, 'latin1');
}

/** `input` with 1–8 random edits: bit flips, inserted bytes or line breaks, deletions, duplicated or truncated ranges. */
export function mutate(rng: Rng, input: Buffer): Buffer {
  let buf = Buffer.from(input);
  const edits = 1 + rng.int(8);
  for (let e = 0; e < edits; e++) {
    const at = rng.int(buf.length + 1);
    switch (rng.int(7)) {
      case 0:
        if (at < buf.length) buf[at] = buf[at]! ^ (1 << rng.int(8));
        break;
      case 1:
        buf = Buffer.concat([buf.subarray(0, at), rng.bytes(1 + rng.int(16)), buf.subarray(at)]);
        break;
      case 2:
        buf = Buffer.concat([buf.subarray(0, at), buf.subarray(Math.min(buf.length, at + 1 + rng.int(32)))]);
        break;
      case 3:
        buf = Buffer.concat([buf.subarray(0, at), Buffer.from(rng.pick(['\r\n', '\n', '\r', '\r\n\r\n', ': ', '\0'])), buf.subarray(at)]);
        break;
      case 4: {
        const end = Math.min(buf.length, at + rng.int(200));
        buf = Buffer.concat([buf.subarray(0, end), buf.subarray(at, end), buf.subarray(end)]);
        break;
      }
      case 5:
        buf = buf.subarray(0, at);
        break;
      default:
        // A long run without a line break: exercises the line limit.
        buf = Buffer.concat([buf.subarray(0, at), Buffer.alloc(rng.int(3000), 0x61), buf.subarray(at)]);
    }
  }
  return buf;
}

/** `input` cut at random places (sometimes byte by byte for a stretch, sometimes not at all). */
export function randomChunks(rng: Rng, input: Buffer): Buffer[] {
  if (input.length === 0 || rng.chance(0.1)) return [input];
  const chunks: Buffer[] = [];
  let at = 0;
  while (at < input.length) {
    const size = rng.chance(0.2) ? 1 : 1 + rng.int(rng.chance(0.5) ? 16 : 2048);
    chunks.push(input.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** The real S->C streams of every recording (banner first): seeds for mutation. */
export function recordedStreams(): Buffer[] {
  const streams: Buffer[] = [];
  for (const name of listTranscripts()) {
    readTranscript(name).connections.forEach((_conn, i) => {
      const stream = serverStream(name, i);
      if (stream.length > 0) streams.push(stream);
    });
  }
  return streams;
}

/** Parser options with every limit spelled out (keepEvents stays optional). */
export type FuzzOptions = Required<Omit<ParserOptions, 'keepEvents'>> & Pick<ParserOptions, 'keepEvents'>;

/** Parser options for one run: the client's defaults, or small limits that hit the edge cases often. */
export function randomOptions(rng: Rng): FuzzOptions {
  const small = rng.chance(0.5);
  const options: FuzzOptions = {
    expectBanner: rng.chance(0.7),
    maxLineBytes: small ? 8 + rng.int(120) : 64 * 1024,
    overlong: rng.chance(0.5) ? 'throw' : 'mark',
    maxPairs: small ? 1 + rng.int(16) : 4096,
    maxMessageBytes: small ? 16 + rng.int(512) : 1024 * 1024,
  };
  // Sometimes only a few events are kept (the others are read within the limits, never returned).
  if (rng.chance(0.3)) return { ...options, keepEvents: new Set(WORDS.filter(() => rng.chance(0.3))) };
  return options;
}

interface Run {
  readonly frames: AmiFrame[];
  /** The AmiProtocolError that ended the run, if any. */
  readonly error: AmiProtocolError | undefined;
}

/**
 * Feeds `chunks` to a fresh parser and checks, after every push: only AmiProtocolError is ever
 * thrown, the buffered line and the pending message never pass their limits. Stops at the first
 * protocol error (the client drops the connection there).
 */
function feed(chunks: readonly Buffer[], options: FuzzOptions): Run {
  const parser = new AmiParser(options);
  const frames: AmiFrame[] = [];
  for (const chunk of chunks) {
    try {
      frames.push(...parser.push(chunk));
    } catch (error) {
      if (error instanceof AmiProtocolError) return { frames, error };
      throw new Error(`the parser threw ${String(error)}, not an AmiProtocolError`, { cause: error });
    }
    assert.ok(parser.bufferedBytes <= options.maxLineBytes + 1, `bufferedBytes ${parser.bufferedBytes} > maxLineBytes + 1`);
    assert.ok(
      parser.pendingMessageBytes <= options.maxMessageBytes,
      `pendingMessageBytes ${parser.pendingMessageBytes} > ${options.maxMessageBytes}`,
    );
  }
  return { frames, error: undefined };
}

/**
 * The properties of one input under one set of options:
 * 1. whatever the chunking, only AmiProtocolError escapes and buffers stay within their limits;
 * 2. the chunking never changes the outcome: byte-by-byte feeding yields the most frames (a push
 *    that throws loses the frames of its own chunk); every other chunking yields a prefix of
 *    them, and the same error or none — with no error, exactly the same frames;
 * 3. every frame is sane: a banner only first, no LF inside a key or value, no colon in a key,
 *    at most maxPairs pairs, each line within maxLineBytes; with keepEvents, no event left out.
 */
export function checkParserInput(rng: Rng, input: Buffer, options: FuzzOptions): void {
  const bytewise: Buffer[] = [];
  for (let i = 0; i < input.length; i++) bytewise.push(input.subarray(i, i + 1));
  const reference = feed(bytewise, options);
  for (const chunks of [[input], randomChunks(rng, input), randomChunks(rng, input)]) {
    const run = feed(chunks, options);
    assert.equal(run.error?.message, reference.error?.message, 'the chunking changed whether (and why) the parser failed');
    if (reference.error === undefined) assert.deepEqual(run.frames, reference.frames, 'the chunking changed the frames');
    else assert.deepEqual(run.frames, reference.frames.slice(0, run.frames.length), 'frames are not a prefix of the byte-by-byte ones');
  }
  reference.frames.forEach((frame, i) => {
    if (frame.kind === 'banner') {
      assert.ok(i === 0 && options.expectBanner, 'a banner that is not the first frame');
      assert.ok(!frame.text.includes('\n'));
      return;
    }
    const { pairs } = frame.message;
    assert.ok(pairs.length <= options.maxPairs, `${pairs.length} pairs`);
    const first = pairs[0];
    // (A bare `Event` line without a colon also reads as ['Event', ''] but is no `Event:` line: not filtered.)
    if (options.keepEvents !== undefined && frame.message.overlong !== true && first?.[0] === 'Event' && first[1] !== '') {
      assert.ok(options.keepEvents.has(first[1]), `event ${JSON.stringify(first[1])} returned though keepEvents leaves it out`);
    }
    for (const [key, value] of pairs) {
      assert.ok(!key.includes('\n') && !value.includes('\n'), 'LF inside a pair');
      assert.ok(!key.includes(':'), 'a colon inside a key');
      // Each byte decodes to at most one UTF-16 unit, so characters bound the bytes of the line.
      assert.ok(key.length + value.length <= options.maxLineBytes, 'a line over the limit was kept');
    }
  });
}

/** Random pairs for the serializer: mostly sane, sometimes hostile (CR, LF, NUL, unicode, long). */
export function randomPairs(rng: Rng): AmiPair[] {
  const pairs: AmiPair[] = [];
  const n = 1 + rng.int(6);
  for (let i = 0; i < n; i++) {
    const key = rng.chance(0.9) ? rng.pick(WORDS) : rng.bytes(rng.int(8)).toString('latin1');
    let value = rng.chance(0.5)
      ? `/var/local/auditorai/gsm/${rng.int(1e9)}.gsm`
      : rng.bytes(rng.int(60)).toString(rng.chance(0.5) ? 'latin1' : 'utf8');
    if (rng.chance(0.05)) value += 'x'.repeat(900 + rng.int(300));
    if (rng.chance(0.1))
      value += rng.pick(['\r\nAction: Command\r\nCommand: core show version', '\n\nAction: Command', '\r', '\0', '\u2028']);
    pairs.push([key, value]);
  }
  return pairs;
}

/**
 * The serializer is the last gate before Asterisk: either it refuses (AmiSerializeError, and
 * nothing else), or what it writes is exactly one message that Asterisk — read here by our parser
 * in Asterisk's own configuration (1022-byte lines, overlong lines dropped) — reads back as the
 * same pairs (Asterisk, like the parser, skips the blanks after the colon), with no line dropped.
 */
export function checkSerialize(pairs: readonly AmiPair[]): 'refused' | 'written' {
  let wire: string;
  try {
    wire = serialize(pairs);
  } catch (error) {
    if (error instanceof AmiSerializeError) return 'refused';
    throw new Error(`serialize threw ${String(error)}, not an AmiSerializeError`, { cause: error });
  }
  assert.ok(!wire.includes('\0'), 'NUL written');
  assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(wire), 'a bare CR or LF written');
  const parser = new AmiParser({ expectBanner: false, maxLineBytes: 1022, overlong: 'mark' });
  const frames = parser.push(Buffer.from(wire, 'utf8'));
  assert.equal(frames.length, 1, `one message expected, got ${frames.length}`);
  const frame = frames[0]!;
  assert.ok(frame.kind === 'message' && frame.message.overlong !== true, 'a line Asterisk would drop');
  assert.deepEqual(
    frame.message.pairs,
    pairs.map(([k, v]) => [k, v.replace(/^[ \t]+/, '')]),
  );
  assert.equal(parser.bufferedBytes, 0);
  return 'written';
}

/** What a fuzz run did, for the report. */
export interface FuzzStats {
  iterations: number;
  protocolErrors: number;
  frames: number;
  serializeRefused: number;
  serializeWritten: number;
}

/**
 * Runs the parser and serializer properties until `iterations` are done or `budgetMs` has passed.
 * A failure is rethrown with the seed, the iteration and the input in hex, so it can be replayed.
 */
export function fuzz(seed: number, iterations: number, budgetMs: number, seeds: readonly Buffer[]): FuzzStats {
  const rng = new Rng(seed);
  const stats: FuzzStats = { iterations: 0, protocolErrors: 0, frames: 0, serializeRefused: 0, serializeWritten: 0 };
  const started = Date.now();
  for (let i = 0; i < iterations && Date.now() - started < budgetMs; i++) {
    const kind = i % 4;
    let input: Buffer;
    if (kind === 0) input = rng.bytes(rng.int(2048));
    else if (kind === 1) input = randomAmi(rng);
    else {
      // A window of a recorded stream (from its start half the time: banner included), mutated.
      const stream = rng.pick(seeds);
      const from = rng.chance(0.5) ? 0 : rng.int(stream.length);
      input = mutate(rng, stream.subarray(from, from + 512 + rng.int(4096)));
    }
    const options = randomOptions(rng);
    const pairs = randomPairs(rng);
    try {
      checkParserInput(rng, input, options);
      if (checkSerialize(pairs) === 'refused') stats.serializeRefused++;
      else stats.serializeWritten++;
    } catch (error) {
      const detail =
        `fuzz seed ${seed}, iteration ${i}: ${error instanceof Error ? error.message : String(error)}\n` +
        `options ${JSON.stringify(options)}\ninput (hex) ${input.toString('hex').slice(0, 4000)}\npairs ${JSON.stringify(pairs)}`;
      throw new Error(detail, { cause: error });
    }
    stats.iterations++;
    const parser = new AmiParser(options);
    try {
      stats.frames += parser.push(input).length;
    } catch {
      stats.protocolErrors++;
    }
  }
  return stats;
}
