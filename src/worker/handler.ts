/**
 * The job handler: one AMQP message in, exactly one end for it out — converted (result + ack),
 * retried (delayed copy + ack), dead-lettered (failed result + DLQ record + ack), or left in the
 * queue (nack + requeue) when the deployment is broken or the service is stopping.
 * What to do is decided by policy.ts, from whatever happened; this file carries the action out,
 * logs it and counts it.
 */
import { randomUUID } from 'node:crypto';
import { ConsumerStatus, type AsyncMessage } from 'rabbitmq-client';
import type { AppError } from '../errors.js';
import type { Originator } from './originate.js';
import { ATTEMPTS_HEADER, type BrokerPublisher, type JobEnvelope } from '../queue/broker.js';
import { invalidMessageFields, parseJob, type Job, type PathRules } from '../queue/message.js';
import { checkRealPaths } from '../queue/paths.js';
import { convertedResult, deadLetterEnvelope, failedResult } from '../queue/result.js';
import { RateLimit } from '../util/ratelimit.js';
import { asAppError, decide, type Action, type Happening } from './policy.js';
import type { ReleaseSlot } from './classes.js';
import { hold, raceAbandon } from './abandon.js';
import { mayLeaveTempFile, type TempFileReaper } from './tempfiles.js';
import type { Logger } from '../log.js';

/** At most one log line per this window for errors that are not ours (a storm shows on the metric). */
export const UNEXPECTED_LOG_WINDOW_MS = 10_000;
/** A message whose handling threw (AMQP failed under a publish) is held this long before it goes back. */
export const HOLD_BEFORE_REQUEUE_MS = 1000;

/** Counting hooks (main.ts binds them to the Prometheus metrics). */
export interface JobCounters {
  received(): void;
  inFlight(delta: 1 | -1): void;
  completed(result: 'converted' | 'failed', seconds: number): void;
  retried(code: string): void;
  deadLettered(code: string): void;
  requeued(): void;
  /** An error that is not one of the expected outcomes (INPUT_UNREADABLE, OUTPUT_UNREADABLE, INTERNAL). */
  unexpected(code: string): void;
}

/** What the handler needs from the rest of the service. */
export interface HandlerDeps {
  readonly queueName: string;
  readonly rules: PathRules;
  readonly jobTimeoutMs: number;
  readonly maxAttempts: number;
  readonly originator: Pick<Originator, 'run'>;
  readonly publisher: Pick<BrokerPublisher, 'publishResult' | 'publishRetry' | 'publishDeadLetter'>;
  readonly counters: JobCounters;
  readonly logger: Logger;
  /** Is AMI logged in right now? Checked before each attempt. */
  readonly amiConnected: () => boolean;
  /** The policy says: stop taking messages until this is fixed (Asterisk refused the Originate itself). */
  readonly pauseIntake: (error: AppError) => void;
  /** Aborted when the drain deadline of a shutdown passes: jobs still running go back to the queue. */
  readonly abandon: AbortSignal;
  /** Removes the temp file of an attempt that ended without a result, once it cannot be in flight. */
  readonly tempFiles: Pick<TempFileReaper, 'schedule'>;
  /**
   * Waits for one of the `Concurrency` slots (a conversion on Asterisk) and returns its release, or
   * undefined when the service is stopping. Held from the checks to the attempt's outcome only: the
   * result's publish, its confirm and the ack happen outside it, while the next job already runs.
   */
  readonly acquireSlot: () => Promise<ReleaseSlot | undefined>;
  readonly now?: () => Date;
}

/** One delivery, as finish() needs it. */
interface Delivery {
  readonly message: AsyncMessage;
  readonly envelope: JobEnvelope;
  readonly startedAt: Date;
  /** Attempts already made, from our header. */
  readonly attemptsBefore: number;
  /** Set once the message parsed as a job. */
  job?: Job;
}

interface Context {
  readonly deps: HandlerDeps;
  readonly now: () => Date;
  /** Rate limit of the log line for unexpected errors, shared by every job. */
  readonly storm: RateLimit;
}

/**
 * Creates the consumer callback. Every outcome, and every error thrown while checking a job, ends
 * in an action of the policy; a throw out of here means AMQP failed under a publish (the message
 * goes back to the broker, after a short hold so that a failing broker is not hammered).
 */
