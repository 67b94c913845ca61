/**
 * AMI wire format, pure: bytes in, messages out; pairs in, bytes out. No sockets, timers or logs.
 *
 * AMI is line based: a banner line first ("Asterisk Call Manager/11.0.0"), then messages made of
 * `Key: Value` lines ending in CRLF (we also accept a bare LF), each message ended by an empty line.
 * Keys repeat (`Variable:`, `Output:`), so a message is an ordered list of pairs, never a map.
 */
import { isAscii } from 'node:buffer';
import { AmiProtocolError, AmiSerializeError } from './errors.js';

/** One `Key: Value` line. */
export type AmiPair = readonly [key: string, value: string];

/** One AMI message (action, response or event): its lines in wire order, repeated keys kept. */
export interface AmiMessage {
  readonly pairs: readonly AmiPair[];
  /** Set when a line of this message was longer than the parser's limit and was dropped ('mark' mode). */
  readonly overlong?: true;
}

/** What the parser yields: the banner (once, first) or a message. */
export type AmiFrame = { readonly kind: 'banner'; readonly text: string } | { readonly kind: 'message'; readonly message: AmiMessage };

export interface ParserOptions {
  /** Expect a banner line before the first message (true for a client reading Asterisk). */
  readonly expectBanner?: boolean;
  /** Longest line kept, in bytes, without its line ending. */
  readonly maxLineBytes?: number;
  /**
   * What to do with a longer line: 'throw' an AmiProtocolError (a client facing a hostile peer), or
   * 'mark' — drop the line, keep reading, flag the message (what Asterisk does with its clients).
   */
  readonly overlong?: 'throw' | 'mark';
  /** Most lines one message may have; more is a protocol error (memory stays bounded). */
  readonly maxPairs?: number;
  /**
   * Most characters of text (keys and values, line endings not counted) one message may hold;
   * more is a protocol error. Without it a peer could fill maxPairs lines of maxLineBytes each
   * (256 MiB with the defaults) before the message ends.
   */
  readonly maxMessageBytes?: number;
  /**
   * When set, an event (a message whose first line is `Event: <name>`) whose name is not in the set
   * is still read, within every limit above, but not returned: no pairs are built for it. Responses
   * and messages that do not start with `Event:` are always returned. For a client that only
   * follows a few events among the many Asterisk sends (10 of the 14 per job: docs/benchmarks.md).
   */
  readonly keepEvents?: ReadonlySet<string> | undefined;
}

const LF = 0x0a;

/** First value of `name` (case-insensitive, as Asterisk reads headers), or undefined. */
export function getHeader(message: AmiMessage, name: string): string | undefined {
  const pairs = message.pairs;
  // Exact match first: Asterisk spells its own keys consistently, so this is the hot path.
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    if (pair[0] === name) return pair[1];
  }
  const lower = name.toLowerCase();
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    if (pair[0].length === lower.length && pair[0].toLowerCase() === lower) return pair[1];
  }
  return undefined;
}

/** Every value of `name`, in order (case-insensitive). */
export function getHeaders(message: AmiMessage, name: string): string[] {
  const lower = name.toLowerCase();
  const values: string[] = [];
  for (const [key, value] of message.pairs) if (key.toLowerCase() === lower) values.push(value);
  return values;
}

/** Asterisk skips all blanks (space, tab) after a header's colon when it reads it; so do we. */
function skipBlanks(text: string, from: number, end: number): number {
  while (from < end && (text.charCodeAt(from) === 0x20 || text.charCodeAt(from) === 0x09)) from++;
  return from;
}

/** text[start, end) as a pair. Only the first colon separates: values keep theirs. */
function parseSpan(text: string, start: number, end: number): AmiPair {
  const colon = text.indexOf(':', start);
  if (colon < 0 || colon >= end) return [text.slice(start, end), ''];
  return [text.slice(start, colon), text.slice(skipBlanks(text, colon + 1, end), end)];
}

/** Is text[start, end) an `Event: <name>` line whose name `keep` does not hold? */
function leftOut(keep: ReadonlySet<string>, text: string, start: number, end: number): boolean {
  if (!text.startsWith('Event:', start)) return false;
  return !keep.has(text.slice(skipBlanks(text, start + 'Event:'.length, end), end));
}

/**
 * Incremental parser. Feed it chunks as they arrive, split anywhere; it returns the frames that
 * became complete. Memory is bounded by maxLineBytes (the unfinished line) plus maxMessageBytes
 * (the unfinished message).
 */
