/**
 * The error tree. Every failure a job can meet is one of these classes; its code's row of
 * ERROR_POLICY carries the policy: what the worker does with the message (worker/handler.ts, the
 * one function that reads it). Imports nothing of ours.
 */

/** What happens to a job message whose attempt ended in this error (the policy's action kinds). */
export type Disposition =
  /** Will never succeed: publish `failed`, dead-letter now. */
  | 'dead-letter'
  /** Might succeed later: retry with backoff until MaxAttempts, then dead-letter. */
  | 'retry'
  /** Not the job's fault and no attempt made: nack + requeue, the message stays untouched. */
  | 'requeue';

/** What the service does about one error code. */
export interface CodePolicy {
  readonly disposition: Disposition;
  /** For `requeue`: stop taking messages until a person fixes the cause (deployment errors). */
  readonly pausesIntake: boolean;
  /**
   * Not one of the outcomes the service expects (an I/O error on a path check, a bug): retried
   * through the delay queues like a transient failure, so a storm of them is bounded; counted on
   * `audioconvert_unexpected_errors_total` and logged rate-limited (worker/handler.ts).
   */
  readonly unexpected: boolean;
}

const deadLetter = { disposition: 'dead-letter', pausesIntake: false, unexpected: false } as const;
const retry = { disposition: 'retry', pausesIntake: false, unexpected: false } as const;
const unexpected = { disposition: 'retry', pausesIntake: false, unexpected: true } as const;

/**
 * THE error policy, one row per public code (docs/messages.md "Error codes"): its disposition,
 * whether it pauses intake, whether it is unexpected. ErrorCode, the metrics' code lists and every
 * AppError's policy derive from it; worker/handler.ts (its policy part) is the one reader that acts on it.
 */
export const ERROR_POLICY = {
  INVALID_MESSAGE: deadLetter,
  PATH_NOT_ALLOWED: deadLetter,
  INPUT_MISSING: deadLetter,
  /** The input holds no whole GSM frame (an unanswered call): nothing to convert, now or later. */
  INPUT_EMPTY: deadLetter,
  /** Retried: the usual causes (permissions, a full disk, an overloaded host) are fixed by people; bounded by MaxAttempts. */
  CONVERSION_FAILED: retry,
  TIMEOUT: retry,
  ORIGINATE_FAILED: retry,
  HANGUP_WITHOUT_RESULT: retry,
  AMI_DISCONNECTED: retry,
  /** The step said OK but the WAV is not what its inputs make (header, format, samples): never `converted`. */
  OUTPUT_INVALID: retry,
  INPUT_UNREADABLE: unexpected,
  OUTPUT_UNREADABLE: unexpected,
  INTERNAL: unexpected,
  /** Retrying cannot help until a person fixes the deployment: consuming stops and messages stay queued. */
  DEPLOYMENT_ERROR: { disposition: 'requeue', pausesIntake: true, unexpected: false },
  SHUTTING_DOWN: { disposition: 'requeue', pausesIntake: false, unexpected: false },
} as const satisfies Record<string, CodePolicy>;

/** Public error codes: the rows of {@link ERROR_POLICY}. */
export type ErrorCode = keyof typeof ERROR_POLICY;

/** Every {@link ErrorCode}, in the table's order. */
export const ERROR_CODES = Object.keys(ERROR_POLICY) as readonly ErrorCode[];

/** The codes of errors that are not expected outcomes. */
export const UNEXPECTED_CODES: readonly ErrorCode[] = ERROR_CODES.filter((code) => ERROR_POLICY[code].unexpected);

/** Base class: a code a program can switch on, a message a person can read, a cause; the policy is its code's row. */
export abstract class AppError extends Error {
  abstract readonly code: ErrorCode;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }

  get disposition(): Disposition {
    return ERROR_POLICY[this.code].disposition;
  }

  get pausesIntake(): boolean {
    return ERROR_POLICY[this.code].pausesIntake;
  }

  get unexpected(): boolean {
    return ERROR_POLICY[this.code].unexpected;
  }
}

