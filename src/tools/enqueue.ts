/**
 * `audio-convert enqueue`: the producer. Turns files into job messages on the input queue
 * (docs/messages.md "Job"), with publisher confirms; with `--wait` it listens on its own reply
 * queue for the result of each job and prints a summary. It validates only its arguments: the
 * service is the one validator of paths. What to send is planned in enqueue-plan.ts.
 */
import type { Connection, Envelope } from 'rabbitmq-client';
import type { Config } from '../config.js';
import { errorText } from '../errors.js';
import { brokerNames, explainDeclareMismatch, mainQueueDeclare } from '../queue/broker.js';
import { bulkBrokerNames } from '../worker/lanes.js';
import { EnqueueUsageError, planEnqueue, type EnqueueArgs, type EnqueuePlan, type JobBody } from './enqueue-plan.js';
import { RabbitConnectError, connectRabbit } from './rabbit.js';
import { ReplyCollector } from './enqueue-wait.js';
import type { Output } from './output.js';
import { formatSummary, totalsOf } from './summary.js';

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

/** Publishes in flight at once: confirms pipeline, memory stays bounded for big directories. */
const PUBLISH_WINDOW = 256;

export interface EnqueueIo {
  readonly stdout: Output;
  readonly stderr: Output;
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
  const ids = plan.jobs.map((j) => j.job_id);
  const collector = plan.wait ? await ReplyCollector.open(connection, ids, io.stderr) : undefined;
  const started = Date.now();
  const sent = await publishAll(connection, names.queueName, plan.jobs, collector?.queue, io);
  if (sent === undefined) {
    await collector?.close();
    return 1;
  }
  const skipped = plan.skipped > 0 ? ` (skipped ${plan.skipped} whose WAV exists)` : '';
  const queued = `queued ${sent} job${sent === 1 ? '' : 's'} on '${names.queueName}'${skipped}`;
  if (collector === undefined) {
    io.stderr.write(`${queued}\n`);
    return 0;
  }
  io.stderr.write(`${queued}; waiting up to ${plan.timeoutMs / 1000} s for the results\n`);
  return reportResults(collector, plan, started, names.resultsExchange, io);
}

/**
 * Publishes every job with confirms, {@link PUBLISH_WINDOW} at a time; prints each one unless
 * replies are awaited. Resolves with the number sent, or undefined after saying why it stopped.
 */
async function publishAll(
  connection: Connection,
  queue: string,
  jobs: readonly JobBody[],
  replyTo: string | undefined,
  io: EnqueueIo,
): Promise<number | undefined> {
  const publisher = connection.createPublisher({ confirm: true });
  let sent = 0;
  try {
    for (let i = 0; i < jobs.length; i += PUBLISH_WINDOW) {
      const window = jobs.slice(i, i + PUBLISH_WINDOW);
      await Promise.all(window.map((job) => publisher.send(jobEnvelope(queue, job.job_id, { replyTo }), job)));
      sent += window.length;
      if (replyTo === undefined) for (const job of window) io.stdout.write(`queued ${job.job_id} → ${job.wav_path}\n`);
    }
    return sent;
  } catch (error) {
    io.stderr.write(`audio-convert enqueue: publishing failed after ${sent} of ${jobs.length} jobs were queued: ${errorText(error)}\n`);
    return undefined;
  } finally {
    await publisher.close().catch(() => undefined);
  }
}

/** --wait: the summary table once every result came back (exit 0 when all converted), or what is missing. */
async function reportResults(
  collector: ReplyCollector,
  plan: EnqueuePlan,
  started: number,
  resultsExchange: string,
  io: EnqueueIo,
): Promise<number> {
  const outcome = await collector.wait(plan.timeoutMs);
  const wallMs = (collector.lastAt ?? Date.now()) - started;
  const rows = plan.jobs.map((job) => ({ jobId: job.job_id, result: collector.results.get(job.job_id) }));
  io.stdout.write(formatSummary(rows, wallMs));
  if (outcome !== 'complete') {
    const missing = rows.filter((r) => r.result === undefined).map((r) => r.jobId);
    const why = outcome === 'timeout' ? `timed out after ${plan.timeoutMs / 1000} s` : outcome;
    const count = `${missing.length} job${missing.length === 1 ? '' : 's'}`;
    io.stderr.write(`audio-convert enqueue: ${why}: no result for ${count}: ${missing.join(', ')}\n`);
    io.stderr.write(`  (the jobs stay queued; their results still go to the '${resultsExchange}' exchange)\n`);
    return 1;
  }
  return totalsOf(rows).failed === 0 ? 0 : 1;
}

/** A job message: persistent JSON, message_id = job id; with --wait, reply_to and correlation_id too. */
function jobEnvelope(queue: string, jobId: string, replies: { replyTo: string | undefined }): Envelope {
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