export class AmiParser {
  private readonly expectBanner: boolean;
  private readonly maxLineBytes: number;
  private readonly overlongMode: 'throw' | 'mark';
  private readonly maxPairs: number;
  private sawBanner = false;
  /** Bytes of the current, unfinished line. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  /** True while skipping the rest of an overlong line ('mark' mode). */
  private skipping = false;
  private pairs: AmiPair[] = [];
  /** Characters of text in `pairs`. */
  private pairsBytes = 0;
  private readonly maxMessageBytes: number;
  private overlong = false;
  private readonly keepEvents: ReadonlySet<string> | undefined;
  /** True while reading an event keepEvents leaves out; `droppedLines` counts its lines. */
  private dropping = false;
  private droppedLines = 0;

  constructor(options: ParserOptions = {}) {
    this.expectBanner = options.expectBanner ?? true;
    this.maxLineBytes = options.maxLineBytes ?? 64 * 1024;
    this.overlongMode = options.overlong ?? 'throw';
    this.maxPairs = options.maxPairs ?? 4096;
    this.maxMessageBytes = options.maxMessageBytes ?? 1024 * 1024;
    this.keepEvents = options.keepEvents;
  }

  /** Bytes held for the current unfinished line; never more than maxLineBytes + 1. */
  get bufferedBytes(): number {
    return this.partialBytes;
  }

  /** Characters held for the current unfinished message; never more than maxMessageBytes. */
  get pendingMessageBytes(): number {
    return this.pairsBytes;
  }

  /** Parses one chunk; returns the frames it completed (maybe none). Throws AmiProtocolError on a violation. */
  push(chunk: Buffer): AmiFrame[] {
    const frames: AmiFrame[] = [];
    let start = 0;
    if (this.partialBytes > 0 || this.skipping) {
      // The end of a line begun in an earlier chunk: the byte path joins the pieces.
      const lf = chunk.indexOf(LF);
      if (lf < 0) {
        this.keepPartial(chunk);
        return frames;
      }
      this.pushBytes(chunk, 0, lf + 1, frames);
      start = lf + 1;
    }
    const last = chunk.lastIndexOf(LF);
    if (last >= start) {
      // Hot path (docs/benchmarks.md): Asterisk's output is ASCII, so the complete lines are decoded
      // with one call and split as text, one character per byte; anything else goes byte by byte.
      const whole = chunk.subarray(start, last + 1);
      if (isAscii(whole)) this.pushText(whole.toString('latin1'), frames);
      else this.pushBytes(chunk, start, last + 1, frames);
      start = last + 1;
    }
    if (start < chunk.length) this.keepPartial(chunk.subarray(start));
    return frames;
  }

  /** Complete lines of ASCII text (ends with LF), nothing pending before them. */
  private pushText(text: string, frames: AmiFrame[]): void {
    let pos = 0;
    while (pos < text.length) {
      const lf = text.indexOf('\n', pos);
      const next = lf + 1;
      // The same limits as pushBytes: +1 for the CR still in the line.
      if (lf - pos > this.maxLineBytes + 1) {
        this.dropOverlong();
        pos = next;
        continue;
      }
      const end = lf > pos && text.charCodeAt(lf - 1) === 0x0d ? lf - 1 : lf;
      if (end - pos > this.maxLineBytes) this.dropOverlong();
      else this.onText(text, pos, end, frames);
      pos = next;
    }
  }

  /** Bytes [start, end) of `chunk`, split at LF; a line without its LF is kept for the next chunk. */
  private pushBytes(chunk: Buffer, start: number, end: number, frames: AmiFrame[]): void {
    while (start < end) {
      const lf = chunk.indexOf(LF, start);
      if (lf < 0 || lf >= end) {
        this.keepPartial(chunk.subarray(start, end));
        break;
      }
      const piece = chunk.subarray(start, lf);
      start = lf + 1;
      if (this.skipping) {
        this.skipping = false;
        continue;
      }
      if (this.partialBytes + piece.length > this.maxLineBytes + 1) {
        // +1: the CR of a CRLF ending is still in `piece`. Forget the line's first part too, or
        // it would be glued to the next line.
        this.partial = [];
        this.partialBytes = 0;
        this.dropOverlong();
        continue;
      }
      let line: Buffer = piece;
      if (this.partialBytes > 0) {
        this.partial.push(piece);
        line = Buffer.concat(this.partial, this.partialBytes + piece.length);
        this.partial = [];
        this.partialBytes = 0;
      }
      const lineEnd = line.length > 0 && line[line.length - 1] === 0x0d ? line.length - 1 : line.length;
      if (lineEnd > this.maxLineBytes) {
        this.dropOverlong();
        continue;
      }
      const text = line.toString('utf8', 0, lineEnd);
      this.onText(text, 0, text.length, frames);
    }
  }

