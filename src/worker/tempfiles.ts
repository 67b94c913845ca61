/**
 * Temp files of attempts that ended without a result. The shipped dialplan converts into
 * `${WAV_PATH}.tmp-${JOB_ID}.wav` (JOB_ID = the attempt's UUID) and renames it into place, or
 * removes it on failure; if Asterisk dies mid-step (kill -9), nobody removes it. The bridge knows
 * each attempt's temp path exactly, so it removes exactly that file — once the dialplan's step
 * bound has passed since the attempt started, when the step (an orphan now) cannot be writing it
 * any more. It never looks at other files, and never at one that may still be in flight.
 */
import { errorCode } from '../errors.js';
import { unlink } from 'node:fs/promises';
import type { OriginateOutcome } from './originate.js';
import type { Logger } from '../log.js';
import { tempPathOf } from '../characters.js';

/**
 * The dialplan's bound on the conversion step: 100 s, then SIGKILL (config/asterisk/extensions.conf,
 * priority 12); the step-timeout variant sends SIGTERM at 100 s and SIGKILL 5 s later, hence the 5.
 */
export const STEP_TIMEOUT_S = 100;
export const STEP_KILL_AFTER_S = 5;
/** Margin for the dialplan priorities before the step and for a busy host. */
export const TEMP_FILE_MARGIN_MS = 15_000;
/** From an attempt's start until its temp file cannot be in flight any more: 120 s. */
export const TEMP_FILE_REMOVE_AFTER_MS = (STEP_TIMEOUT_S + STEP_KILL_AFTER_S) * 1000 + TEMP_FILE_MARGIN_MS;

/**
 * Whether the attempt may have left its temp file: nobody told us its step ended (AMI dropped,
 * deadline, hangup without result, shutdown). A UserEvent means the dialplan renamed or removed
 * it; a refused or failed Originate never ran the step.
 */
export function mayLeaveTempFile(outcome: OriginateOutcome | 'abandoned'): boolean {
  if (outcome === 'abandoned') return true;
  return outcome.kind === 'disconnected' || outcome.kind === 'timeout' || outcome.kind === 'hangup-without-result';
}

/**
 * Removes the temp files of attempts that ended without a result, each after `removeAfterMs` from
 * its attempt's start. Timers are unref'd (they never hold a stopping process) and cleared by
 * close(); a bridge that restarts forgets them (docs/operations.md says what cleans those).
 * Calls onRemoved (path) for each file it removed.
 */
export class TempFileReaper {
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  private readonly removeAfterMs: number;
  private readonly now: () => number;
  private readonly onRemoved: (path: string) => void;

  constructor(
    private readonly log: Logger,
    options: { removeAfterMs?: number | undefined; now?: () => number; onRemoved?: (path: string) => void } = {},
  ) {
    this.removeAfterMs = options.removeAfterMs ?? TEMP_FILE_REMOVE_AFTER_MS;
    this.now = options.now ?? Date.now;
    this.onRemoved = options.onRemoved ?? ((): void => undefined);
  }

  /** Files waiting for their time. */
  get pending(): number {
    return this.timers.size;
  }

  /** Schedules the removal of the temp file of attempt `attemptId`, which started at `startedAt` (ms). */
  schedule(wavPath: string, attemptId: string, startedAt: number): void {
    if (this.closed) return;
    const path = tempPathOf(wavPath, attemptId);
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        void this.remove(path);
      },
      Math.max(0, startedAt + this.removeAfterMs - this.now()),
    );
    timer.unref();
    this.timers.add(timer);
  }

  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private async remove(path: string): Promise<void> {
    try {
      await unlink(path);
      this.log.notice('removed the temp file of an attempt that ended without a result', { path });
      this.onRemoved(path);
    } catch (error) {
      // Usually gone: the orphan finished and renamed it, or the step never started.
      if (errorCode(error) !== 'ENOENT')
        this.log.warning('cannot remove the temp file of an attempt that ended without a result', { path, error: String(error) });
    }
  }
}