/** The body is not a valid job (not JSON, wrong shape, bad job_id, too large...). */
export class InvalidMessageError extends AppError {
  readonly code = 'INVALID_MESSAGE' as const;
}

/** A path is outside the allowed roots, has a forbidden character, a `..` segment or the wrong extension. */
export class PathNotAllowedError extends AppError {
  readonly code = 'PATH_NOT_ALLOWED' as const;
}

/** The dialplan reported that the GSM input does not exist. */
export class InputMissingError extends AppError {
  readonly code = 'INPUT_MISSING' as const;
}

/** The input (a leg of it) holds no whole 33-byte GSM frame: 0–32 bytes, a call nobody answered. */
export class InputEmptyError extends AppError {
  readonly code = 'INPUT_EMPTY' as const;
}

/** The conversion step reported success, but the WAV fails the header and size proof (audio/verify.ts). */
export class OutputInvalidError extends AppError {
  readonly code = 'OUTPUT_INVALID' as const;
}

/**
 * The conversion step ran and failed (corrupt input, output directory missing or not writable,
 * converter killed by its timeout). Retried, because the usual causes (permissions, a full disk,
 * an overloaded host) are fixed by people; bounded by MaxAttempts.
 */
export class ConversionFailedError extends AppError {
  readonly code = 'CONVERSION_FAILED' as const;
}

/** The job's hard deadline passed before Asterisk reported a result. */
export class JobTimeoutError extends AppError {
  readonly code = 'TIMEOUT' as const;
}

/** Asterisk accepted the Originate but could not start the call (OriginateResponse: Failure). */
export class OriginateFailedError extends AppError {
  readonly code = 'ORIGINATE_FAILED' as const;
}

/** The job's channel hung up without the dialplan's UserEvent (Asterisk restarted, channel killed). */
export class HangupWithoutResultError extends AppError {
  readonly code = 'HANGUP_WITHOUT_RESULT' as const;
}

/** The AMI connection was lost (or was never up) while the job needed it. */
export class AmiDisconnectedError extends AppError {
  readonly code = 'AMI_DISCONNECTED' as const;
}

/**
 * Asterisk refused the action itself: extension/context missing, permission denied, login refused.
 * Retrying cannot help until a person fixes the deployment, so consuming stops and messages stay queued.
 */
export class DeploymentError extends AppError {
  readonly code = 'DEPLOYMENT_ERROR' as const;
}

/** The service is stopping; the message goes back to the queue untouched. */
export class ShuttingDownError extends AppError {
  readonly code = 'SHUTTING_DOWN' as const;
}

/** The GSM input (or a directory above it) cannot be examined by the service's user. */
export class InputUnreadableError extends AppError {
  readonly code = 'INPUT_UNREADABLE' as const;
}

/** The WAV's directory (or one above it) cannot be examined by the service's user. */
export class OutputUnreadableError extends AppError {
  readonly code = 'OUTPUT_UNREADABLE' as const;
}

/** Anything else thrown while handling a job: a bug, or an error nobody foresaw. */
export class InternalError extends AppError {
  readonly code = 'INTERNAL' as const;
}

/**
 * The service cannot start (e.g. the HTTP port is taken). The message is one line that says what
 * and how to fix it; cli.ts prints it without a stack trace and exits 1.
 */
export class StartupError extends Error {
  readonly code = 'STARTUP' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StartupError';
  }
}

/** A configuration file that cannot be used. The message names file, section, key, value and what is allowed. */
export class ConfigError extends Error {
  readonly code = 'CONFIG' as const;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

/** The `code` of anything thrown when it is a string (Node's `ENOENT`, rabbitmq-client's `PRECONDITION_FAILED`), else undefined. */
export function errorCode(error: unknown): string | undefined {
  const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** The text of anything thrown: an Error's message, or the value as a string (for logs and results). */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
