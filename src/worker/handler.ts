/**
 * The job handler: one AMQP message in, exactly one end for it out — converted (result + ack),
 * retried (delayed copy + ack), dead-lettered (failed result + DLQ record + ack), or left in the
 * queue (nack + requeue) when the deployment is broken or the service is stopping.
 *
 * Three parts, read top to bottom: POLICY (pure: what happened → the action; the one decider,
 * reading errors.ts's ERROR_POLICY table; docs/messages.md "Where every message ends" is the table
 * it implements), the waits a shutdown cuts short (the hold before handing back a message, an
 * attempt raced against the drain deadline), and the HANDLER that checks the message, runs the
 * attempt, carries the action out (publish, confirm, then ack), logs it and counts it.
 */
import { randomUUID } from 'node:crypto';
import { statSync, type Stats } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { audioFlags, GSM_FRAME_BYTES, measureCustody, parseAudio, verifyWav, type AudioFacts, type Custody } from '../audio.js';
import { ConsumerStatus, type AsyncMessage } from 'rabbitmq-client';
import {
  AmiDisconnectedError,
  AppError,
  ConversionFailedError,
  DeploymentError,
  errorText,
  HangupWithoutResultError,
  InputEmptyError,
  InputMissingError,
  InternalError,
  InvalidMessageError,
  JobTimeoutError,
  OriginateFailedError,
  OutputInvalidError,
  PathNotAllowedError,
  ShuttingDownError,
} from '../errors.js';
import type { Logger } from '../log.js';
import { ATTEMPTS_HEADER, SETTLE_HEADER, type BrokerPublisher, type JobEnvelope } from '../queue/broker.js';
import {
  inputsOf,
  invalidMessageFields,
  parseJob,
  type Job,
  type PathRules,
  checkRealPaths,
  convertedResult,
  deadLetterEnvelope,
  type CustodyFields,
  failedResult,
} from '../queue/message.js';
import { RateLimit } from '../util/ratelimit.js';
import type { OriginateOutcome, Originator } from './originate.js';
import { mayLeaveTempFile, type TempFileReaper } from './tempfiles.js';

// ---- POLICY (pure) ----

/**
 * What happened to one delivery: the attempt's outcome (worker/originate.ts's OriginateOutcome,
 * the same kinds), or what ended it before or instead of an attempt. One vocabulary from the
 * Originator to the policy; the policy turns it into an error code (errors.ts) and an Action.
 */
export type Outcome =
  | OriginateOutcome
  /** Parsing or checking the message threw (an AppError, or anything else: a bug, EACCES…). */
  | { readonly kind: 'thrown'; readonly error: unknown }
  /** AMI was not logged in when the message arrived: no attempt was made. */
  | { readonly kind: 'ami-down' }
  /**
   * The service is stopping: the drain deadline passed while the attempt ran (`started`), or the
   * job was handed back before it reached Asterisk (still waiting for a slot).
   */
  | { readonly kind: 'abandoned'; readonly started: boolean }
  /** An input was modified less than SettleTime ago (still being written): wait, no attempt made. */
  | { readonly kind: 'unsettled'; readonly since: number }
  /** The step said converted and the WAV passed the proof (audio/verify.ts): with its custody facts. */
  | { readonly kind: 'proven'; readonly wavBytes: number; readonly custody: Custody; readonly unsettled: readonly boolean[] }
  /** The step said converted but the WAV is not what its inputs make. */
  | { readonly kind: 'output-invalid'; readonly problem: string };

