/**
 * The conversion step of the shipped dialplan (priorities 11–15), for real: the sox command line of
 * config/asterisk/variants/step-sox.conf (the shipped step decodes with untoast instead, into the same
 * WAV bytes; the emulator keeps sox so that `npm test` and the demo need no libgsm-tools), bounded like
 * the step's perl (`alarm`, then SIGKILL), written to the temp file and renamed onto the target,
 * the temp file removed on failure. Reports the step's status (priority 13). No shell is involved: the
 * arguments go to sox as an argv, so even a path the dialplan would have refused cannot inject.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, writeSync, type Stats } from 'node:fs';
import { chmod, lstat, mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { audioFacts, formatAudio, GSM_FRAME_BYTES, wavHeader } from '../audio.js';

/**
 * The step's verdict: SUCCESS (printed OK after the rename), APPERROR (anything else: non-zero exit, killed,
 * not found). FAILURE is TrySystem's "could not run", sent by the TrySystem variants only.
 */
export type SystemStatus = 'SUCCESS' | 'APPERROR' | 'FAILURE';

export interface ConvertJob {
  readonly soxPath: string;
  readonly gsmPath: string;
  readonly tmpPath: string;
  readonly wavPath: string;
  /** The step's bound: sox is SIGKILLed then (perl's `alarm 100` and `kill 9` of the decoder). */
  readonly timeoutMs: number;
}

/** The sox argv of step-sox's priority 12 (after `sox`). */
export function soxArgs(gsmPath: string, outPath: string): string[] {
  return ['-t', 'gsm', gsmPath, '-r', '8000', '-c', '1', '-e', 'signed-integer', '-b', '16', '-t', 'wav', outPath];
}

/**
 * Runs one step. `children` tracks the live sox processes so the emulator can kill them on close();
 * an Asterisk restart does not (the recordings show the steps running on as orphans).
 */
export async function convert(job: ConvertJob & { readonly gsmPath2?: string }, children: Set<ChildProcess>): Promise<SystemStatus> {
  const legs = job.gsmPath2 ? [job.gsmPath, job.gsmPath2] : [job.gsmPath];
  let status = await runSox(job, children, legs.length === 1 ? soxArgs(job.gsmPath, job.tmpPath) : soxMergeArgs(legs, job.tmpPath));
  // The shipped step renames only a whole output (`-s $tmp == 44 + $n`): sox exits 0 on a corrupt
  // recording with an empty or short WAV, which the step's size check turns into APPERROR. Two legs
  // (priority 26): each leg's decode must give 320 bytes per whole frame, the WAV 640 per frame of the longer.
  const frames = await Promise.all(legs.map(async (g) => Math.floor((await statSize(g)) / 33)));
  const whole = 44 + 320 * legs.length * Math.max(...frames);
  if (status === 'SUCCESS' && (await statSize(job.tmpPath)) !== whole) status = 'APPERROR';
  if (status === 'SUCCESS' && legs.length === 2 && (await anyBadFrame(legs, frames))) status = 'APPERROR';
  if (status !== 'SUCCESS') {
    await rm(job.tmpPath, { force: true }).catch(() => undefined);
    return status;
  }
  try {
    await rename(job.tmpPath, job.wavPath);
    return 'SUCCESS';
  } catch {
    // The rename failed: perl prints no OK.
    await rm(job.tmpPath, { force: true }).catch(() => undefined);
    return 'APPERROR';
  }
}

function runSox(job: ConvertJob, children: Set<ChildProcess>, args = soxArgs(job.gsmPath, job.tmpPath)): Promise<SystemStatus> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(job.soxPath, args, { stdio: 'ignore' });
    } catch {
      resolve('APPERROR');
      return;
    }
    children.add(child);
    const killTimer = setTimeout(() => child.kill('SIGKILL'), job.timeoutMs);
    const done = (status: SystemStatus): void => {
      clearTimeout(killTimer);
      children.delete(child);
      resolve(status);
    };
    // ENOENT: perl's exec of sox fails (exit 127), no OK is printed: the SHELL() step reports APPERROR.
    child.once('error', () => done('APPERROR'));
    child.once('exit', (code) => done(code === 0 ? 'SUCCESS' : 'APPERROR'));
  });
}

/** STAT(s,path): the size, or 0 when it cannot be read (func_env prints 0 then). */
export async function statSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

/** STAT(e,path). */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Priorities 19–20: `STAT(d,dir)`, else `mkdir -p -m <mode> dir` (the mode on the last directory,
 * as GNU mkdir sets it, setgid included; the parents get the umask's and inherit a setgid parent's group).
 */
export async function ensureDir(dir: string, mode: number): Promise<void> {
  try {
    if ((await stat(dir)).isDirectory()) return;
  } catch {
    // missing: create it
  }
  try {
    await mkdir(dir, { recursive: true });
    await chmod(dir, mode);
  } catch {
    // mkdir's non-zero exit is not looked at by the dialplan either
  }
}

