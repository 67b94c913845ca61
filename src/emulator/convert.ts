/**
 * The conversion step of the shipped dialplan (priorities 11–15), for real: the sox command line of
 * config/asterisk/variants/step-sox.conf (the shipped step decodes with untoast instead, into the same
 * WAV bytes; the emulator keeps sox so that `npm test` and the demo need no libgsm-tools), bounded like
 * the step's perl (`alarm`, then SIGKILL), written to the temp file and renamed onto the target,
 * the temp file removed on failure. Reports the step's status (priority 13). No shell is involved: the
 * arguments go to sox as an argv, so even a path the dialplan would have refused cannot inject.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdir, rename, rm, stat } from 'node:fs/promises';

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
export async function convert(job: ConvertJob, children: Set<ChildProcess>): Promise<SystemStatus> {
  let status = await runSox(job, children);
  // The shipped step renames only a whole output (`-s $tmp == 44 + $n`): sox exits 0 on a corrupt
  // recording with an empty or short WAV, which the step's size check turns into APPERROR.
  if (status === 'SUCCESS' && (await statSize(job.tmpPath)) !== wholeWavBytes(await statSize(job.gsmPath))) status = 'APPERROR';
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

function runSox(job: ConvertJob, children: Set<ChildProcess>): Promise<SystemStatus> {
  return new Promise((resolve) => {
    let child: ChildProcess;
    try {
      child = spawn(job.soxPath, soxArgs(job.gsmPath, job.tmpPath), { stdio: 'ignore' });
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

/** The size of the WAV the shipped step accepts: a 44-byte header and 320 bytes per whole 33-byte GSM frame. */
export function wholeWavBytes(gsmBytes: number): number {
  return 44 + 320 * Math.floor(gsmBytes / 33);
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