export function createJobHandler(deps: HandlerDeps): (message: AsyncMessage) => Promise<ConsumerStatus> {
  const ctx: Context = { deps, now: deps.now ?? ((): Date => new Date()), storm: new RateLimit(UNEXPECTED_LOG_WINDOW_MS) };
  return async (message) => {
    deps.counters.received();
    try {
      return await handle(ctx, message);
    } catch (error) {
      deps.counters.unexpected('INTERNAL');
      logStorm(ctx, 'job message could not be settled; it goes back to RabbitMQ', asAppError(error));
      await hold(HOLD_BEFORE_REQUEUE_MS, deps.abandon);
      throw error;
    }
  };
}

async function handle(ctx: Context, message: AsyncMessage): Promise<ConsumerStatus> {
  const delivery: Delivery = {
    message,
    envelope: { messageId: message.messageId, correlationId: message.correlationId, replyTo: message.replyTo, headers: message.headers },
    startedAt: ctx.now(),
    attemptsBefore: attemptsDone(message.headers),
  };
  const happening = await attempt(ctx.deps, delivery);
  const action = decide(happening, delivery.attemptsBefore, ctx.deps.maxAttempts);
  if (action.kind === 'requeue' && action.pauseIntake) ctx.deps.pauseIntake(action.error);
  return finish(ctx, delivery, action);
}

/**
 * Checks the message, then runs one attempt holding a slot; whatever happens is reported, never
 * thrown. The checks come first and take no slot: an invalid message is dead-lettered at once,
 * not after waiting behind the jobs on Asterisk. A job still waiting for a slot when the service
 * stops goes back untouched.
 */
async function attempt(deps: HandlerDeps, delivery: Delivery): Promise<Happening> {
  const { message } = delivery;
  try {
    delivery.job = parseJob(message.body, message.messageId, deps.rules);
    await checkRealPaths(delivery.job, deps.rules);
  } catch (error) {
    return { kind: 'thrown', error };
  }
  const release = await deps.acquireSlot();
  if (release === undefined) return { kind: 'abandoned', started: false };
  deps.counters.inFlight(1);
  try {
    return deps.abandon.aborted ? { kind: 'abandoned', started: false } : await attemptInSlot(deps, delivery, delivery.job);
  } finally {
    deps.counters.inFlight(-1);
    release();
  }
}

async function attemptInSlot(deps: HandlerDeps, delivery: Delivery, job: Job): Promise<Happening> {
  const { message } = delivery;
  // No child logger per job, and DEBUG lines only built when DEBUG is on: winston pushes even a
  // filtered line through its stream (~5 µs each), a cost paid for every job (docs/benchmarks.md).
  const debug = deps.logger.isLevelEnabled('debug');
  if (debug)
    deps.logger.debug('job received', {
      job_id: job.jobId,
      gsm_path: job.gsmPath,
      wav_path: job.wavPath,
      attempt: delivery.attemptsBefore + 1,
      redelivered: message.redelivered,
    });
  // Consuming is paused while AMI is down; a message that slipped in goes back without counting an attempt.
  if (!deps.amiConnected()) return { kind: 'ami-down' };
  const attemptId = randomUUID();
  if (debug) deps.logger.debug('job originated', { job_id: job.jobId, attempt: delivery.attemptsBefore + 1, attempt_id: attemptId });
  const attemptStart = Date.now();
  const run = deps.originator.run({ gsmPath: job.gsmPath, wavPath: job.wavPath, timeoutMs: deps.jobTimeoutMs, attemptId });
  const outcome = await raceAbandon(run, deps.abandon);
  if (mayLeaveTempFile(outcome)) deps.tempFiles.schedule(job.wavPath, attemptId, attemptStart);
  return outcome === 'abandoned' ? { kind: 'abandoned', started: true } : { kind: 'attempt', outcome };
}

