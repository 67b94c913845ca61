/**
 * One log line per window instead of one per occurrence: the first occurrence is let through at
 * once; the ones after it, until the window has passed, are only counted and reported with the
 * next line let through. No timers: a storm that stops simply leaves its count unreported until
 * the next occurrence (the metric counts every one).
 */
export class RateLimit {
  private lastAt: number | undefined;
  private suppressed = 0;

  constructor(
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Whether this occurrence should be logged. When it should, `suppressed` says how many were
   * swallowed since the last logged one; undefined means: stay quiet.
   */
  take(): { suppressed: number } | undefined {
    const now = this.now();
    if (this.lastAt !== undefined && now - this.lastAt < this.windowMs) {
      this.suppressed++;
      return undefined;
    }
    const suppressed = this.suppressed;
    this.lastAt = now;
    this.suppressed = 0;
    return { suppressed };
  }
}
