/**
 * Job messages, pure: an AMQP body in, a validated Job out, or an error a person can read.
 *
 * This is a security boundary. Both paths reach AMI verbatim, as `Variable: GSM_PATH=…` headers,
 * and from there the shell of the dialplan's System() step. The recordings show what a bad value
 * does: CR/LF ends the header and injects lines (hdr-crlf-injection.txt), `,` `"` `\` change how
 * Asterisk splits and unquotes the value (hdr-variable-values.txt), `;` runs a command
 * (shell-injection-path.txt), and a line over 1024 bytes makes Asterisk reject the whole action
 * (hdr-line-too-long.txt). So the path rules are an allow-list, checked before anything else,
 * and no error message ever echoes a character that failed it.
 */
import { randomUUID } from 'node:crypto';
import { posix } from 'node:path';
import { InvalidMessageError, PathNotAllowedError } from '../errors.js';
import { hasOnlyPathChars, isJobId, JOB_ID_CHAR, JOB_ID_CHARS_TEXT, MAX_JOB_ID_LENGTH, PATH_CHAR, PATH_CHARS_TEXT } from '../names.js';
import { describeCodePoint, typeName } from '../util/text.js';
import { decodeBody } from './body.js';

/** A job that passed every rule: safe to put on AMI. The reply info is the consumer's business. */
export interface Job {
  /** The caller's name for the job: `job_id`, else the AMQP message_id, else a generated UUID. */
  readonly jobId: string;
  readonly gsmPath: string;
  readonly wavPath: string;
}

/** Where jobs may read and write; from config [Worker] AllowedRoots. */
export interface PathRules {
  /** Absolute directories; a path must lie strictly below one of them. */
  readonly allowedRoots: readonly string[];
  /** Exact, case-sensitive suffix of `gsm_path`, e.g. '.gsm'. */
  readonly inputExtension: string;
  /** Exact, case-sensitive suffix of `wav_path`, e.g. '.wav'. */
  readonly outputExtension: string;
}

/**
 * Longest path accepted, in bytes (paths are ASCII, so bytes = characters). Asterisk drops AMI lines
 * over 1024 bytes (hdr-line-too-long.txt); `Variable: GSM_PATH=` + 512 + CRLF is 533 bytes, which
 * leaves room for longer variable names, and both paths together stay far inside the buffer Asterisk
 * expands a System() command line into.
 */
export const MAX_PATH_BYTES = 512;
/** Longest path segment (Linux NAME_MAX). */
export const MAX_SEGMENT_BYTES = 255;

/**
 * Validates one job message.
 * @param body the AMQP body as rabbitmq-client hands it over: a Buffer, a string (text/plain), an
 *   already parsed value (application/json), or anything else, which is refused.
 * @param messageId the AMQP message_id, used as the job id when the body has no `job_id`.
 * @throws InvalidMessageError when the body or a field has the wrong shape; PathNotAllowedError
 *   when a path breaks a path rule. The message names the field and the rule.
 */
export function parseJob(body: unknown, messageId: string | undefined, rules: PathRules): Job {
  const fields = decodeBody(body);
  const gsmPath = checkPath('gsm_path', ownField(fields, 'gsm_path'), rules.inputExtension, rules);
  const wavPath = checkPath('wav_path', ownField(fields, 'wav_path'), rules.outputExtension, rules);
  if (gsmPath === wavPath) throw new PathNotAllowedError('wav_path must not be the same file as gsm_path');
  const jobId = checkJobId(ownField(fields, 'job_id')) ?? validJobId(messageId) ?? randomUUID();
  return { jobId, gsmPath, wavPath };
}

/** What can safely be said about an invalid message in its `failed` result. */
export interface InvalidMessageFields {
  readonly jobId: string;
  /** Present only when the body had it as a string that passes the character and length rules. */
  readonly gsmPath?: string;
  readonly wavPath?: string;
}

/**
 * The job id and paths to put in the `failed` result of a message parseJob refused: a valid
 * `job_id`, else a valid message_id, else a fresh UUID; a path only if it is safe to echo.
 * Never throws.
 */
export function invalidMessageFields(body: unknown, messageId: string | undefined): InvalidMessageFields {
  let fields: Record<string, unknown> = {};
  try {
    fields = decodeBody(body);
  } catch {
    // An undecodable body has nothing to salvage; the ids below still apply.
  }
  const jobId = validJobId(ownField(fields, 'job_id')) ?? validJobId(messageId) ?? randomUUID();
  const gsmPath = echoablePath(ownField(fields, 'gsm_path'));
  const wavPath = echoablePath(ownField(fields, 'wav_path'));
  return { jobId, ...(gsmPath === undefined ? {} : { gsmPath }), ...(wavPath === undefined ? {} : { wavPath }) };
}

/** The id for the `failed` result of an invalid message (see invalidMessageFields). */
export function idForInvalid(body: unknown, messageId: string | undefined): string {
  return invalidMessageFields(body, messageId).jobId;
}

// ---- fields ---------------------------------------------------------------------------------

/** Own properties only: a key on Object.prototype is not a field of the message. */
function ownField(fields: Record<string, unknown>, key: string): unknown {
  return Object.hasOwn(fields, key) ? fields[key] : undefined;
}

