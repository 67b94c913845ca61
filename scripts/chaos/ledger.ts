/**
 * The ledger: which job ids were published, and what became of each — converted results,
 * dead-letter records. Pure bookkeeping: the AMQP side (observer.ts) feeds it.
 *
 * A publication is counted once however often the observer's own queue hands it over (the
 * observer can see a redelivery after a broker fault): results are keyed by job id + attempts +
 * finished_at, dead-letter records by job id + failed_at. A second distinct `converted`
 * publication for a job id is a duplicate conversion (at-least-once redelivery), allowed and counted.
 */

/** The parts of a result message the ledger reads. */
export interface ResultBody {
  readonly job_id?: unknown;
  readonly status?: unknown;
  readonly attempts?: unknown;
  readonly finished_at?: unknown;
  readonly wav_bytes?: unknown;
  readonly error?: { readonly code?: unknown } | undefined;
}

/** The parts of a dead-letter record the ledger reads (headers and body). */
export interface DeadLetter {
  readonly jobId: string;
  readonly code: string;
  readonly reason: string;
  readonly failedAt: string;
}

/** What a job was built to end in: converted, or dead-lettered with this code. */
export type Expected = 'converted' | 'INPUT_MISSING' | 'PATH_NOT_ALLOWED';

/** Codes a good job may end in when it runs out of attempts (allowed under chaos, reported). */
const TRANSIENT = new Set(['TIMEOUT', 'AMI_DISCONNECTED', 'HANGUP_WITHOUT_RESULT', 'CONVERSION_FAILED', 'ORIGINATE_FAILED']);

export interface Tally {
  readonly published: number;
  /** Published jobs built to be dead-lettered (input missing, path outside the roots). */
  readonly builtToFail: number;
  /** Job ids with at least one `converted` result. */
  readonly converted: number;
  /** Job ids that were dead-lettered and never converted, by error code. */
  readonly deadLettered: Record<string, number>;
  /** `converted` publications beyond the first per job id. */
  readonly duplicateConversions: number;
  /** Job ids with more than one `converted` publication. */
  readonly jobsConvertedMoreThanOnce: number;
  /** Job ids converted and (on another delivery) also dead-lettered. */
  readonly convertedAndDeadLettered: number;
  /** Job ids with neither: must be 0. */
  readonly missing: number;
  readonly missingIds: readonly string[];
  /** Results naming a job id that was never published (must be 0). */
  readonly unknownResults: number;
  /** `converted` results with a wav_bytes that is not a positive number (must be 0). */
  readonly badResults: number;
  /** Dead-letter records without a readable reason (must be 0). */
  readonly deadLettersWithoutReason: number;
  /** Good jobs that ran out of attempts (transient codes, or the broker's delivery-limit): allowed, reported. */
  readonly goodJobsGaveUp: number;
  /** Jobs that ended otherwise than built to (a bad job converted, a good one refused): must be 0. */
  readonly wrongOutcomes: number;
  readonly wrongOutcomeExamples: readonly string[];
}

/** The tally's must-be-zero counts are zero: nothing lost, unknown, malformed, unexplained or wrong. */
export function tallyClean(t: Tally): boolean {
  return t.missing === 0 && t.unknownResults === 0 && t.badResults === 0 && t.deadLettersWithoutReason === 0 && t.wrongOutcomes === 0;
}

export class Ledger {
  private readonly published = new Map<string, Expected>();
  private readonly converted = new Map<string, number>();
  private readonly dead = new Map<string, DeadLetter>();
  private readonly seen = new Set<string>();
  private readonly endedIds = new Set<string>();
  private unknown = 0;
  private bad = 0;
  private noReason = 0;
  private waiter: { resolve: () => void } | undefined;

  /** A job id is about to be published (registered first: its result may come back before the confirm). */
  publish(jobId: string, expected: Expected = 'converted'): void {
    this.published.set(jobId, expected);
  }

