/**
 * POLICY, pure: the one place that maps what happened to a job onto what is done with its
 * message. docs/messages.md "Where every message ends" is the table this implements.
 */
import {
  AmiDisconnectedError,
  AppError,
  ConversionFailedError,
  DeploymentError,
  HangupWithoutResultError,
  InputMissingError,
  InvalidMessageError,
  JobTimeoutError,
  OriginateFailedError,
  PathNotAllowedError,
} from '../errors.js';
import type { OriginateOutcome } from '../ami/originate.js';

/** What the handler does with the message. */
export type Action =
  /** Publish `converted`, ack. */
  | { readonly kind: 'complete' }
  /** Publish `failed`, copy to the dead-letter queue, ack. */
  | { readonly kind: 'dead-letter'; readonly error: AppError; readonly reason: string }
  /** Copy to the delay queue for this attempt, ack; the broker brings it back after the delay. */
  | { readonly kind: 'retry'; readonly error: AppError; readonly delayLevel: number }
  /** Nack with requeue: the message stays in the queue untouched (deployment broken, shutting down). */
  | { readonly kind: 'requeue'; readonly error: AppError };

/** The error an unsuccessful attempt outcome stands for; undefined for `converted`. */
export function outcomeError(outcome: OriginateOutcome): AppError | undefined {
  switch (outcome.kind) {
    case 'converted':
      return undefined;
    case 'conversion-failed':
      if (outcome.inputMissing) return new InputMissingError('the GSM input file does not exist (dialplan: input-missing)');
      if (outcome.invalidPath) return new PathNotAllowedError('the dialplan refused the paths (invalid-path): check AllowedRoots against extensions.conf');
      return new ConversionFailedError(`the conversion step failed (dialplan: ${outcome.detail || 'no detail'})`);
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

/**
 * Decides what to do after attempt number `attempt` (1-based) ended in `error` (or succeeded).
 * Transient errors are retried until `maxAttempts` attempts were made, then dead-lettered.
 */
export function decide(error: AppError | undefined, attempt: number, maxAttempts: number): Action {
  if (error === undefined) return { kind: 'complete' };
  switch (error.disposition) {
    case 'dead-letter':
      return { kind: 'dead-letter', error, reason: error.message };
    case 'pause':
      return { kind: 'requeue', error };
    case 'retry':
      if (attempt < maxAttempts) return { kind: 'retry', error, delayLevel: attempt };
      return { kind: 'dead-letter', error, reason: `gave up after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${error.message}` };
  }
}

/** Delay before attempt `level + 1`: base × 2^(level-1), capped. Fixed per level: one delay queue each. */
export function retryDelayMs(level: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, level - 1));
}
