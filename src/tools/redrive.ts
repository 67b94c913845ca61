/**
 * `audio-convert redrive`: moves dead-letter records back to the input queue as fresh jobs, once
 * what made them fail is fixed (a mount, a full disk, permissions).
 *
 * Nothing is lost if it is interrupted: each record is taken with basic.get (not acked), its job
 * is published with a publisher confirm, and only then is the record acked. A kill between the two
 * leaves the job in both places (at-least-once; re-running a job is harmless). Records that do not
 * match are held unacked until the scan ends and then all handed back at once (basic.nack,
 * requeue): RabbitMQ puts them back at their original positions, so their order is kept — and if
 * the process dies instead, the broker does the same when the connection closes. The scan covers
 * the records present when it starts (the queue's length then), so records dead-lettered meanwhile
 * (even a re-driven job failing again) are not taken twice in one run.
 */
import type { Channel, Connection, SyncMessage } from 'rabbitmq-client';
import type { Config } from '../config.js';
import { RabbitConnectError, connectRabbit } from './rabbit.js';
import { matches, toRedrive, type RedriveFilter } from './redrive-record.js';
import type { Output } from './output.js';
import { errorText } from '../errors.js';

export const REDRIVE_HELP = `audio-convert redrive [--code CODE]... [--job-id ID]... [--limit N] [--dry-run] [--config PATH]

Moves dead-letter records ([RabbitMQ] DeadLetterQueue) back to the input queue as fresh jobs,
after the cause of the failure has been fixed. Each job goes back with its original body,
message_id, correlation_id and headers, the attempts count reset, and the header
x-audioconvert-redriven = how many times it has been re-driven.
  --code CODE      only records with this error code (repeatable: any of them), e.g. INPUT_MISSING
  --job-id ID      only records of this job id (repeatable); with --code both must match
  --limit N        move at most N records
  --dry-run        list what would move; move nothing
Records that do not match stay in the dead-letter queue, in their order. A job goes back to the
queue it failed from (the input queue, or its bulk queue). Each record is acked only after the
broker confirmed its job: interrupted, nothing is lost (a job may then be in both queues).
Prints one line per record moved and a summary; exit 0, or 1 when the broker failed.
`;

export class RedriveUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RedriveUsageError';
  }
}

export interface RedriveArgs extends RedriveFilter {
  readonly limit: number | undefined;
  readonly dryRun: boolean;
}

/** The parsed command line: repeatable --code / --job-id, a positive --limit. */
export function redriveArgs(values: { code?: unknown; 'job-id'?: unknown; limit?: unknown; 'dry-run'?: unknown }): RedriveArgs {
  const list = (v: unknown): string[] =>
    Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : typeof v === 'string' ? [v] : [];
  let limit: number | undefined;
  if (typeof values.limit === 'string') {
    limit = Number(values.limit);
    if (!/^\d+$/.test(values.limit) || limit < 1) throw new RedriveUsageError(`--limit must be a whole number ≥ 1, got '${values.limit}'`);
  }
  return { codes: list(values.code), jobIds: list(values['job-id']), limit, dryRun: values['dry-run'] === true };
}

export interface RedriveTotals {
  moved: number;
  notMatching: number;
  cannot: number;
  scanned: number;
}

/** Runs the tool; resolves with the exit code. */
export async function runRedrive(
  config: Config,
  args: RedriveArgs,
  io: { stdout: Output; stderr: Output },
  inputQueues: readonly string[],
): Promise<number> {
  let connection: Connection;
  try {
    connection = await connectRabbit(config, 'audio-convert redrive');
  } catch (error) {
    if (!(error instanceof RabbitConnectError)) throw error;
    io.stderr.write(`audio-convert redrive: ${error.problem}\nfix: ${error.fix}\n`);
    return 1;
  }
  try {
    const totals = await redrive(connection, config.rabbitmq.deadLetterQueue, inputQueues, args, io.stdout);
    const verb = args.dryRun ? 'would move' : 'moved';
    io.stdout.write(
      `${verb} ${totals.moved} of ${totals.scanned} records looked at; left ${totals.notMatching} not matching` +
        `${totals.cannot > 0 ? ` and ${totals.cannot} that cannot be re-driven` : ''} in ${config.rabbitmq.deadLetterQueue}\n`,
    );
    return 0;
  } catch (error) {
    io.stderr.write(`audio-convert redrive: ${errorText(error)}\n`);
    return 1;
  } finally {
    await connection.close();
  }
}