function checkJobId(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new InvalidMessageError(`job_id must be a string, got ${typeName(value)}`);
  if (value === '') throw new InvalidMessageError('job_id must not be empty (leave it out to use the AMQP message_id)');
  if (value.length > MAX_JOB_ID_LENGTH) {
    throw new InvalidMessageError(`job_id is ${value.length} characters long; the limit is ${MAX_JOB_ID_LENGTH}`);
  }
  const bad = firstCharNotIn(value, JOB_ID_CHAR);
  if (bad !== undefined) {
    throw new InvalidMessageError(`job_id contains ${describeCodePoint(bad.cp)} at offset ${bad.index}; allowed: ${JOB_ID_CHARS_TEXT}`);
  }
  return value;
}

function validJobId(value: unknown): string | undefined {
  return typeof value === 'string' && isJobId(value) ? value : undefined;
}

function echoablePath(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' && value.length <= MAX_PATH_BYTES && hasOnlyPathChars(value) ? value : undefined;
}

function firstCharNotIn(text: string, allowed: RegExp): { index: number; cp: number } | undefined {
  let index = 0;
  for (const ch of text) {
    if (!allowed.test(ch)) return { index, cp: ch.codePointAt(0)! };
    index += ch.length;
  }
  return undefined;
}

// ---- paths ----------------------------------------------------------------------------------

type PathField = 'gsm_path' | 'wav_path';

function checkPath(field: PathField, value: unknown, extension: string, rules: PathRules): string {
  if (value === undefined) throw new InvalidMessageError(`${field} is required: an absolute path ending in ${extension}`);
  if (typeof value !== 'string') throw new InvalidMessageError(`${field} must be a string, got ${typeName(value)}`);
  if (value === '') throw new InvalidMessageError(`${field} must not be empty`);
  // Characters first: every later message may quote the path, which is only safe once it passed.
  const bad = firstCharNotIn(value, PATH_CHAR);
  if (bad !== undefined) {
    throw new PathNotAllowedError(`${field} contains ${describeCodePoint(bad.cp)} at offset ${bad.index}; allowed: ${PATH_CHARS_TEXT}`);
  }
  if (value.length > MAX_PATH_BYTES) {
    throw new PathNotAllowedError(`${field} is ${value.length} bytes long; the limit is ${MAX_PATH_BYTES}`);
  }
  checkNormalised(field, value);
  const below = relativeToRoot(value, rules.allowedRoots);
  if (below === undefined) {
    const roots = rules.allowedRoots.length > 0 ? rules.allowedRoots.join(', ') : 'none configured';
    throw new PathNotAllowedError(`${field} ${value} is outside the allowed roots (${roots})`);
  }
  for (const segment of below) {
    // A leading '-' could be read as an option by sox or `file convert`; a leading '.' is a hidden file.
    if (segment.startsWith('-') || segment.startsWith('.')) {
      throw new PathNotAllowedError(`${field} has a name starting with '${segment[0]}': ${segment}`);
    }
  }
  checkExtension(field, below[below.length - 1] ?? '', extension, rules);
  return value;
}

function checkNormalised(field: PathField, value: string): void {
  if (!value.startsWith('/')) throw new PathNotAllowedError(`${field} must be an absolute path (starting with /): ${value}`);
  if (value.endsWith('/')) throw new PathNotAllowedError(`${field} ends with '/': it must name a file`);
  for (const segment of value.slice(1).split('/')) {
    if (segment === '') throw new PathNotAllowedError(`${field} contains '//': send the normalised path`);
    if (segment === '.' || segment === '..') {
      throw new PathNotAllowedError(`${field} contains a '${segment}' segment: send the normalised path`);
    }
    if (segment.length > MAX_SEGMENT_BYTES) {
      throw new PathNotAllowedError(`${field} has a name of ${segment.length} bytes; the limit is ${MAX_SEGMENT_BYTES}`);
    }
  }
  // The checks above imply this; kept as a guard should they ever be loosened.
  if (posix.normalize(value) !== value) throw new PathNotAllowedError(`${field} is not normalised: ${value}`);
}

/** The segments below the first allowed root containing `path` (boundary-aware), or undefined. */
function relativeToRoot(path: string, roots: readonly string[]): string[] | undefined {
  for (const root of roots) {
    const prefix = root.endsWith('/') ? root : `${root}/`;
    if (root.startsWith('/') && path.startsWith(prefix) && path.length > prefix.length) {
      return path.slice(prefix.length).split('/');
    }
  }
  return undefined;
}

function checkExtension(field: PathField, name: string, extension: string, rules: PathRules): void {
  if (!name.endsWith(extension) || name.length <= extension.length) {
    throw new PathNotAllowedError(`${field} must end with ${extension} (case-sensitive): ${name}`);
  }
  const stem = name.slice(0, -extension.length).toLowerCase();
  // `x.wav.gsm`, `x.gsm.gsm`: a doubled audio extension means the producer built the name wrong.
  for (const inner of [rules.inputExtension, rules.outputExtension]) {
    if (inner !== '' && stem.endsWith(inner.toLowerCase())) {
      throw new PathNotAllowedError(`${field} has a doubled extension: ${name}`);
    }
  }
}