/** Carries out the policy's action: publish first (with confirms), then ack — never the other way round. */
async function finish(ctx: Context, delivery: Delivery, action: Action): Promise<ConsumerStatus> {
  const { deps } = ctx;
  const finishedAt = ctx.now();
  const seconds = (finishedAt.getTime() - delivery.startedAt.getTime()) / 1000;
  const fields = delivery.job ?? invalidMessageFields(delivery.message.body, delivery.message.messageId);
  const meta = {
    job_id: fields.jobId,
    attempt: action.kind === 'requeue' ? delivery.attemptsBefore + 1 : action.attempts,
    duration_ms: Math.round(seconds * 1000),
  };
  const base = { jobId: fields.jobId, startedAt: delivery.startedAt, finishedAt, ...paths(fields) };
  switch (action.kind) {
    case 'complete':
      await deps.publisher.publishResult(
        'converted',
        convertedResult({ ...base, attempts: action.attempts, wavBytes: action.wavBytes }),
        delivery.envelope,
      );
      deps.counters.completed('converted', seconds);
      deps.logger.info('job converted', { ...meta, wav_bytes: action.wavBytes });
      return ConsumerStatus.ACK;
    case 'retry':
      await deps.publisher.publishRetry(action.delayLevel, action.attempts, retryBody(delivery), delivery.envelope);
      deps.counters.retried(action.error.code);
      if (action.unexpected) unexpected(ctx, action.error);
      else deps.logger.warning('job will be retried', { ...meta, code: action.error.code, reason: action.error.message });
      return ConsumerStatus.ACK;
    case 'dead-letter':
      await deadLetter(ctx, delivery, action, { ...base, attempts: action.attempts, finishedAt, seconds });
      if (action.unexpected) unexpected(ctx, action.error);
      deps.logger.error('job dead-lettered', { ...meta, code: action.error.code, reason: action.reason });
      return ConsumerStatus.ACK;
    case 'requeue':
      deps.counters.requeued();
      if (!action.quiet)
        deps.logger.notice('job returned to the queue', { ...meta, code: action.error.code, reason: action.error.message });
      return ConsumerStatus.REQUEUE;
  }
}

type Base = { jobId: string; startedAt: Date; finishedAt: Date; attempts: number; seconds: number; gsmPath?: string; wavPath?: string };

/** The `failed` result, then the dead-letter record (both confirmed), then count. */
async function deadLetter(ctx: Context, delivery: Delivery, action: Extract<Action, { kind: 'dead-letter' }>, base: Base): Promise<void> {
  const { deps } = ctx;
  const { message } = delivery;
  const code = action.error.code;
  await deps.publisher.publishResult('failed', failedResult({ ...base, code, message: action.reason }), delivery.envelope);
  const record = deadLetterEnvelope({
    jobId: base.jobId,
    code,
    reason: action.reason,
    attempts: base.attempts,
    originalBody: originalBytes(message.body),
    originalHeaders: message.headers ?? {},
    ...(message.messageId === undefined ? {} : { messageId: message.messageId }),
    failedAt: base.finishedAt,
    queue: deps.queueName,
  });
  await deps.publisher.publishDeadLetter(record.body, record.headers, delivery.envelope);
  deps.counters.deadLettered(code);
  deps.counters.completed('failed', base.seconds);
}

/** Counts an unexpected error and logs it, at most once per window (with how many were not logged). */
function unexpected(ctx: Context, error: AppError): void {
  ctx.deps.counters.unexpected(error.code);
  logStorm(ctx, 'job failed with an unexpected error; retried later through the delay queues', error);
}

function logStorm(ctx: Context, text: string, error: AppError): void {
  const take = ctx.storm.take();
  if (take === undefined) return;
  const cause = error.cause instanceof Error ? (error.cause.stack ?? error.cause.message) : undefined;
  ctx.deps.logger.error(text, {
    code: error.code,
    reason: error.message,
    suppressed: take.suppressed,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** The job for its delay queue: normalised when it parsed, else (a bug in parsing) the original bytes. */
function retryBody(delivery: Delivery): object {
  const job = delivery.job;
  return job === undefined ? originalBytes(delivery.message.body) : { job_id: job.jobId, gsm_path: job.gsmPath, wav_path: job.wavPath };
}

function paths(fields: { gsmPath?: string | undefined; wavPath?: string | undefined }): { gsmPath?: string; wavPath?: string } {
  return {
    ...(fields.gsmPath === undefined ? {} : { gsmPath: fields.gsmPath }),
    ...(fields.wavPath === undefined ? {} : { wavPath: fields.wavPath }),
  };
}

/** Attempts already made, from our header; anything odd counts as none. */
export function attemptsDone(headers: Record<string, unknown> | undefined): number {
  const value = headers?.[ATTEMPTS_HEADER];
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : 0;
  return Number.isInteger(n) && n > 0 && n < 1000 ? n : 0;
}

/** The body as bytes for the dead-letter record (rabbitmq-client may have decoded it). */
function originalBytes(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body, 'utf8');
  try {
    return Buffer.from(JSON.stringify(body) ?? 'null', 'utf8');
  } catch {
    // An application/json body nested ~10,000 deep parses (rabbitmq-client) but overflows
    // JSON.stringify's stack. Throwing here would nack and requeue the message: redelivered forever.
    return Buffer.from('(decoded application/json body that cannot be serialised again: nested too deep)', 'utf8');
  }
}