/**
 * The scan. `inputQueues[0]` is the input queue; a record whose original_queue is another of
 * `inputQueues` goes back there, any other record to `inputQueues[0]`.
 */
export async function redrive(
  connection: Connection,
  deadLetterQueue: string,
  inputQueues: readonly string[],
  args: RedriveArgs,
  out: Output,
): Promise<RedriveTotals> {
  const home = inputQueues[0];
  if (home === undefined) throw new Error('no input queue');
  const ch = await connection.acquire();
  const totals: RedriveTotals = { moved: 0, notMatching: 0, cannot: 0, scanned: 0 };
  try {
    const { messageCount } = await declarePassive(ch, deadLetterQueue, 'the dead-letter queue');
    const present = new Set<string>();
    if (!args.dryRun) await ch.confirmSelect();
    while (totals.scanned < messageCount && (args.limit === undefined || totals.moved < args.limit)) {
      const message = await ch.basicGet({ queue: deadLetterQueue, noAck: false });
      if (message === undefined) break;
      totals.scanned++;
      const target = await moveOne(ch, message, args, { inputQueues, home, present, connection }, out);
      if (target === 'moved') totals.moved++;
      else if (target === 'not-matching') totals.notMatching++;
      else totals.cannot++;
    }
    // Every record still held goes back where it was, in order (delivery tag 0 + multiple = all).
    ch.basicNack({ deliveryTag: 0, multiple: true, requeue: true });
    return totals;
  } finally {
    await ch.close();
  }
}

interface Targets {
  readonly inputQueues: readonly string[];
  readonly home: string;
  /** Queues known to exist: a publish to a missing queue is confirmed and dropped. */
  readonly present: Set<string>;
  readonly connection: Connection;
}

async function moveOne(
  ch: Channel,
  message: SyncMessage,
  args: RedriveArgs,
  targets: Targets,
  out: Output,
): Promise<'moved' | 'not-matching' | 'cannot'> {
  const job = toRedrive(message.body, message.headers);
  const { record } = job;
  if (!matches(record, args)) return 'not-matching';
  if (!job.ok) {
    out.write(`left job_id=${record.jobId} code=${record.code}: ${job.problem}\n`);
    return 'cannot';
  }
  const queue =
    record.originalQueue !== undefined && targets.inputQueues.includes(record.originalQueue) ? record.originalQueue : targets.home;
  const line = `job_id=${record.jobId} code=${record.code} attempts=${record.attempts} redriven=${job.redriven} → ${queue}\n`;
  if (args.dryRun) {
    out.write(`would move ${line}`);
    return 'moved';
  }
  if (!targets.present.has(queue)) {
    // On the connection, not on `ch`: a missing queue closes the channel that asked.
    await declarePassive(targets.connection, queue, 'the input queue');
    targets.present.add(queue);
  }
  await ch.basicPublish(
    {
      exchange: '',
      routingKey: queue,
      durable: true,
      contentType: 'application/json',
      headers: job.headers,
      ...(job.messageId === undefined ? {} : { messageId: job.messageId }),
      ...(message.correlationId === undefined ? {} : { correlationId: message.correlationId }),
    },
    job.body,
  );
  ch.basicAck({ deliveryTag: message.deliveryTag });
  out.write(`moved ${line}`);
  return 'moved';
}

async function declarePassive(on: Channel | Connection, queue: string, what: string): Promise<{ messageCount: number }> {
  try {
    return await on.queueDeclare({ queue, passive: true });
  } catch (error) {
    throw new Error(`${what} '${queue}' does not exist or cannot be read: ${errorText(error)}`, { cause: error });
  }
}