/** CONVERT_DETAIL values of app_convert (asterisk/app_convert.c), the Convert() step's outcome. */
export type ConvertDetail =
  | 'converted'
  | 'input-missing'
  | 'input-not-regular'
  | 'input-unreadable'
  | 'input-empty'
  | 'input-too-large'
  | 'input-corrupt'
  | 'output-dir-failed'
  | 'output-failed';

/** What Convert() sets: CONVERT_DETAIL, CONVERT_REASON, CONVERT_BYTES, and on success the hashes and facts. */
export interface ConvertAppResult {
  readonly detail: ConvertDetail;
  readonly reason: string;
  readonly bytes: number;
  /** CONVERT_INPUT_SHA256: one per leg, separated by a space. */
  readonly inputSha256?: string;
  readonly wavSha256?: string;
  /** CONVERT_AUDIO (src/audio/facts.ts formatAudio). */
  readonly audio?: string;
}

/** app_convert's bound: the RIFF sizes are 32-bit, so at most this many whole frames fit a WAV. */
export const CONVERT_MAX_FRAMES = Math.floor((0xffffffff - 36) / 320);

/**
 * Convert(${GSM_PATH}[&${GSM_PATH2}],${WAV_PATH},d) of priority 22, as app_convert does it: per leg
 * lstat (a symlink, FIFO, directory or device is refused without being opened), no whole frame, too
 * long for a WAV; the output's directories (mode 2775); a frame libgsm refuses; then the decode into
 * the temp file and the rename. The decoder is sox here (`-M` for two legs: it pads the shorter with
 * silence, as the module does); the module uses Asterisk's codec_gsm: the same samples.
 */
export async function convertApp(
  job: ConvertJob & { readonly gsmPath2: string },
  wavDir: string,
  children: Set<ChildProcess>,
): Promise<ConvertAppResult> {
  const fail = (detail: ConvertDetail, reason: string): ConvertAppResult => ({ detail, reason, bytes: 0 });
  const paths = job.gsmPath2 === '' ? [job.gsmPath] : [job.gsmPath, job.gsmPath2];
  const what = (i: number): string => (paths.length === 1 ? 'the input' : `leg ${i + 1}`);
  const frames: number[] = [];
  for (const [i, p] of paths.entries()) {
    let size: number;
    try {
      const st = await lstat(p);
      if (!st.isFile()) return fail('input-not-regular', `${what(i)} is not a regular file but ${kindOf(st)}: ${p}`);
      size = st.size;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return fail('input-missing', `${what(i)} does not exist: ${p}`);
      return fail('input-unreadable', `cannot stat ${what(i)} ${p}: ${String(code)}`);
    }
    if (size < GSM_FRAME_BYTES) return fail('input-empty', `${what(i)} holds no whole GSM frame (${size} bytes): ${p}`);
    frames.push(Math.floor(size / GSM_FRAME_BYTES));
  }
  for (const [i, p] of paths.entries()) {
    if (frames[i]! > Math.floor(CONVERT_MAX_FRAMES / paths.length))
      return fail('input-too-large', `${what(i)} (${(await stat(p)).size} bytes) is longer than a WAV file can hold: ${p}`);
  }
  try {
    await makeDirs(wavDir);
  } catch (error) {
    return fail('output-dir-failed', `cannot create the output directory ${wavDir}: ${String((error as { code?: unknown }).code)}`);
  }
  const inputs = await Promise.all(paths.map((p) => readFile(p)));
  for (const [i, data] of inputs.entries()) {
    const bad = firstBadFrame(data, frames[i]!);
    if (bad !== undefined)
      return fail('input-corrupt', `${paths.length === 1 ? '' : `${what(i)}: `}GSM frame ${bad} of ${frames[i]} cannot be decoded`);
  }
  const status = await runSox(job, children, paths.length === 1 ? soxArgs(job.gsmPath, job.tmpPath) : soxMergeArgs(paths, job.tmpPath));
  const want = 44 + 320 * paths.length * Math.max(...frames);
  if (status !== 'SUCCESS' || (await statSize(job.tmpPath)) !== want) {
    await rm(job.tmpPath, { force: true }).catch(() => undefined);
    return fail('output-failed', `cannot write the output: sox ended with ${status}`);
  }
  const wav = await readFile(job.tmpPath);
  try {
    await rename(job.tmpPath, job.wavPath);
  } catch (error) {
    await rm(job.tmpPath, { force: true }).catch(() => undefined);
    return fail('output-failed', `cannot rename ${job.tmpPath} into place: ${String((error as { code?: unknown }).code)}`);
  }
  const facts = audioFacts(
    wav.subarray(44),
    paths.length,
    frames.map((f) => f * 160),
  );
  return {
    detail: 'converted',
    reason: 'converted',
    bytes: want,
    inputSha256: inputs.map(sha256).join(' '),
    wavSha256: sha256(wav),
    audio: formatAudio(facts),
  };
}

