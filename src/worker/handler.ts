/**
 * The job handler: one AMQP message in, exactly one end for it out — converted (result + ack),
 * retried (delayed copy + ack), dead-lettered (failed result + DLQ record + ack), or left in the
 * queue (nack + requeue) when the deployment is broken or the service is stopping.
 * What to do is decided by policy.ts; this file carries it out, logs it and counts it.
 */
import { randomUUID } from 'node:crypto';
import { ConsumerStatus, type AsyncMessage } from 'rabbitmq-client';
import { AmiDisconnectedError, AppError, ShuttingDownError } from '../errors.js';
import type { Originator, OriginateOutcome } from '../ami/originate.js';
import { ATTEMPTS_HEADER, type BrokerPublisher, type JobEnvelope } from '../queue/broker.js';
import { invalidMessageFields, parseJob, type Job, type PathRules } from '../queue/message.js';
import { checkRealPaths } from '../queue/paths.js';
import { convertedResult, deadLetterEnvelope, failedResult } from '../queue/result.js';
import { decide, outcomeError, type Action } from './policy.js';
import type { Logger } from '../log.js';

/** Counting hooks (main.ts binds them to the Prometheus metrics). */
export interface JobCounters {
  received(): void;
  inFlight(delta: 1 | -1): void;
  completed(result: 'converted' | 'failed', seconds: number): void;
  retried(code: string): void;
  deadLettered(code: string): void;
  requeued(): void;
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
  /** Called when Asterisk refuses the Originate itself (dialplan missing, permission denied). */
  readonly onDeploymentError: (error: AppError) => void;
  /** Aborted when the drain deadline of a shutdown passes: jobs still running go back to the queue. */
  readonly abandon: AbortSignal;
  readonly now?: () => Date;
}

/** Creates the consumer callback. It never throws for a job's own failure; a throw means AMQP failed. */
export function createJobHandler(deps: HandlerDeps): (message: AsyncMessage) => Promise<ConsumerStatus> {
  const now = deps.now ?? ((): Date => new Date());
  return async (message) => {
    deps.counters.received();
    deps.counters.inFlight(1);
    try {
      return await handle(deps, message, now);
    } finally {
      deps.counters.inFlight(-1);
    }
  };
}

async function handle(deps: HandlerDeps, message: AsyncMessage, now: () => Date): Promise<ConsumerStatus> {
  const startedAt = now();
  const envelope: JobEnvelope = {
    messageId: message.messageId,
    correlationId: message.correlationId,
    replyTo: message.replyTo,
    headers: message.headers,
  };
  const attemptsBefore = attemptsDone(message.headers);

  let job: Job | undefined;
  try {
    job = parseJob(message.body, message.messageId, deps.rules);
    await checkRealPaths(job, deps.rules);
  } catch (error) {
    if (!(error instanceof AppError)) throw error;
    // Valid shape but a path refused on disk: keep the job's own id and paths in the result.
    const fields = job ?? invalidMessageFields(message.body, message.messageId);
    const failure = { kind: 'dead-letter', error, reason: error.message } as const;
    return finish(deps, message, envelope, { fields, attempts: attemptsBefore, startedAt }, failure, undefined, now);
  }

  // No child logger per job, and DEBUG lines only built when DEBUG is on: winston pushes even a
  // filtered line through its stream (~5 µs each), a cost paid for every job (docs/benchmarks.md).
  const debug = deps.logger.isLevelEnabled('debug');
  if (debug) deps.logger.debug('job received', { job_id: job.jobId, gsm_path: job.gsmPath, wav_path: job.wavPath, attempt: attemptsBefore + 1, redelivered: message.redelivered });
  if (!deps.amiConnected()) {
    // Consuming is paused while AMI is down; a message that slipped in goes back without counting an attempt.
    deps.counters.requeued();
    return ConsumerStatus.REQUEUE;
  }

  const attempt = attemptsBefore + 1;
  const attemptId = randomUUID();
  if (debug) deps.logger.debug('job originated', { job_id: job.jobId, attempt, attempt_id: attemptId });
  const outcome = await raceAbandon(deps.originator.run({ gsmPath: job.gsmPath, wavPath: job.wavPath, timeoutMs: deps.jobTimeoutMs, attemptId }), deps.abandon);
  const error = outcome === 'abandoned' ? new ShuttingDownError('the service stopped before the job finished') : outcomeError(outcome);
  const action = decide(error, attempt, deps.maxAttempts);
  if (action.kind === 'requeue' && action.error.code === 'DEPLOYMENT_ERROR') deps.onDeploymentError(action.error);
  const wavBytes = outcome !== 'abandoned' && outcome.kind === 'converted' ? outcome.wavBytes : undefined;
  return finish(deps, message, envelope, { job, fields: job, attempts: attempt, startedAt }, action, wavBytes, now);
}

