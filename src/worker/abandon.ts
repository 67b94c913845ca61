/**
 * Waiting that a shutdown cuts short: the handler's pause before handing back a message it could
 * not settle, and an attempt raced against the drain deadline.
 */
import type { OriginateOutcome } from './originate.js';
import { errorText } from '../errors.js';

/** Resolves after `ms`, or at once when `signal` aborts (a shutdown past its deadline does not wait). */
export function hold(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
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