/** What the handler does with the message. `attempts`: the count the result and headers carry. */
export type Action =
  /** Publish `converted`, ack. `custody`: the hashes and audio facts of a proven WAV (absent only in tests). */
  | {
      readonly kind: 'complete';
      readonly attempts: number;
      readonly wavBytes: number;
      readonly custody?: Custody;
      readonly unsettled?: readonly boolean[];
    }
  /** Copy to the first delay queue with the same attempt count, ack: the input is still being written. */
  | { readonly kind: 'defer'; readonly attempts: number; readonly since: number }
  /** Publish `failed`, copy to the dead-letter queue, ack. */
  | {
      readonly kind: 'dead-letter';
      readonly attempts: number;
      readonly error: AppError;
      readonly reason: string;
      readonly unexpected: boolean;
    }
  /** Copy to the delay queue for this attempt, ack; the broker brings it back after the delay. */
  | {
      readonly kind: 'retry';
      readonly attempts: number;
      readonly error: AppError;
      readonly delayLevel: number;
      readonly unexpected: boolean;
    }
  /**
   * Nack with requeue: the message stays in the queue untouched. `pauseIntake`: stop taking
   * messages until the cause is fixed (deployment error); `quiet`: no log line (AMI down: the
   * service already says so once, and intake is pausing).
   */
  | { readonly kind: 'requeue'; readonly error: AppError; readonly pauseIntake: boolean; readonly quiet: boolean };

/**
 * Decides what to do with a delivery after `attemptsBefore` attempts already made (our header).
 * An attempt counts when one was made, and also for an unexpected error (so it is bounded);
 * a message refused as invalid counts none; a requeue counts none.
 */
export function decide(outcome: Outcome, attemptsBefore: number, maxAttempts: number): Action {
  switch (outcome.kind) {
    case 'ami-down':
      return requeue(new AmiDisconnectedError('AMI not connected: handed back untouched'), true);
    case 'abandoned':
      return requeue(
        new ShuttingDownError(
          outcome.started ? 'the service stopped before the job finished' : 'the service is stopping: handed back before it started',
        ),
        false,
      );
    case 'thrown': {
      const error = asAppError(outcome.error);
      return byDisposition(error, error.disposition === 'dead-letter' ? attemptsBefore : attemptsBefore + 1, maxAttempts);
    }
    case 'converted':
      return { kind: 'complete', attempts: attemptsBefore + 1, wavBytes: outcome.wavBytes };
    case 'proven':
      return {
        kind: 'complete',
        attempts: attemptsBefore + 1,
        wavBytes: outcome.wavBytes,
        custody: outcome.custody,
        unsettled: outcome.unsettled,
      };
    case 'unsettled':
      return { kind: 'defer', attempts: attemptsBefore, since: outcome.since };
    case 'output-invalid':
      return byDisposition(new OutputInvalidError(`the step said converted, but ${outcome.problem}`), attemptsBefore + 1, maxAttempts);
    default:
      return byDisposition(outcomeError(outcome), attemptsBefore + 1, maxAttempts);
  }
}

/** An error that is not one of ours becomes INTERNAL, keeping the original as its cause. */
export function asAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return new InternalError(`unexpected error while handling the job: ${text}`, { cause: error });
}

/** The error an unsuccessful attempt outcome stands for. */
export function outcomeError(outcome: Exclude<OriginateOutcome, { kind: 'converted' }>): AppError {
  switch (outcome.kind) {
    case 'conversion-failed':
      if (outcome.inputMissing) return new InputMissingError('the GSM input file does not exist (dialplan: input-missing)');
      // Convert() found no whole frame: emptied between the bridge's look and the step's.
      if (outcome.detail === 'input-empty') return new InputEmptyError(`the input holds no whole GSM frame (Convert(): ${outcome.reason})`);
      if (outcome.invalidPath)
        return new PathNotAllowedError('the dialplan refused the paths (invalid-path): check AllowedRoots against extensions.conf');
      return new ConversionFailedError(
        `the conversion step failed (dialplan: ${outcome.detail || 'no detail'}${outcome.reason ? ` — ${outcome.reason}` : ''})`,
      );
    case 'rejected':
      return new DeploymentError(`Asterisk refused the Originate: ${outcome.message}`);
    case 'invalid-request':
      return new InvalidMessageError(`the job's values cannot be sent to AMI: ${outcome.message}`);
    case 'start-failed':
      return new OriginateFailedError(`Asterisk could not start the conversion call (${outcome.reason})`);
    case 'hangup-without-result':
      return new HangupWithoutResultError(`the conversion call hung up without a result (${outcome.cause})`);
    case 'timeout':
      return new JobTimeoutError('no result from Asterisk before the job deadline');
    case 'disconnected':
      return new AmiDisconnectedError(`AMI connection lost during the job: ${outcome.message}`);
  }
}