  get publishedCount(): number {
    return this.published.size;
  }

  /** A result message arrived on the observer's queue. */
  result(body: ResultBody): void {
    const jobId = String(body.job_id);
    const key = `r|${jobId}|${String(body.attempts)}|${String(body.finished_at)}|${String(body.status)}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (!this.published.has(jobId)) this.unknown++;
    if (body.status === 'converted') {
      if (typeof body.wav_bytes !== 'number' || body.wav_bytes <= 0) this.bad++;
      this.converted.set(jobId, (this.converted.get(jobId) ?? 0) + 1);
      if (this.published.has(jobId)) this.endedIds.add(jobId);
    }
    this.check();
  }

  /** A dead-letter record arrived. */
  deadLetter(record: DeadLetter): void {
    const key = `d|${record.jobId}|${record.failedAt}`;
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (!this.published.has(record.jobId)) this.unknown++;
    if (record.reason.trim().length < 5 || record.code === '') this.noReason++;
    if (!this.dead.has(record.jobId)) this.dead.set(record.jobId, record);
    if (this.published.has(record.jobId)) this.endedIds.add(record.jobId);
    this.check();
  }

  /** Job ids published that have no end yet. */
  pending(): string[] {
    return [...this.published.keys()].filter((id) => !this.converted.has(id) && !this.dead.has(id));
  }

  /** Number of published job ids that have an end (converted or dead-lettered). */
  get ended(): number {
    return this.endedIds.size;
  }

  /** Job ids with a `converted` result. */
  convertedIds(): string[] {
    return [...this.converted.keys()];
  }

  /** Resolves once every published job id has an end (checked on each arrival). */
  onAllEnded(): Promise<void> {
    return new Promise((resolve) => {
      this.waiter = { resolve };
      this.check();
    });
  }

  private check(): void {
    if (this.waiter !== undefined && this.published.size > 0 && this.ended === this.published.size) {
      this.waiter.resolve();
      this.waiter = undefined;
    }
  }

  tally(): Tally {
    const deadLettered: Record<string, number> = {};
    let both = 0;
    for (const [id, record] of this.dead) {
      if (this.converted.has(id)) both++;
      else deadLettered[record.code] = (deadLettered[record.code] ?? 0) + 1;
    }
    let duplicates = 0;
    let multi = 0;
    for (const n of this.converted.values()) {
      duplicates += n - 1;
      if (n > 1) multi++;
    }
    const missingIds = this.pending();
    const wrong: string[] = [];
    let gaveUp = 0;
    for (const [id, expected] of this.published) {
      const code = this.dead.get(id)?.code;
      if (expected !== 'converted') {
        if (this.converted.has(id) || (code !== undefined && code !== expected && !code.startsWith('broker:')))
          wrong.push(`${id}: built for ${expected}, got ${this.converted.has(id) ? 'converted' : code}`);
      } else if (!this.converted.has(id) && code !== undefined) {
        // broker:delivery_limit — a quorum queue's policy gave up on it (reported, see docs/reliability.md).
        if (TRANSIENT.has(code) || code.startsWith('broker:')) gaveUp++;
        else wrong.push(`${id}: a good job dead-lettered with ${code}`);
      }
    }
    return {
      published: this.published.size,
      builtToFail: [...this.published.values()].filter((e) => e !== 'converted').length,
      converted: this.converted.size,
      deadLettered,
      duplicateConversions: duplicates,
      jobsConvertedMoreThanOnce: multi,
      convertedAndDeadLettered: both,
      missing: missingIds.length,
      missingIds: missingIds.slice(0, 20),
      unknownResults: this.unknown,
      badResults: this.bad,
      deadLettersWithoutReason: this.noReason,
      goodJobsGaveUp: gaveUp,
      wrongOutcomes: wrong.length,
      wrongOutcomeExamples: wrong.slice(0, 10),
    };
  }
}