  private keepPartial(rest: Buffer): void {
    if (this.skipping) return;
    if (this.partialBytes + rest.length > this.maxLineBytes + 1) {
      this.partial = [];
      this.partialBytes = 0;
      this.dropOverlong();
      this.skipping = true;
      return;
    }
    // Copy: the caller may reuse its buffer.
    this.partial.push(Buffer.from(rest));
    this.partialBytes += rest.length;
  }

  private dropOverlong(): void {
    if (this.overlongMode === 'throw') {
      throw new AmiProtocolError(`AMI line longer than ${this.maxLineBytes} bytes`);
    }
    this.overlong = true;
  }

  /** One line: text[start, end), its line ending excluded. Slices key and value straight out of `text`. */
  private onText(text: string, start: number, end: number, frames: AmiFrame[]): void {
    if (this.expectBanner && !this.sawBanner) {
      this.sawBanner = true;
      frames.push({ kind: 'banner', text: text.slice(start, end) });
      return;
    }
    const length = end - start;
    if (length === 0) {
      if (this.dropping) {
        this.dropping = false;
        this.droppedLines = 0;
        this.pairsBytes = 0;
        this.overlong = false;
        return;
      }
      // Blank lines between messages (or a lone one) carry nothing.
      if (this.pairs.length === 0 && !this.overlong) return;
      const message: AmiMessage = this.overlong ? { pairs: this.pairs, overlong: true } : { pairs: this.pairs };
      frames.push({ kind: 'message', message });
      this.pairs = [];
      this.pairsBytes = 0;
      this.overlong = false;
      return;
    }
    const lines = this.dropping ? this.droppedLines : this.pairs.length;
    if (lines >= this.maxPairs) {
      throw new AmiProtocolError(`AMI message with more than ${this.maxPairs} lines`);
    }
    if (this.pairsBytes + length > this.maxMessageBytes) {
      throw new AmiProtocolError(`AMI message larger than ${this.maxMessageBytes} bytes`);
    }
    this.pairsBytes += length;
    if (this.dropping) this.droppedLines++;
    else if (lines === 0 && this.keepEvents !== undefined && !this.overlong && leftOut(this.keepEvents, text, start, end)) {
      this.dropping = true;
      this.droppedLines = 1;
    } else this.pairs.push(parseSpan(text, start, end));
  }
}

// ---- Writing: serialize ----
// AMI wire format, the writing half, pure: ordered pairs in, the bytes of one message out.
// Refuses anything that would change the action's meaning on the wire (see serialize()).

/** Asterisk's own input buffer: a line (with its CRLF) longer than this is dropped by Asterisk. */
export const ASTERISK_MAX_LINE_BYTES = 1024;

const HEADER_NAME = /^[A-Za-z0-9_-]+$/;
const FORBIDDEN_IN_VALUE = /[\r\n\0]/;

export interface SerializeOptions {
  /** Longest line allowed, in bytes, CRLF included. Defaults to Asterisk's 1024. */
  readonly maxLineBytes?: number;
}

/**
 * Serializes pairs into one AMI message (CRLF lines, blank line at the end). Refuses, with an
 * AmiSerializeError and before returning anything, a header name outside [A-Za-z0-9_-], a value
 * with CR, LF or NUL (they would end the header and start another: injection), and a line longer
 * than Asterisk accepts (it would drop the line and so change the action's meaning).
 */
export function serialize(pairs: readonly AmiPair[], options: SerializeOptions = {}): string {
  const maxLine = options.maxLineBytes ?? ASTERISK_MAX_LINE_BYTES;
  let out = '';
  for (const [key, value] of pairs) {
    if (!HEADER_NAME.test(key)) {
      throw new AmiSerializeError(`AMI header name ${JSON.stringify(key)} is not [A-Za-z0-9_-]+`);
    }
    if (FORBIDDEN_IN_VALUE.test(value)) {
      throw new AmiSerializeError(`AMI header ${key} has a CR, LF or NUL in its value`);
    }
    const line = `${key}: ${value}\r\n`;
    // Byte length only matters near the limit; most lines are short ASCII.
    if (line.length * 3 > maxLine && Buffer.byteLength(line) > maxLine) {
      throw new AmiSerializeError(`AMI header ${key} makes a line of ${Buffer.byteLength(line)} bytes (limit ${maxLine})`);
    }
    out += line;
  }
  return out + '\r\n';
}