/** The code's row of errors.ERROR_POLICY: dead-letter now, retry until `maxAttempts` attempts were made, or requeue. */
function byDisposition(error: AppError, attempts: number, maxAttempts: number): Action {
  const { unexpected } = error;
  switch (error.disposition) {
    case 'dead-letter':
      return { kind: 'dead-letter', attempts, error, reason: error.message, unexpected };
    case 'requeue':
      return requeue(error, false);
    case 'retry':
      if (attempts < maxAttempts) return { kind: 'retry', attempts, error, delayLevel: attempts, unexpected };
      return {
        kind: 'dead-letter',
        attempts,
        error,
        reason: `gave up after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${error.message}`,
        unexpected,
      };
  }
}

function requeue(error: AppError, quiet: boolean): Action {
  return { kind: 'requeue', error, pauseIntake: error.pausesIntake, quiet };
}

// ---- Waits a shutdown cuts short ----

/** Resolves after `ms`, or at once when `signal` aborts (a shutdown past its deadline does not wait). */
export function hold(ms: number, signal: AbortSignal): Promise<void> {
  return sleep(ms, undefined, { signal }).catch(() => undefined);
}

/** The attempt's outcome, or 'abandoned' as soon as `signal` aborts (the drain deadline); a rejection is a lost AMI connection. */
export function raceAbandon(attempt: Promise<OriginateOutcome>, signal: AbortSignal): Promise<OriginateOutcome | 'abandoned'> {
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
        resolve({ kind: 'disconnected', message: errorText(error) });
      },
    );
  });
}

// ---- HANDLER ----

/** At most one log line per this window for errors that are not ours (a storm shows on the metric). */
export const UNEXPECTED_LOG_WINDOW_MS = 10_000;
/** A message whose handling threw (AMQP failed under a publish) is held this long before it goes back. */
export const HOLD_BEFORE_REQUEUE_MS = 1000;

/** Frees a Concurrency slot (the lanes' gate); calling it again does nothing. */
export type ReleaseSlot = () => void;

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
  /** One converted channel: its audio duration and flags. */
  audio(seconds: number, flags: readonly string[]): void;
  /** A job whose input was still being written: deferred, or converted anyway after SettleMax. */
  unsettled(outcome: 'deferred' | 'converted'): void;
}

/** What the handler needs from the rest of the service. */
export interface HandlerDeps {
  readonly queueName: string;
  readonly rules: PathRules;
  readonly jobTimeoutMs: number;
  readonly maxAttempts: number;
  /** [Worker] SettleTime / SettleMax (docs/messages.md "settled inputs"). */
  readonly settleTimeMs: number;
  readonly settleMaxMs: number;
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
  const outcome = await attempt(ctx.deps, delivery);
  const action = decide(outcome, delivery.attemptsBefore, ctx.deps.maxAttempts);
  if (action.kind === 'requeue' && action.pauseIntake) ctx.deps.pauseIntake(action.error);
  return finish(ctx, delivery, action);
}

/**
 * Checks the message, then runs one attempt holding a slot; whatever happens is reported, never
 * thrown. The checks come first and take no slot: an invalid message is dead-lettered at once,
 * not after waiting behind the jobs on Asterisk. A job still waiting for a slot when the service
 * stops goes back untouched.
 */
