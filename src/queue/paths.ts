/**
 * The one part of job validation that looks at the disk: symlinks.
 *
 * parseJob (message.ts) proves the paths are lexically inside an allowed root. A symlink inside
 * the root can still point out of it: the dialplan would then read a file it must not read, or
 * overwrite one it must not touch. This check resolves what exists now. It is defence in depth,
 * not a lock: someone who can write in the data directories can swap a link after the check
 * (time of check to time of use); the data directories' ownership and permissions are what keep
 * such people out.
 *
 * The file system calls are synchronous on purpose: four metadata lookups on a local disk take
 * ~5 µs together, while the same calls through fs/promises cost ~50 µs of CPU per job in thread
 * pool hand-offs (measured, docs/benchmarks.md). The data directories are local (Asterisk reads
 * the same files); a data directory on a hung network file system would stall the event loop.
 * Each realpath costs glibc one readlink per path component, so the roots are resolved only when a
 * job's real path is not already inside one as written (see Roots), and a directory lstat has shown
 * to be one is not stat'ed again: 7 → 5 calls per job, ~18.7 → ~14 µs of CPU (docs/benchmarks.md).
 */
import { lstatSync, realpathSync, statSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { AppError, InputUnreadableError, OutputUnreadableError, PathNotAllowedError } from '../errors.js';
import type { Job, PathRules } from './message.js';

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
 */
// eslint-disable-next-line @typescript-eslint/require-await -- async: every refusal arrives as a rejection, as before
export async function checkRealPaths(job: Job, rules: PathRules): Promise<void> {
  const roots = new Roots(rules.allowedRoots);
  try {
    checkInput(job.gsmPath, roots, rules.inputExtension);
  } catch (error) {
    // As when the roots were resolved first: an error on a root wins over the job's own.
    roots.resolve();
    throw unreadable(error, (m, o) => new InputUnreadableError(m, o), 'gsm_path', job.gsmPath);
  }
  try {
    checkOutput(job.wavPath, roots);
  } catch (error) {
    roots.resolve();
    throw unreadable(error, (m, o) => new OutputUnreadableError(m, o), 'wav_path', job.wavPath);
  }
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

function checkInput(gsmPath: string, roots: Roots, extension: string): void {
  const real = resolve('gsm_path', gsmPath);
  if (real === undefined) {
    // Missing is fine, but not a dangling link: its target could be created, anywhere, before the dialplan runs.
    if (lstatOrUndefined(gsmPath)?.isSymbolicLink() === true) {
      throw new PathNotAllowedError(`gsm_path ${gsmPath} is a symlink to a file that does not exist`);
    }
    return;
  }
  if (!roots.contain(real, false)) {
    throw new PathNotAllowedError(`gsm_path ${gsmPath} resolves to a file outside the allowed roots (a symlink?)`);
  }
  if (!posix.basename(real).endsWith(extension)) {
    throw new PathNotAllowedError(`gsm_path ${gsmPath} resolves to a file without the ${extension} extension (a symlink?)`);
  }
  const stats = statSync(real);
  if (!stats.isFile()) throw new PathNotAllowedError(`gsm_path ${gsmPath} is not a regular file`);
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

function errorCode(error: unknown): unknown {
  return typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
}

/** ENOENT, or ENOTDIR (a component is a file): either way the thing is not there. */
function isMissing(error: unknown): boolean {
  const code = errorCode(error);
  return code === 'ENOENT' || code === 'ENOTDIR';
}
