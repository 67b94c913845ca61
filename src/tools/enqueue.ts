/**
 * `audio-convert enqueue`: the producer. Turns files into job messages on the input queue
 * (docs/messages.md "Job"), with publisher confirms; with `--wait` it listens on its own reply
 * queue for the result of each job and prints a summary. It validates only its arguments: the
 * service is the one validator of paths.
 */
import { randomBytes } from 'node:crypto';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Connection, Envelope } from 'rabbitmq-client';
import type { Config } from '../config.js';
import { brokerNames, explainDeclareMismatch, mainQueueDeclare } from '../queue/broker.js';
import { bulkBrokerNames } from '../worker/classes.js';
import { gsmFiles, mapBounded, TreeError, wavExists } from './enqueue-tree.js';
import { RabbitConnectError, connectRabbit } from './rabbit.js';
import { ReplyCollector, type Output } from './replies.js';
import { formatSummary, totalsOf } from './summary.js';
import { errorText } from '../errors.js';
import { toJobIdChars } from '../names.js';

export const ENQUEUE_HELP = `audio-convert enqueue IN.gsm OUT.wav [--skip-existing] [--dry-run] [--bulk] [--wait] [--timeout SECONDS] [--config PATH]
audio-convert enqueue --dir GSM_DIR --out WAV_DIR [--recursive] [--skip-existing] [--dry-run] [--bulk] [--wait] [--timeout SECONDS] [--config PATH]

Puts conversion jobs on the input queue ([RabbitMQ] QueueName) with publisher confirms.
  IN.gsm OUT.wav      one job; paths are made absolute
  --dir GSM_DIR       one job per *.gsm file in GSM_DIR (sorted by path) ...
  --out WAV_DIR       ... each writing WAV_DIR/<same name>.wav
  --recursive, -r     also every subdirectory of GSM_DIR (not hidden ones, not symlinked ones);
                      the tree is mirrored: GSM_DIR/2026/12/a.gsm → WAV_DIR/2026/12/a.wav
  --skip-existing     no job for a recording whose WAV already exists (a WAV at its final name
                      is complete: the dialplan renames it into place); the count is reported
  --dry-run           print the jobs that would be queued ("would queue ID GSM → WAV"); send nothing
  --bulk              bulk work (a backfill): queue on <QueueName>.bulk, which the service takes
                      only with the capacity live jobs leave free
  --wait, -w          wait for every job's result (progress on stderr), then print a summary;
                      exit 0 when all converted, 1 when any failed or the timeout passed
  --timeout SECONDS   how long --wait waits for all results (default 300)

Each job gets an id made of its file name and a short random suffix (e.g. call-123-1f0c2a).
The paths are checked by the service, not here: a refused path comes back as a failed result.
Without --wait: one line per job on stdout ("queued ID → WAV"), then a count on stderr; exit 0
once the broker has them all (also when --skip-existing left nothing to do).
`;

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