async function attempt(deps: HandlerDeps, delivery: Delivery): Promise<Outcome> {
  const { message } = delivery;
  let inputs: InputState[];
  try {
    delivery.job = parseJob(message.body, message.messageId, deps.rules);
    inputs = inspectInputs(delivery.job, await checkRealPaths(delivery.job, deps.rules));
  } catch (error) {
    return { kind: 'thrown', error };
  }
  const settle = settleOf(deps, inputs, message.headers);
  if (settle.kind === 'wait') return { kind: 'unsettled', since: settle.since };
  const release = await deps.acquireSlot();
  if (release === undefined) return { kind: 'abandoned', started: false };
  deps.counters.inFlight(1);
  try {
    if (deps.abandon.aborted) return { kind: 'abandoned', started: false };
    const outcome = await attemptInSlot(deps, delivery, delivery.job);
    return outcome.kind === 'converted' ? prove(delivery.job, inputs, outcome, settle.young) : outcome;
  } finally {
    deps.counters.inFlight(-1);
    release();
  }
}

// ---- Inputs: settled, not empty; the output: proven ----

/** One input as the bridge saw it before the attempt: undefined size when it does not exist (the dialplan says so). */
interface InputState {
  readonly path: string;
  readonly size: number | undefined;
  readonly mtimeMs: number;
}

/**
 * From each input's stat (checkRealPaths made it): an input with no whole GSM frame is INPUT_EMPTY (dead-lettered: there is
 * nothing to convert, now or later), a two-leg job's missing leg is INPUT_MISSING naming the leg;
 * a missing single input is left to the dialplan, which reports it (as it always has).
 */
function inspectInputs(job: Job, stats: readonly (Stats | undefined)[]): InputState[] {
  return inputsOf(job).map((path, i) => {
    const what = job.legs === undefined ? 'the GSM input' : `leg ${i + 1} (${job.legs[i]!.role})`;
    const st = stats[i];
    if (st === undefined) {
      if (job.legs !== undefined) throw new InputMissingError(`${what} does not exist: ${path}`);
      return { path, size: undefined, mtimeMs: 0 };
    }
    if (st.size < GSM_FRAME_BYTES) throw new InputEmptyError(`${what} holds no whole GSM frame (${st.size} bytes): nothing to convert`);
    return { path, size: st.size, mtimeMs: st.mtimeMs };
  });
}

/**
 * Settled: every input unmodified for SettleTime. Otherwise wait (a delay queue, no attempt used)
 * until SettleMax has passed since the job was first seen unsettled (our header), then convert
 * what is there, the young inputs flagged `unsettled`.
 */
function settleOf(
  deps: HandlerDeps,
  inputs: readonly InputState[],
  headers: Record<string, unknown> | undefined,
): { kind: 'wait'; since: number } | { kind: 'go'; young: boolean[] } {
  const now = Date.now();
  const young = inputs.map((i) => i.size !== undefined && now - i.mtimeMs < deps.settleTimeMs);
  if (!young.some(Boolean)) return { kind: 'go', young };
  const seen = headers?.[SETTLE_HEADER];
  const since = typeof seen === 'number' && Number.isFinite(seen) && seen <= now ? seen : now;
  if (now - since < deps.settleMaxMs) return { kind: 'wait', since };
  deps.counters.unsettled('converted');
  return { kind: 'go', young };
}

/**
 * The step said converted: prove the WAV (header against size, format, one channel per leg, 160
 * samples per whole frame of the longer leg) before anything is published, and gather its custody
 * facts — from Convert()'s UserEvent, or measured here for a step that reports none (the perl step).
 * The frames expected are those of the inputs as the converter read them: what Convert() reports
 * (never fewer than the bridge saw: a file only grows), or a fresh stat after the perl step.
 */
function prove(
  job: Job,
  inputs: readonly InputState[],
  outcome: Extract<OriginateOutcome, { kind: 'converted' }>,
  young: readonly boolean[],
): Outcome {
  const reported = parseAudio(outcome.facts?.audio);
  const frames = inputs.map((input, i) => {
    const before = Math.floor((input.size ?? 0) / GSM_FRAME_BYTES);
    const read =
      reported?.[i] !== undefined
        ? Math.round(reported[i].duration_ms / 20)
        : Math.floor((statSync(input.path, { throwIfNoEntry: false })?.size ?? 0) / GSM_FRAME_BYTES);
    return Math.max(before, read);
  });
  const check = verifyWav(job.wavPath, { frames });
  if (!check.ok) return { kind: 'output-invalid', problem: check.problem };
  const facts = outcome.facts;
  const custody: Custody =
    facts !== undefined && reported !== undefined && reported.length === frames.length
      ? { inputSha256: facts.inputSha256.split(' '), wavSha256: facts.wavSha256, audio: reported }
      : measureCustody(inputsOf(job), job.wavPath, { frames });
  return { kind: 'proven', wavBytes: check.bytes, custody, unsettled: young };
}

