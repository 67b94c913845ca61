/**
 * `audio-convert enqueue`, the planning half: the command line and the files it names become the
 * list of job bodies to send (with `--skip-existing`, minus those whose WAV exists). Sends nothing.
 */
import { randomBytes } from 'node:crypto';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Config } from '../config.js';
import { toJobIdChars } from '../characters.js';
import { gsmFiles, mapBounded, TreeError, wavExists } from './enqueue-tree.js';

/** A bad command line: printed with a hint, exit code 2. */
export class EnqueueUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EnqueueUsageError';
  }
}

/** The parsed command line (values of node:util parseArgs). */
export interface EnqueueArgs {
  readonly positionals: readonly string[];
  readonly dir?: string | undefined;
  readonly out?: string | undefined;
  readonly wait?: boolean | undefined;
  readonly recursive?: boolean | undefined;
  readonly skipExisting?: boolean | undefined;
  readonly dryRun?: boolean | undefined;
  readonly bulk?: boolean | undefined;
  /** Seconds, as typed (a string from parseArgs) or a number. */
  readonly timeout?: string | number | undefined;
}

/** One job message body, field order as in docs/messages.md. */
export interface JobBody {
  readonly gsm_path: string;
  readonly wav_path: string;
  readonly job_id: string;
}

export interface EnqueuePlan {
  readonly jobs: readonly JobBody[];
  readonly wait: boolean;
  readonly timeoutMs: number;
  /** Set with --dir: the directory read (for messages). */
  readonly dir?: string;
  /** Recordings left out by --skip-existing because their WAV is there. */
  readonly skipped: number;
  readonly dryRun: boolean;
  /** --bulk: the bulk queue instead of the input queue. */
  readonly bulk: boolean;
}

const DEFAULT_TIMEOUT_S = 300;
const JOB_ID_STEM_MAX = 100;

/**
 * A readable, unique job id: the file's name without extension, reduced to the job id characters,
 * and a random suffix so that ids stay unique across runs. `taken` avoids repeats within a run.
 */
export function jobIdFor(file: string, taken: Set<string> = new Set()): string {
  const name = basename(file, extname(file));
  const stem = toJobIdChars(name).slice(0, JOB_ID_STEM_MAX) || 'job';
  let id: string;
  do id = `${stem}-${randomBytes(3).toString('hex')}`;
  while (taken.has(id));
  taken.add(id);
  return id;
}

/** Command line → the jobs to send. Throws {@link EnqueueUsageError} for bad arguments. */
export async function planEnqueue(config: Config, args: EnqueueArgs): Promise<EnqueuePlan> {
  const wait = args.wait === true;
  const dryRun = args.dryRun === true;
  if (dryRun && wait) throw new EnqueueUsageError('--dry-run sends nothing, so there is nothing to --wait for');
  const timeoutMs = parseTimeout(args.timeout, wait);
  const planned = await plannedJobs(config, args);
  const bulk = args.bulk === true;
  if (args.skipExisting !== true) return { ...planned, wait, timeoutMs, skipped: 0, dryRun, bulk };
  // Bounded: a stat per recording, a few dozen at once, however big the archive.
  const exists = await mapBounded(planned.jobs, 32, (job) => wavExists(job.wav_path));
  const jobs = planned.jobs.filter((_, i) => !exists[i]);
  return { ...planned, jobs, wait, timeoutMs, skipped: planned.jobs.length - jobs.length, dryRun, bulk };
}

async function plannedJobs(config: Config, args: EnqueueArgs): Promise<{ jobs: JobBody[]; dir?: string }> {
  const positionals = args.positionals;
  const taken = new Set<string>();
  if (args.dir === undefined) {
    if (args.out !== undefined) throw new EnqueueUsageError('--out goes with --dir GSM_DIR; for one file give IN.gsm OUT.wav');
    if (args.recursive === true) throw new EnqueueUsageError('--recursive goes with --dir GSM_DIR');
    if (positionals.length !== 2) {
      throw new EnqueueUsageError(
        `expected IN.gsm OUT.wav (got ${positionals.length} argument${positionals.length === 1 ? '' : 's'}), or --dir GSM_DIR --out WAV_DIR`,
      );
    }
    const [input, output] = positionals as [string, string];
    if (input === '' || output === '') throw new EnqueueUsageError('IN.gsm and OUT.wav must not be empty');
    return { jobs: [{ gsm_path: resolve(input), wav_path: resolve(output), job_id: jobIdFor(input, taken) }] };
  }
  if (positionals.length > 0) throw new EnqueueUsageError(`--dir takes no file arguments (got ${positionals.join(' ')})`);
  if (args.out === undefined || args.out === '') throw new EnqueueUsageError('--dir GSM_DIR needs --out WAV_DIR');
  const dir = resolve(args.dir);
  const outDir = resolve(args.out);
  const { inputExtension, outputExtension } = config.worker;
  let files: string[];
  try {
    files = await gsmFiles(dir, inputExtension, args.recursive === true);
  } catch (error) {
    if (error instanceof TreeError) throw new EnqueueUsageError(error.message);
    throw error;
  }
  const jobs = files.map((rel) => ({
    gsm_path: join(dir, rel),
    wav_path: join(outDir, dirname(rel), basename(rel, inputExtension) + outputExtension),
    job_id: jobIdFor(rel, taken),
  }));
  return { jobs, dir };
}

function parseTimeout(value: string | number | undefined, wait: boolean): number {
  if (value === undefined) return DEFAULT_TIMEOUT_S * 1000;
  if (!wait) throw new EnqueueUsageError('--timeout only applies with --wait');
  const seconds = typeof value === 'number' ? value : Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0 || (typeof value === 'string' && value.trim() === '')) {
    throw new EnqueueUsageError(`--timeout ${String(value)}: must be a number of seconds greater than 0`);
  }
  return Math.round(seconds * 1000);
}
