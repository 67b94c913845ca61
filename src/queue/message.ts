/**
 * The job message and the records a job ends in (docs/messages.md): an AMQP body in, a validated
 * Job out, or an error a person can read; then the result and dead-letter records out. All pure
 * but checkRealPaths, the one look at the disk.
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
import { lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { AppError, errorCode, InputUnreadableError, InvalidMessageError, OutputUnreadableError, PathNotAllowedError } from '../errors.js';
import { hasOnlyPathChars, isJobId, JOB_ID_CHAR, JOB_ID_CHARS_TEXT, MAX_JOB_ID_LENGTH, PATH_CHAR, PATH_CHARS_TEXT } from '../characters.js';
import { asciiSafe, describeCodePoint, typeName } from '../util/text.js';
import { ATTEMPTS_HEADER } from './broker.js';

// ---- Body → one JSON object ----
// Job message bodies, pure: whatever rabbitmq-client hands over (bytes, text, or a value it already
// parsed for content-type application/json) → one JSON object, within the size and depth limits.

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

// ---- The job ----
// parseJob: the rules of docs/messages.md, in order.

/** A job that passed every rule: safe to put on AMI. The reply info is the consumer's business. */
export interface Job {
  /** The caller's name for the job: `job_id`, else the AMQP message_id, else a generated UUID. */
  readonly jobId: string;
  /** The input; for a two-leg job, the first leg's (channel 0). */
  readonly gsmPath: string;
  readonly wavPath: string;
  /** A two-leg job (`legs`): one recording per speaker, channel i of the WAV = legs[i]. */
  readonly legs?: readonly [Leg, Leg];
}

/** One speaker's recording of a two-leg job. */
export interface Leg {
  readonly gsmPath: string;
  /** Who speaks on this channel (`caller`, `agent`, …): `[A-Za-z0-9_-]{1,32}`. */
  readonly role: string;
}

/** A leg's role: what the next stage names the channel by. */
export const ROLE = /^[A-Za-z0-9_-]{1,32}$/;

/** The inputs of a job, one per channel of its WAV. */
export const inputsOf = (job: Job): readonly string[] => (job.legs === undefined ? [job.gsmPath] : job.legs.map((l) => l.gsmPath));

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
  const rawLegs = ownField(fields, 'legs');
  if (rawLegs !== undefined) return parseLegsJob(fields, rawLegs, messageId, rules);
  const gsmPath = checkPath('gsm_path', ownField(fields, 'gsm_path'), rules.inputExtension, rules);
  const wavPath = checkPath('wav_path', ownField(fields, 'wav_path'), rules.outputExtension, rules);
  if (gsmPath === wavPath) throw new PathNotAllowedError('wav_path must not be the same file as gsm_path');
  const jobId = checkJobId(ownField(fields, 'job_id')) ?? validJobId(messageId) ?? randomUUID();
  return { jobId, gsmPath, wavPath };
}

