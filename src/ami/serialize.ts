/**
 * AMI wire format, the writing half, pure: ordered pairs in, the bytes of one message out.
 * Refuses anything that would change the action's meaning on the wire (see serialize()).
 */
import { AmiSerializeError } from './errors.js';
import type { AmiPair } from './protocol.js';

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