export interface EnqueueIo {
  readonly stdout: Output;
  readonly stderr: Output;
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
/** Publishes in flight at once: confirms pipeline, memory stays bounded for big directories. */
const PUBLISH_WINDOW = 256;
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
      throw new EnqueueUsageError(`expected IN.gsm OUT.wav (got ${positionals.length} argument${positionals.length === 1 ? '' : 's'}), or --dir GSM_DIR --out WAV_DIR`);
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

/**
 * Runs `enqueue`. Resolves with the exit code: 0 ok (all converted, with --wait), 1 runtime
 * failure, failed jobs or timeout, 2 bad arguments (already printed).
 */
export async function runEnqueue(config: Config, args: EnqueueArgs, io: EnqueueIo): Promise<number> {
  let plan: EnqueuePlan;
  try {
    plan = await planEnqueue(config, args);
  } catch (error) {
    if (!(error instanceof EnqueueUsageError)) throw error;
    io.stderr.write(`audio-convert enqueue: ${error.message}\nTry 'audio-convert enqueue --help'.\n`);
    return 2;
  }
  const skipped = plan.skipped > 0 ? ` (skipped ${plan.skipped} whose WAV exists)` : '';
  if (plan.jobs.length === 0 && plan.skipped > 0) {
    io.stderr.write(`nothing to enqueue: all ${plan.skipped} recordings have their WAV already\n`);
    return 0;
  }
  if (plan.jobs.length === 0) {
    io.stderr.write(`audio-convert enqueue: no *${config.worker.inputExtension} files in ${plan.dir ?? '?'}: nothing to enqueue\n`);
    return 1;
  }
  if (plan.dryRun) {
    for (const job of plan.jobs) io.stdout.write(`would queue ${job.job_id} ${job.gsm_path} → ${job.wav_path}\n`);
    io.stderr.write(`dry run: would queue ${plan.jobs.length} job${plan.jobs.length === 1 ? '' : 's'}${skipped}; nothing sent\n`);
    return 0;
  }
  let connection: Connection;
  try {
    connection = await connectRabbit(config, 'audio-convert enqueue');
  } catch (error) {
    if (!(error instanceof RabbitConnectError)) throw error;
    io.stderr.write(`audio-convert enqueue: ${error.problem}\n  fix: ${error.fix}\n`);
    return 1;
  }
  try {
    return await enqueueOn(connection, config, plan, io);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

async function enqueueOn(connection: Connection, config: Config, plan: EnqueuePlan, io: EnqueueIo): Promise<number> {
  const names = plan.bulk ? bulkBrokerNames(brokerNames(config)) : brokerNames(config);
  const declared = await declareInputQueue(connection, mainQueueDeclare(names));
  if (declared !== undefined) {
    io.stderr.write(`audio-convert enqueue: ${declared}\n`);
    return 1;
  }
  const collector = plan.wait ? await ReplyCollector.open(connection, plan.jobs.map((j) => j.job_id), io.stderr) : undefined;
  const publisher = connection.createPublisher({ confirm: true });
  const started = Date.now();
  let sent = 0;
  try {
    for (let i = 0; i < plan.jobs.length; i += PUBLISH_WINDOW) {
      const window = plan.jobs.slice(i, i + PUBLISH_WINDOW);
      const replies = collector === undefined ? {} : { replyTo: collector.queue };
      await Promise.all(window.map((job) => publisher.send(jobEnvelope(names.queueName, job.job_id, replies), job)));
      sent += window.length;
      if (collector === undefined) for (const job of window) io.stdout.write(`queued ${job.job_id} → ${job.wav_path}\n`);
    }
  } catch (error) {
    await collector?.close();
    io.stderr.write(`audio-convert enqueue: publishing failed after ${sent} of ${plan.jobs.length} jobs were queued: ${errorText(error)}\n`);
    return 1;
  } finally {
    await publisher.close().catch(() => undefined);
  }
  const queued = `queued ${sent} job${sent === 1 ? '' : 's'} on '${names.queueName}'${plan.skipped > 0 ? ` (skipped ${plan.skipped} whose WAV exists)` : ''}`;
  if (collector === undefined) {
    io.stderr.write(`${queued}\n`);
    return 0;
  }
  io.stderr.write(`${queued}; waiting up to ${plan.timeoutMs / 1000} s for the results\n`);
  const outcome = await collector.wait(plan.timeoutMs);
  const wallMs = (collector.lastAt ?? Date.now()) - started;
  const rows = plan.jobs.map((job) => ({ jobId: job.job_id, result: collector.results.get(job.job_id) }));
  io.stdout.write(formatSummary(rows, wallMs));
  const totals = totalsOf(rows);
  if (outcome !== 'complete') {
    const missing = rows.filter((r) => r.result === undefined).map((r) => r.jobId);
    const why = outcome === 'timeout' ? `timed out after ${plan.timeoutMs / 1000} s` : outcome;
    io.stderr.write(`audio-convert enqueue: ${why}: no result for ${missing.length} job${missing.length === 1 ? '' : 's'}: ${missing.join(', ')}\n`);
    io.stderr.write(`  (the jobs stay queued; their results still go to the '${names.resultsExchange}' exchange)\n`);
    return 1;
  }
  return totals.failed === 0 ? 0 : 1;
}

/** A job message: persistent JSON, message_id = job id; with --wait, reply_to and correlation_id too. */
function jobEnvelope(queue: string, jobId: string, replies: { replyTo?: string }): Envelope {
  return {
    exchange: '',
    routingKey: queue,
    durable: true,
    contentType: 'application/json',
    messageId: jobId,
    ...(replies.replyTo === undefined ? {} : { replyTo: replies.replyTo, correlationId: jobId }),
  };
}

/** Declares the input queue as the service does. Resolves with an explanation on an argument mismatch. */
async function declareInputQueue(connection: Connection, declare: ReturnType<typeof mainQueueDeclare>): Promise<string | undefined> {
  const channel = await connection.acquire();
  try {
    await channel.queueDeclare(declare);
    return undefined;
  } catch (error) {
    const mismatch = explainDeclareMismatch(error, declare.queue);
    if (mismatch === undefined) throw error;
    return mismatch;
  } finally {
    // A failed declare has already closed the channel; closing again is harmless.
    await channel.close().catch(() => undefined);
  }
}

