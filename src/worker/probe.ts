/**
 * After a deployment error (Asterisk refused the Originate: extension or context missing,
 * permission denied) consuming stops. This probe finds out when a person has fixed it, without
 * touching any job: it originates the configured context/extension with a JOB_ID and paths that
 * the shipped dialplan's path check refuses (`invalid-path`), so nothing is ever executed.
 * Any answer other than a refusal of the action itself means the dialplan is back.
 */
import type { Originator } from './originate.js';
import type { Logger } from '../log.js';
import { expBackoff } from '../util/backoff.js';

const PROBE_TIMEOUT_MS = 10_000;

export class DeploymentProbe {
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  /** Between start() and stop() (or onFixed): a probe in flight reschedules only while active. */
  private active = false;
  private tries = 0;

  constructor(
    private readonly originator: Pick<Originator, 'run'>,
    private readonly logger: Logger,
    /** The dialplan answers again: called once per start(), then the probe stops. */
    private readonly onFixed: () => void,
    private readonly backoff = { baseMs: 2000, capMs: 60_000 },
  ) {}

  /** Starts probing (idempotent). Calls onFixed once, then stops. */
  start(): void {
    this.active = true;
    // A probe in flight schedules the next one itself.
    if (this.timer !== undefined || this.running) return;
    this.schedule();
  }

  /** Stops probing; a probe in flight finishes but neither reports nor schedules another. */
  stop(): void {
    this.active = false;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.tries = 0;
  }

  /** No probe scheduled and none in flight. */
  get idle(): boolean {
    return this.timer === undefined && !this.running;
  }

  private schedule(): void {
    const delay = expBackoff(this.tries++, this.backoff);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.probe();
    }, delay);
    this.timer.unref();
  }

  private async probe(): Promise<void> {
    this.running = true;
    try {
      // Paths without a slash fail the dialplan's REGEX check before any step runs.
      const outcome = await this.originator.run({ gsmPath: 'probe', wavPath: 'probe', timeoutMs: PROBE_TIMEOUT_MS });
      this.logger.debug('deployment probe', { outcome: outcome.kind });
      if (!this.active) return;
      if (outcome.kind === 'conversion-failed' || outcome.kind === 'converted') {
        this.active = false;
        this.tries = 0;
        this.onFixed();
        return;
      }
    } finally {
      this.running = false;
    }
    if (this.active) this.schedule();
  }
}