/** The `audio` object of a result: the facts and their flags (`unsettled` when the input was still being written). */
function audioOf(facts: AudioFacts, unsettled: boolean): AudioFacts & { readonly flags: readonly string[] } {
  return { ...facts, flags: [...audioFlags(facts), ...(unsettled ? ['unsettled'] : [])] };
}

async function attemptInSlot(
  deps: HandlerDeps,
  delivery: Delivery,
  job: Job,
): Promise<OriginateOutcome | { kind: 'abandoned'; started: true } | { kind: 'ami-down' }> {
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
  const run = deps.originator.run({
    gsmPath: job.gsmPath,
    ...(job.legs === undefined ? {} : { gsmPath2: job.legs[1].gsmPath }),
    wavPath: job.wavPath,
    timeoutMs: deps.jobTimeoutMs,
    attemptId,
  });
  const outcome = await raceAbandon(run, deps.abandon);
  if (mayLeaveTempFile(outcome)) deps.tempFiles.schedule(job.wavPath, attemptId, attemptStart);
  return outcome === 'abandoned' ? { kind: 'abandoned', started: true } : outcome;
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
    case 'complete': {
      const custody = custodyFields(delivery.job, action);
      await deps.publisher.publishResult(
        'converted',
        convertedResult({ ...base, attempts: action.attempts, wavBytes: action.wavBytes, ...custody }),
        delivery.envelope,
      );
      deps.counters.completed('converted', seconds);
      for (const c of custody.channels ?? (custody.audio === undefined ? [] : [{ audio: custody.audio }]))
        deps.counters.audio(c.audio.duration_ms / 1000, c.audio.flags);
      deps.logger.info('job converted', { ...meta, wav_bytes: action.wavBytes });
      return ConsumerStatus.ACK;
    }
    case 'defer':
      await deps.publisher.publishRetry(1, action.attempts, retryBody(delivery), {
        ...delivery.envelope,
        headers: { ...delivery.envelope.headers, [SETTLE_HEADER]: action.since },
      });
      deps.counters.unsettled('deferred');
      deps.logger.info('job waits for its input to settle', { ...meta, unsettled_since: new Date(action.since).toISOString() });
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
  if (job === undefined) return originalBytes(delivery.message.body);
  if (job.legs !== undefined)
    return { job_id: job.jobId, legs: job.legs.map((l) => ({ gsm_path: l.gsmPath, role: l.role })), wav_path: job.wavPath };
  return { job_id: job.jobId, gsm_path: job.gsmPath, wav_path: job.wavPath };
}

/**
 * The custody part of a `converted` result (docs/messages.md): the hashes and audio facts of the one
 * input, or per channel for a two-leg job.
 */
function custodyFields(job: Job | undefined, action: Extract<Action, { kind: 'complete' }>): CustodyFields {
  const c = action.custody;
  if (c === undefined) return {};
  const unsettled = action.unsettled ?? [];
  if (job?.legs === undefined)
    return { inputSha256: c.inputSha256[0] ?? '', wavSha256: c.wavSha256, audio: audioOf(c.audio[0]!, unsettled[0] === true) };
  return {
    wavSha256: c.wavSha256,
    channels: job.legs.map((leg, index) => {
      const audio = audioOf(c.audio[index]!, unsettled[index] === true);
      return { index, role: leg.role, gsmPath: leg.gsmPath, durationMs: audio.duration_ms, inputSha256: c.inputSha256[index] ?? '', audio };
    }),
  };
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
