/**
 * The AMI client's own errors: transport and protocol, nothing about jobs (ADR 0001). What a
 * failure means for a job — retry, dead-letter, pause intake — is decided beside the worker
 * (worker/originate.ts maps these to an outcome, worker/handler.ts the outcome to an action).
 */

/** The base of the client's errors: a code a caller can switch on, the class's own name. */
abstract class AmiError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An action could not be sent or got no answer: the client is not open, or the session ended with it pending. */
export class AmiConnectionError extends AmiError {
  readonly code = 'AMI_CONNECTION' as const;
}

/** Asterisk refused the login ("Authentication failed"): a person must fix the secret or manager.conf. */
export class AmiAuthError extends AmiError {
  readonly code = 'AMI_AUTH' as const;
}

/** No Response to an AMI action within its deadline. The connection may be fine. */
export class AmiActionTimeoutError extends AmiError {
  readonly code = 'AMI_ACTION_TIMEOUT' as const;
  constructor(
    readonly action: string,
    readonly timeoutMs: number,
  ) {
    super(`AMI action ${action} got no response within ${timeoutMs} ms`);
  }
}

/** A protocol violation on the AMI socket (hostile or broken peer). The connection is reset. */
export class AmiProtocolError extends AmiError {
  readonly code = 'AMI_PROTOCOL' as const;
}

/**
 * A value or header name that must never be written to AMI (CR, LF, NUL, a line over the limit).
 * Thrown before a single byte is written.
 */
export class AmiSerializeError extends AmiError {
  readonly code = 'AMI_SERIALIZE' as const;
}

/** A method called in a state that does not allow it (e.g. start() twice). */
export class AmiClientStateError extends AmiError {
  readonly code = 'AMI_STATE' as const;
}
