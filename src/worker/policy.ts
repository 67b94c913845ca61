/**
 * POLICY, pure: the one place that turns whatever happened to a delivery — an invalid message, an
 * attempt's outcome, AMI being down, the drain deadline, any error thrown — into what is done
 * with its message. The action carries everything the handler needs to carry it out.
 * docs/messages.md "Where every message ends" is the table this implements.
 */
import {
  AmiDisconnectedError,
  AppError,
  ConversionFailedError,
  DeploymentError,
  HangupWithoutResultError,
  InputMissingError,
  InternalError,
  InvalidMessageError,
  JobTimeoutError,
  OriginateFailedError,
  PathNotAllowedError,
  ShuttingDownError,
} from '../errors.js';
import type { OriginateOutcome } from './originate.js';

/** What happened to one delivery, as the handler saw it. */
export type Happening =
  /** Parsing or checking the message threw (an AppError, or anything else: a bug, EACCES…). */
  | { readonly kind: 'thrown'; readonly error: unknown }
  /** AMI was not logged in when the message arrived: no attempt was made. */
  | { readonly kind: 'ami-down' }
  /**
   * The service is stopping: the drain deadline passed while the attempt ran (`started`), or the
   * job was handed back before it reached Asterisk (still waiting for a slot).
   */
  | { readonly kind: 'abandoned'; readonly started: boolean }
  /** The attempt ended. */
  | { readonly kind: 'attempt'; readonly outcome: OriginateOutcome };

/** What the handler does with the message. `attempts`: the count the result and headers carry. */
export type Action =
  /** Publish `converted`, ack. */
  | { readonly kind: 'complete'; readonly attempts: number; readonly wavBytes: number }
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
export function decide(happening: Happening, attemptsBefore: number, maxAttempts: number): Action {
  switch (happening.kind) {
    case 'ami-down':
      return requeue(new AmiDisconnectedError('AMI not connected: handed back untouched'), true);
    case 'abandoned':
      return requeue(
        new ShuttingDownError(
          happening.started ? 'the service stopped before the job finished' : 'the service is stopping: handed back before it started',
        ),
        false,
      );
    case 'thrown': {
      const error = asAppError(happening.error);
      return byDisposition(error, error.disposition === 'dead-letter' ? attemptsBefore : attemptsBefore + 1, maxAttempts);
    }
    case 'attempt': {
      const { outcome } = happening;
      if (outcome.kind === 'converted') return { kind: 'complete', attempts: attemptsBefore + 1, wavBytes: outcome.wavBytes };
      return byDisposition(outcomeError(outcome), attemptsBefore + 1, maxAttempts);
    }
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
