/**
 * One AMI outage at a time: how many attempts it took, since when, and how long to wait before
 * the next one. It logs the first failure of an outage at warning and the rest at debug, so a
 * long outage is one line, not one per retry. No timers: the client schedules.
 */
import { expBackoff, type BackoffOptions } from '../util/backoff.js';
import type { AmiLogger, DisconnectReason } from './client-types.js';

export interface OutagePacing {
  /** Between reconnect attempts. */
  readonly backoff: BackoffOptions;
  /** After a refused login (nothing changes until a person fixes it). */
  readonly authBackoff: BackoffOptions;
  /** Jitter source in [0, 1). */
  readonly random: () => number;
}

export class Outage {
  /** Attempts since the last successful login. */
  private attempts = 0;
  private since: number | undefined;
  /** The last failure was a refused login: wait with the slow authBackoff. */
  authFailing = false;

  constructor(
    private readonly pacing: OutagePacing,
    private readonly log: AmiLogger,
    private readonly peer: string,
  ) {}

  /** Counts a failed or lost connection and returns the delay before the next attempt. */
  next(reason: DisconnectReason, error: Error | undefined): { attempt: number; delayMs: number } {
    const { backoff, authBackoff, random } = this.pacing;
    const delayMs = expBackoff(this.attempts, this.authFailing ? authBackoff : backoff, random);
    this.attempts++;
    const meta = { reason, error: error?.message, attempt: this.attempts, delay_ms: delayMs };
    if (this.since === undefined) {
      this.since = Date.now();
      this.log.warning(`AMI connection to ${this.peer} unavailable; reconnecting`, meta);
    } else this.log.debug('AMI reconnect attempt failed', meta);
    return { attempt: this.attempts, delayMs };
  }

  /** Logged in: logs the connection (or its restoration, with how long the outage lasted) and resets. */
  ended(meta: Record<string, unknown>): void {
    if (this.since === undefined) this.log.info('AMI connected', meta);
    else this.log.info('AMI connection restored', { ...meta, duration_ms: Date.now() - this.since, attempts: this.attempts });
    this.attempts = 0;
    this.authFailing = false;
    this.since = undefined;
  }
}
