/**
 * Job message bodies, pure: whatever rabbitmq-client hands over (bytes, text, or a value it already
 * parsed for content-type application/json) → one JSON object, within the size and depth limits.
 */
import { InvalidMessageError } from '../errors.js';
import { asciiSafe, typeName } from '../util/text.js';

/** Largest body accepted, in bytes (docs/messages.md "Job"). */
export const MAX_BODY_BYTES = 64 * 1024;
/**
 * Deepest JSON nesting accepted. A job is flat; this leaves room for extra fields and keeps
 * recursive code (JSON.stringify, loggers) safe.
 */
export const MAX_JSON_DEPTH = 32;

/** An AMQP body as rabbitmq-client hands it over → the JSON object it holds, or InvalidMessageError. */
export function decodeBody(body: unknown): Record<string, unknown> {
  if (body instanceof Uint8Array) return parseText(decodeBytes(body));
  if (typeof body === 'string') {
    const bytes = Buffer.byteLength(body, 'utf8');
    if (bytes > MAX_BODY_BYTES) throw tooLarge(bytes);
    return parseText(body);
  }
  return checkDecoded(body);
}

function decodeBytes(bytes: Uint8Array): string {
  if (bytes.byteLength > MAX_BODY_BYTES) throw tooLarge(bytes.byteLength);
  try {
    // fatal: invalid bytes must not turn silently into U+FFFD; ignoreBOM: keep a BOM so it is refused below.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (cause) {
    throw new InvalidMessageError('body is not valid UTF-8', { cause });
  }
}

function parseText(text: string): Record<string, unknown> {
  if (text.startsWith('\ufeff')) {
    throw new InvalidMessageError('body starts with a byte order mark (U+FEFF); send the JSON object without it');
  }
  if (text.trim() === '') throw new InvalidMessageError('body is empty; expected a JSON object');
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) throw tooDeep();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    // V8 quotes part of the input in its message: make it printable, keep it short.
    const why = cause instanceof Error ? asciiSafe(cause.message).slice(0, 160) : 'syntax error';
    throw new InvalidMessageError(`body is not valid JSON: ${why}`, { cause });
  }
  return asObject(value);
}

/**
 * A value rabbitmq-client already parsed (content-type application/json): turned back into JSON
 * text once, then held to the same size and depth rules as a raw body. JSON.stringify of a
 * pathologically deep value overflows the stack; that RangeError is the depth refusal.
 */
function checkDecoded(value: unknown): Record<string, unknown> {
  const object = asObject(value);
  const proto: unknown = Object.getPrototypeOf(object);
  if (proto !== Object.prototype && proto !== null) throw new InvalidMessageError('body must be a JSON object, got a non-plain object');
  let json: string;
  try {
    json = JSON.stringify(object);
  } catch (cause) {
    // Too deep for the stack, or a cycle (only a caller's own object can have one): endless nesting.
    if (cause instanceof RangeError || (cause instanceof TypeError && /circular/i.test(cause.message))) throw tooDeep();
    throw new InvalidMessageError('body cannot be measured as JSON', { cause });
  }
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > MAX_BODY_BYTES) throw tooLarge(bytes);
  if (nestsDeeperThan(json, MAX_JSON_DEPTH)) throw tooDeep();
  return object;
}

/** Bracket depth outside strings: refuses a 10,000-level body before anything recursive sees it. */
function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

function asObject(value: unknown): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidMessageError(`body must be a JSON object, got ${typeName(value)}`);
  }
  return value as Record<string, unknown>;
}

function tooLarge(bytes: number): InvalidMessageError {
  return new InvalidMessageError(`body is ${bytes} bytes; the limit is ${MAX_BODY_BYTES} (64 KiB)`);
}

function tooDeep(): InvalidMessageError {
  return new InvalidMessageError(`body nests deeper than ${MAX_JSON_DEPTH} levels`);
}
