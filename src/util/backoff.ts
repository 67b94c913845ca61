/**
 * Capped exponential backoff with jitter, as a pure function (no timers, no state): the caller
 * owns the attempt counter and resets it after a success.
 */

/** How the delay is spread below its ceiling. */
export type Jitter =
  /** Uniform in [0, ceiling): spreads a crowd best, but may retry at once. */
  | 'full'
  /** Uniform in [ceiling/2, ceiling): never shorter than half the ceiling. The default. */
  | 'equal'
  /** Exactly the ceiling (deterministic; for tests and single clients). */
  | 'none';

export interface BackoffOptions {
  /** Ceiling of the first retry (attempt 0), in ms. */
  readonly baseMs: number;
  /** Largest ceiling, in ms: the delay never exceeds it. */
  readonly capMs: number;
  /** Default 'equal'. */
  readonly jitter?: Jitter;
}

/** Past this the ceiling is capped anyway; keeps 2 ** attempt finite. */
const MAX_EXPONENT = 30;

/**
 * Delay before retry number `attempt` (0-based): ceiling = min(capMs, baseMs * 2^attempt), then
 * jitter. Defaults to equal jitter because one service reconnecting to one Asterisk gains little
 * from full jitter's spread, and full jitter can retry with ~0 delay (a busy loop against a peer
 * that refuses at once). Always a finite integer in [0, capMs].
 *
 * @param random injectable source in [0, 1) (Math.random by default) for deterministic tests.
 */
export function expBackoff(attempt: number, options: BackoffOptions, random: () => number = Math.random): number {
  const base = Math.max(0, options.baseMs);
  const cap = Math.max(0, options.capMs);
  const exponent = Number.isFinite(attempt) ? Math.min(Math.max(0, Math.floor(attempt)), MAX_EXPONENT) : MAX_EXPONENT;
  const ceiling = Math.min(cap, base * 2 ** exponent);
  // Clamp the random source: a bad injected function must not make the delay negative or exceed the cap.
  const r = Math.min(Math.max(random(), 0), 1);
  const jitter = options.jitter ?? 'equal';
  let delay: number;
  if (jitter === 'none') delay = ceiling;
  else if (jitter === 'full') delay = r * ceiling;
  else delay = ceiling / 2 + (r * ceiling) / 2;
  const rounded = Math.floor(delay);
  return Number.isFinite(rounded) ? Math.min(rounded, cap) : cap;
}