interface Done {
  /** Set once the message parsed as a job: needed for a retry. */
  readonly job?: Job;
  /** The job's id, and what the result may say of its paths (only paths that passed the character rule). */
  readonly fields: { readonly jobId: string; readonly gsmPath?: string | undefined; readonly wavPath?: string | undefined };
  readonly attempts: number;
  readonly startedAt: Date;
}

/** Carries out the policy's action: publish first (with confirms), then ack — never the other way round. */
async function finish(
  deps: HandlerDeps,
  message: AsyncMessage,
  envelope: JobEnvelope,
  done: Done,
  action: Action,
  wavBytes: number | undefined,
  now: () => Date,
): Promise<ConsumerStatus> {
  const finishedAt = now();
  const seconds = (finishedAt.getTime() - done.startedAt.getTime()) / 1000;
  const jobId = done.fields.jobId;
  const base = { jobId, attempts: done.attempts, startedAt: done.startedAt, finishedAt, ...paths(done.fields) };
  const log = deps.logger;
  const meta = { job_id: jobId, attempt: done.attempts, duration_ms: Math.round(seconds * 1000) };
  switch (action.kind) {
    case 'complete': {
      await deps.publisher.publishResult('converted', convertedResult({ ...base, wavBytes: wavBytes ?? 0 }), envelope);
      deps.counters.completed('converted', seconds);
      log.info('job converted', { ...meta, wav_bytes: wavBytes });
      return ConsumerStatus.ACK;
    }
    case 'retry': {
      const job = done.job!;
      const body = { job_id: job.jobId, gsm_path: job.gsmPath, wav_path: job.wavPath };
      await deps.publisher.publishRetry(action.delayLevel, done.attempts, body, envelope);
      deps.counters.retried(action.error.code);
      log.warning('job will be retried', { ...meta, code: action.error.code, reason: action.error.message });
      return ConsumerStatus.ACK;
    }
    case 'dead-letter': {
      const code = action.error.code;
      await deps.publisher.publishResult('failed', failedResult({ ...base, code, message: action.reason }), envelope);
      const record = deadLetterEnvelope({
        jobId,
        code,
        reason: action.reason,
        attempts: done.attempts,
        originalBody: originalBytes(message.body),
        originalHeaders: message.headers ?? {},
        ...(message.messageId === undefined ? {} : { messageId: message.messageId }),
        failedAt: finishedAt,
        queue: deps.queueName,
      });
      await deps.publisher.publishDeadLetter(record.body, record.headers, envelope);
      deps.counters.deadLettered(code);
      deps.counters.completed('failed', seconds);
      log.error('job dead-lettered', { ...meta, code, reason: action.reason });
      return ConsumerStatus.ACK;
    }
    case 'requeue': {
      deps.counters.requeued();
      log.notice('job returned to the queue', { ...meta, code: action.error.code, reason: action.error.message });
      return ConsumerStatus.REQUEUE;
    }
  }
}

function paths(fields: Done['fields']): { gsmPath?: string; wavPath?: string } {
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

function raceAbandon(attempt: Promise<OriginateOutcome>, signal: AbortSignal): Promise<OriginateOutcome | 'abandoned'> {
  if (signal.aborted) return Promise.resolve('abandoned');
  return new Promise((resolve) => {
    const onAbort = (): void => resolve('abandoned');
    signal.addEventListener('abort', onAbort, { once: true });
    attempt.then(
      (outcome) => {
        signal.removeEventListener('abort', onAbort);
        resolve(outcome);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        resolve({ kind: 'disconnected', message: new AmiDisconnectedError(String(error)).message });
      },
    );
  });
}