/** sox merging two GSM legs into one 2-channel WAV (`-M`: channel i = input i, the shorter padded). */
export function soxMergeArgs(gsmPaths: readonly string[], outPath: string): string[] {
  return [
    '-M',
    ...gsmPaths.flatMap((p) => ['-t', 'gsm', p]),
    '-r',
    '8000',
    '-c',
    String(gsmPaths.length),
    '-e',
    'signed-integer',
    '-b',
    '16',
    '-t',
    'wav',
    outPath,
  ];
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/**
 * The 1-based number of the first whole frame libgsm refuses, or undefined: gsm_decode checks only
 * that a frame's first nibble is GSM's signature 0xD (codec_gsm then stops the conversion there).
 */
function firstBadFrame(data: Buffer, frames: number): number | undefined {
  for (let i = 0; i < frames; i++) if (data[i * GSM_FRAME_BYTES]! >> 4 !== 0xd) return i + 1;
  return undefined;
}

/** A leg with a frame untoast refuses (the two-leg program checks each leg's decoded size; sox -M pads a failed one). */
async function anyBadFrame(legs: readonly string[], frames: readonly number[]): Promise<boolean> {
  for (const [i, g] of legs.entries()) if (firstBadFrame(await readFile(g), frames[i]!) !== undefined) return true;
  return false;
}

/** Each missing directory of `dir` created with mode 2775 exactly (app_convert's make_dirs: mkdir, then chmod). */
async function makeDirs(dir: string): Promise<void> {
  const parts = dir.split('/');
  for (let i = 2; i <= parts.length; i++) {
    const sub = parts.slice(0, i).join('/');
    try {
      await mkdir(sub);
      await chmod(sub, 0o2775);
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'EEXIST' || !(await stat(sub)).isDirectory()) throw error;
    }
  }
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'a device';
}

/** What `instant` mode reports: the WAV it wrote and, for the Convert() step, the facts app_convert would report. */
export interface InstantWav {
  readonly bytes: number;
  readonly inputSha256: string;
  readonly wavSha256: string;
  readonly audio: string;
}

const instantCache = new Map<string, string>();

/**
 * `instant` mode's conversion, synchronous (the benchmark path: the whole job goes out in one
 * write): a WAV of the right size for its inputs (none for a missing one: instant mode does not look), header then
 * silence (a sparse file: ftruncate), so the bridge's proof of the output holds; the hashes of the
 * inputs and of that WAV, and the facts of silence. Hashes are cached by file and size.
 */
export function instantWav(gsmPaths: readonly string[], wavPath: string): InstantWav {
  const stats = gsmPaths.map((p) => statSync(p, { throwIfNoEntry: false }));
  const frames = stats.map((st) => (st === undefined ? 0 : Math.floor(st.size / GSM_FRAME_BYTES)));
  const channels = gsmPaths.length;
  const dataBytes = 320 * channels * Math.max(...frames);
  const header = wavHeader(channels, dataBytes);
  mkdirSync(wavPath.slice(0, wavPath.lastIndexOf('/')), { recursive: true });
  const fd = openSync(wavPath, 'w');
  try {
    writeSync(fd, header);
    ftruncateSync(fd, 44 + dataBytes);
  } finally {
    closeSync(fd);
  }
  const cached = (key: string, make: () => string): string => {
    let v = instantCache.get(key);
    if (v === undefined) instantCache.set(key, (v = make()));
    return v;
  };
  const inputSha256 = gsmPaths
    .map((p, i) => {
      const st = stats[i];
      return st === undefined ? '' : cached(`in:${p}:${st.size}:${st.mtimeMs}`, () => sha256(readFileSync(p)));
    })
    .join(' ');
  const wavSha256 = cached(`wav:${channels}:${dataBytes}`, () => sha256(Buffer.concat([header, Buffer.alloc(dataBytes)])));
  const audio = formatAudio(
    frames.map((f) => ({ duration_ms: f * 20, peak_dbfs: -120, rms_dbfs: -120, silence_ratio: 1, clipped_ratio: 0 })),
  );
  return { bytes: 44 + dataBytes, inputSha256, wavSha256, audio };
}

/** A lying step's output (OutcomeOverride 'short-ok'): a header claiming 1 s of audio, and 100 bytes of it. */
export function writeShortWav(wavPath: string): number {
  const header = wavHeader(1, 16000);
  mkdirSync(wavPath.slice(0, wavPath.lastIndexOf('/')), { recursive: true });
  const data = Buffer.concat([header, Buffer.alloc(100)]);
  const fd = openSync(wavPath, 'w');
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
  return data.length;
}