/** `{"legs": [{gsm_path, role}, {gsm_path, role}], wav_path, job_id}`: one 2-channel WAV (docs/messages.md). */
function parseLegsJob(fields: Record<string, unknown>, rawLegs: unknown, messageId: string | undefined, rules: PathRules): Job {
  if (ownField(fields, 'gsm_path') !== undefined) throw new InvalidMessageError('a job has gsm_path or legs, not both');
  if (!Array.isArray(rawLegs)) throw new InvalidMessageError(`legs must be an array of two {gsm_path, role}, got ${typeName(rawLegs)}`);
  if (rawLegs.length !== 2) throw new InvalidMessageError(`legs must hold exactly two legs (one per channel), got ${rawLegs.length}`);
  const legs = rawLegs.map((raw: unknown, i): Leg => {
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
      throw new InvalidMessageError(`legs[${i}] must be an object {gsm_path, role}, got ${typeName(raw)}`);
    const leg = raw as Record<string, unknown>;
    const role = ownField(leg, 'role');
    if (typeof role !== 'string' || !ROLE.test(role))
      throw new InvalidMessageError(`legs[${i}].role must be 1-32 characters from A-Z a-z 0-9 _ -`);
    return { gsmPath: checkPath(`legs[${i}].gsm_path`, ownField(leg, 'gsm_path'), rules.inputExtension, rules), role };
  }) as unknown as [Leg, Leg];
  if (legs[0].role === legs[1].role) throw new InvalidMessageError(`the two legs have the same role (${legs[0].role})`);
  if (legs[0].gsmPath === legs[1].gsmPath) throw new PathNotAllowedError('the two legs name the same gsm_path');
  const wavPath = checkPath('wav_path', ownField(fields, 'wav_path'), rules.outputExtension, rules);
  if (legs.some((l) => l.gsmPath === wavPath)) throw new PathNotAllowedError('wav_path must not be the same file as a leg');
  const jobId = checkJobId(ownField(fields, 'job_id')) ?? validJobId(messageId) ?? randomUUID();
  return { jobId, gsmPath: legs[0].gsmPath, wavPath, legs };
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

type PathField = 'gsm_path' | 'wav_path' | `legs[${number}].gsm_path`;

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

// ---- On disk: symlinks ----
// The one part of job validation that looks at the disk: symlinks.
//
// parseJob (above) proves the paths are lexically inside an allowed root. A symlink inside
// the root can still point out of it: the dialplan would then read a file it must not read, or
// overwrite one it must not touch. This check resolves what exists now. It is defence in depth,
// not a lock: someone who can write in the data directories can swap a link after the check
// (time of check to time of use); the data directories' ownership and permissions are what keep
// such people out.
//
// The file system calls are synchronous on purpose: four metadata lookups on a local disk take
// ~5 µs together, while the same calls through fs/promises cost ~50 µs of CPU per job in thread
// pool hand-offs (measured, docs/benchmarks.md). The data directories are local (Asterisk reads
// the same files); a data directory on a hung network file system would stall the event loop.
// Each realpath costs glibc one readlink per path component, so the roots are resolved only when a
// job's real path is not already inside one as written (see Roots), and a directory lstat has shown
// to be one is not stat'ed again: 7 → 5 calls per job, ~18.7 → ~14 µs of CPU (docs/benchmarks.md).

/**
 * Refuses a job whose existing files or directories resolve outside the allowed roots.
 * - the GSM, if it exists: its real path must be a regular file inside a (real) root, with the input extension;
 * - the WAV's directory, or when it does not exist yet its deepest existing ancestor (what the
 *   dialplan's `mkdir -p` builds on): its real path must be a directory inside a (real) root or be one;
 * - the WAV itself, if it exists: must be a regular file, not a symlink (the conversion would write through it).
 * A missing file or directory is fine (the dialplan reports it), except a GSM that is a dangling symlink.
 * @throws PathNotAllowedError; InputUnreadableError / OutputUnreadableError when the service's user
 * cannot examine a path (EACCES, EIO, ENAMETOOLONG…: retried, then dead-lettered, by the policy);
 * an error on a configured root itself is thrown as it is (the policy makes it INTERNAL).
 * @returns each input's stat (undefined when it does not exist), in order: the handler's settle and
 * empty checks read them instead of a second stat per job.
 */
// eslint-disable-next-line @typescript-eslint/require-await -- async: every refusal arrives as a rejection, as before
export async function checkRealPaths(job: Job, rules: PathRules): Promise<(Stats | undefined)[]> {
  const roots = new Roots(rules.allowedRoots);
  const inputs: (Stats | undefined)[] = [];
  for (const [i, gsmPath] of inputsOf(job).entries()) {
    try {
      inputs.push(checkInput(gsmPath, roots, rules.inputExtension));
    } catch (error) {
      // As when the roots were resolved first: an error on a root wins over the job's own.
      roots.resolve();
      throw unreadable(
        error,
        (m, o) => new InputUnreadableError(m, o),
        job.legs === undefined ? 'gsm_path' : `legs[${i}].gsm_path`,
        gsmPath,
      );
    }
  }
  try {
    checkOutput(job.wavPath, roots);
  } catch (error) {
    roots.resolve();
    throw unreadable(error, (m, o) => new OutputUnreadableError(m, o), 'wav_path', job.wavPath);
  }
  return inputs;
}

/**
 * The allowed roots of one check, resolved only when needed. A real path (what realpath returns)
 * has no symlink in any component, and neither has any prefix of it: so when a real path lies
 * inside a root as written, that root's real path is the root as written, and the answer is the
 * one resolving the roots would give. Only a real path outside every written root resolves them.
 */
class Roots {
  /** As written, without a trailing slash (a root that does not exist yet is created as written). */
  readonly written: readonly string[];
  private real: string[] | undefined;

  constructor(roots: readonly string[]) {
    this.written = roots.map(withoutSlash);
  }

  /** Is `real` (a real path) strictly inside a real root, or (orEqual) one of them? */
  contain(real: string, orEqual: boolean): boolean {
    return isInside(real, this.written, orEqual) || isInside(real, this.resolve(), orEqual);
  }

  /** The real path of each root; an error on a root itself is thrown as it is. */
  resolve(): readonly string[] {
    this.real ??= realRoots(this.written);
    return this.real;
  }
}

/** Our refusals pass through; a file system error becomes a readable error naming the directory. */
function unreadable(
  error: unknown,
  make: (message: string, options: { cause: unknown }) => AppError,
  field: string,
  path: string,
): unknown {
  if (error instanceof AppError) return error;
  const code = errorCode(error);
  if (typeof code !== 'string') return error;
  const why = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : error instanceof Error ? error.message : code;
  return make(
    `the service cannot examine ${field} ${path} (${code}: ${why}); check that its user may search the directory ${posix.dirname(path)} and every one above it`,
    { cause: error },
  );
}

/** The input's checks; its stat when it exists. */
function checkInput(gsmPath: string, roots: Roots, extension: string): Stats | undefined {
  const real = resolve('gsm_path', gsmPath);
  if (real === undefined) {
    // Missing is fine, but not a dangling link: its target could be created, anywhere, before the dialplan runs.
    if (lstatOrUndefined(gsmPath)?.isSymbolicLink() === true) {
      throw new PathNotAllowedError(`gsm_path ${gsmPath} is a symlink to a file that does not exist`);
    }
    return undefined;
  }
  if (!roots.contain(real, false)) {
    throw new PathNotAllowedError(`gsm_path ${gsmPath} resolves to a file outside the allowed roots (a symlink?)`);
  }
  if (!posix.basename(real).endsWith(extension)) {
    throw new PathNotAllowedError(`gsm_path ${gsmPath} resolves to a file without the ${extension} extension (a symlink?)`);
  }
  const stats = statSync(real);
  if (!stats.isFile()) throw new PathNotAllowedError(`gsm_path ${gsmPath} is not a regular file`);
  return stats;
}

function checkOutput(wavPath: string, roots: Roots): void {
  checkOutputDir(posix.dirname(wavPath), roots);
  const stats = lstatOrUndefined(wavPath);
  if (stats === undefined) return;
  if (stats.isSymbolicLink()) {
    throw new PathNotAllowedError(`wav_path ${wavPath} is a symlink; the conversion would write through it`);
  }
  if (!stats.isFile()) throw new PathNotAllowedError(`wav_path ${wavPath} exists and is not a regular file`);
}

/**
 * The WAV's directory may not exist yet: the dialplan creates it (dated trees). What `mkdir -p`
 * would build on is the deepest ancestor that exists; its real path must be inside a root (or be
 * one) and a directory, or the new directories would land wherever a symlink points.
 */
function checkOutputDir(dir: string, roots: Roots): void {
  let existing = dir;
  let stats: Stats | undefined;
  while ((stats = lstatOrUndefined(existing)) === undefined) {
    // A root that does not exist yet is created as written: nothing above it is reached.
    if (roots.written.includes(existing) || existing === '/') return;
    existing = posix.dirname(existing);
  }
  const real = resolve('wav_path', existing);
  if (real === undefined) {
    throw new PathNotAllowedError(`wav_path's directory ${existing} is a symlink to something that does not exist`);
  }
  if (!roots.contain(real, true)) {
    const what = existing === dir ? `wav_path's directory ${dir}` : `wav_path's directory ${dir} would be created in ${existing}, which`;
    throw new PathNotAllowedError(`${what} resolves outside the allowed roots (a symlink?)`);
  }
  // A directory that is not a symlink is its own real path: stat would tell what lstat told.
  if (!stats.isDirectory() && !statSync(real).isDirectory())
    throw new PathNotAllowedError(`wav_path's directory ${existing} is not a directory`);
}

const withoutSlash = (root: string): string => (root.length > 1 && root.endsWith('/') ? root.slice(0, -1) : root);

/** Real path of each root (written without a trailing slash); a root that does not exist (yet) is kept as written. */
function realRoots(roots: readonly string[]): string[] {
  return roots.map((written) => {
    try {
      return realpathSync.native(written);
    } catch (error) {
      if (isMissing(error)) return written;
      throw error;
    }
  });
}

/** Real path, or undefined when something on the way does not exist. A symlink loop is refused. */
function resolve(field: string, path: string): string | undefined {
  try {
    return realpathSync.native(path);
  } catch (error) {
    if (isMissing(error)) return undefined;
    if (errorCode(error) === 'ELOOP') throw new PathNotAllowedError(`${field} ${path} is a symlink loop`, { cause: error });
    throw error;
  }
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (error) {
    if (isMissing(error)) return undefined;
    throw error;
  }
}

function isInside(real: string, roots: readonly string[], orEqual: boolean): boolean {
  return roots.some((root) => {
    if (orEqual && real === root) return true;
    const prefix = root.endsWith('/') ? root : `${root}/`;
    return real.startsWith(prefix) && real.length > prefix.length;
  });
}

/** ENOENT, or ENOTDIR (a component is a file): either way the thing is not there. */
function isMissing(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

// ---- Records out: results and dead letters ----
// Result messages and dead-letter envelopes, pure: plain values in, JSON-ready objects out
// (docs/messages.md "Result"). No clock reads: every time comes in as an argument.

/** What every result says about the job. */
export interface ResultBase {
  jobId: string;
  /** Omitted from the result when absent or not safe to echo (an invalid message's raw path). */
  gsmPath?: string;
  wavPath?: string;
  attempts: number;
  startedAt: Date;
  finishedAt: Date;
}

interface ResultCommon {
  readonly job_id: string;
  readonly gsm_path?: string;
  readonly wav_path?: string;
  readonly attempts: number;
  readonly started_at: string;
  readonly finished_at: string;
  readonly duration_ms: number;
}

/** A channel's audio facts and flags, as a result carries them (docs/messages.md "audio"). */
export interface AudioField {
  readonly duration_ms: number;
  readonly peak_dbfs: number;
  readonly rms_dbfs: number;
  readonly silence_ratio: number;
  readonly clipped_ratio: number;
  readonly flags: readonly string[];
}

/** What a proven conversion adds to its result: one input's hashes and audio, or a channel per leg. */
export interface CustodyFields {
  readonly inputSha256?: string;
  readonly wavSha256?: string;
  readonly audio?: AudioField;
  readonly channels?: ReadonlyArray<{
    readonly index: number;
    readonly role: string;
    readonly gsmPath: string;
    readonly durationMs: number;
    readonly inputSha256: string;
    readonly audio: AudioField;
  }>;
}

/** Routing key `converted`. */
export interface ConvertedResult extends ResultCommon {
  readonly status: 'converted';
  readonly wav_bytes: number;
  readonly input_sha256?: string;
  readonly wav_sha256?: string;
  readonly audio?: AudioField;
  readonly channels?: ReadonlyArray<{
    readonly index: number;
    readonly role: string;
    readonly gsm_path: string;
    readonly duration_ms: number;
    readonly input_sha256: string;
    readonly audio: AudioField;
  }>;
}

/** Routing key `failed`. */
export interface FailedResult extends ResultCommon {
  readonly status: 'failed';
  readonly error: { readonly code: string; readonly message: string };
}

/** The `converted` result: the WAV exists and has `wavBytes` bytes. */
export function convertedResult(job: ResultBase & { wavBytes: number } & CustodyFields): ConvertedResult {
  return {
    job_id: job.jobId,
    status: 'converted',
    ...safePaths(job),
    wav_bytes: job.wavBytes,
    ...(job.inputSha256 === undefined ? {} : { input_sha256: job.inputSha256 }),
    ...(job.wavSha256 === undefined ? {} : { wav_sha256: job.wavSha256 }),
    ...(job.audio === undefined ? {} : { audio: job.audio }),
    ...(job.channels === undefined
      ? {}
      : {
          channels: job.channels.map((c) => ({
            index: c.index,
            role: c.role,
            gsm_path: c.gsmPath,
            duration_ms: c.durationMs,
            input_sha256: c.inputSha256,
            audio: c.audio,
          })),
        }),
    ...timing(job),
  };
}

/** The `failed` result; `code` is one of the codes in docs/messages.md "Error codes" (an AppError's `code`). */
export function failedResult(job: ResultBase & { code: string; message: string }): FailedResult {
  return { job_id: job.jobId, status: 'failed', ...safePaths(job), ...timing(job), error: { code: job.code, message: job.message } };
}

/** Defence in depth: a path that would not pass the character rule is never echoed. */
function safePaths(job: ResultBase): Pick<ResultCommon, 'gsm_path' | 'wav_path'> {
  return {
    ...(job.gsmPath !== undefined && hasOnlyPathChars(job.gsmPath) ? { gsm_path: job.gsmPath } : {}),
    ...(job.wavPath !== undefined && hasOnlyPathChars(job.wavPath) ? { wav_path: job.wavPath } : {}),
  };
}

function timing(job: ResultBase): Pick<ResultCommon, 'attempts' | 'started_at' | 'finished_at' | 'duration_ms'> {
  return {
    attempts: job.attempts,
    started_at: job.startedAt.toISOString(),
    finished_at: job.finishedAt.toISOString(),
    duration_ms: Math.max(0, Math.round(job.finishedAt.getTime() - job.startedAt.getTime())),
  };
}

// ---- dead letters ---------------------------------------------------------------------------

/** Longest x-audioconvert-reason header, in characters (after escaping to ASCII). */
export const MAX_REASON_HEADER_CHARS = 1000;
/**
 * Most bytes of the original body kept in the envelope. A body is refused above 64 KiB, but the
 * broker may deliver far more; base64 grows it by a third, and the envelope must still fit the
 * broker's message size limit, or the dead letter itself would fail to publish.
 */
export const MAX_DEAD_LETTER_BODY_BYTES = 1024 * 1024;

export interface DeadLetterArgs {
  jobId: string;
  code: string;
  reason: string;
  attempts: number;
  originalBody: Buffer;
  originalHeaders?: Record<string, unknown>;
  messageId?: string;
  failedAt: Date;
  queue: string;
}

/** What is published to the dead-letter queue: a JSON body (with the original message) and AMQP headers. */
export interface DeadLetterEnvelope {
  body: {
    readonly job_id: string;
    readonly error: { readonly code: string; readonly reason: string };
    readonly attempts: number;
    readonly failed_at: string;
    readonly original_queue: string;
    readonly message_id?: string;
    readonly original_headers?: Record<string, unknown>;
    /** `utf8` when the original body was valid UTF-8 (kept as text), else `base64`. */
    readonly body_encoding: 'utf8' | 'base64';
    readonly original_body: string;
    readonly original_body_bytes: number;
    /** True when only the first MAX_DEAD_LETTER_BODY_BYTES were kept. */
    readonly original_body_truncated: boolean;
  };
  headers: Record<string, string | number>;
}

/** The dead-letter message for a job that will never succeed (or ran out of attempts). */
export function deadLetterEnvelope(args: DeadLetterArgs): DeadLetterEnvelope {
  const failedAt = args.failedAt.toISOString();
  const original = encodeOriginalBody(args.originalBody);
  return {
    body: {
      job_id: args.jobId,
      error: { code: args.code, reason: args.reason },
      attempts: args.attempts,
      failed_at: failedAt,
      original_queue: args.queue,
      ...(args.messageId === undefined ? {} : { message_id: args.messageId }),
      ...(args.originalHeaders === undefined ? {} : { original_headers: jsonSafeRecord(args.originalHeaders) }),
      ...original,
    },
    headers: {
      'x-audioconvert-error-code': headerText(args.code, 64),
      'x-audioconvert-reason': headerText(args.reason, MAX_REASON_HEADER_CHARS),
      'x-audioconvert-job-id': headerText(args.jobId, 256),
      [ATTEMPTS_HEADER]: args.attempts,
      'x-audioconvert-failed-at': failedAt,
      'x-audioconvert-original-queue': headerText(args.queue, 256),
    },
  };
}

/** Printable ASCII only (others as `<U+XXXX>`), at most `max` characters, marked `...` when cut. */
function headerText(text: string, max: number): string {
  const safe = asciiSafe(text);
  return safe.length <= max ? safe : `${safe.slice(0, max - 3)}...`;
}

function encodeOriginalBody(
  body: Buffer,
): Pick<DeadLetterEnvelope['body'], 'body_encoding' | 'original_body' | 'original_body_bytes' | 'original_body_truncated'> {
  const truncated = body.byteLength > MAX_DEAD_LETTER_BODY_BYTES;
  let text: string | undefined;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    text = undefined;
  }
  const common = { original_body_bytes: body.byteLength, original_body_truncated: truncated };
  if (text === undefined) {
    return { body_encoding: 'base64', original_body: body.subarray(0, MAX_DEAD_LETTER_BODY_BYTES).toString('base64'), ...common };
  }
  if (!truncated) return { body_encoding: 'utf8', original_body: text, ...common };
  // Cut on a character boundary: step back over UTF-8 continuation bytes (10xxxxxx).
  let end = MAX_DEAD_LETTER_BODY_BYTES;
  while (end > 0 && ((body[end] ?? 0) & 0xc0) === 0x80) end--;
  return { body_encoding: 'utf8', original_body: body.subarray(0, end).toString('utf8'), ...common };
}

/** AMQP header tables may hold bigints, Buffers and Dates; JSON holds none of them. Depth-bounded. */
function jsonSafeRecord(record: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    const safe = jsonSafe(value, depth + 1);
    if (safe !== undefined) out[key] = safe;
  }
  return out;
}

function jsonSafe(value: unknown, depth: number): unknown {
  if (depth > 8) return '[nested too deep]';
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map((item) => jsonSafe(item, depth + 1) ?? null);
  if (typeof value === 'object') return jsonSafeRecord(value as Record<string, unknown>, depth);
  return undefined;
}
