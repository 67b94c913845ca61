/**
 * The closed-loop load generator every design is measured with: `window` jobs outstanding at all
 * times (a completion submits the next job), a warm-up, then a measured window. Latency is
 * submit → completion of the jobs submitted inside the measured window; with `window` equal to
 * the design's concurrency no job ever waits for a free slot, so the latency is what the design
 * itself adds, not queueing in front of it. A `backlog` keeps that many jobs more outstanding: for
 * a design fed by a queue, saturation with jobs waiting (the latency then includes the wait).
 */
import { performance } from 'node:perf_hooks';
import { latencySummary } from './stats.js';

export interface LoopOptions {
  readonly window: number;
  /**
   * Jobs outstanding beyond `window` in the closed loop (default 0). With 0, a queue-fed design
   * at saturation waits, for every job, for the round trip completion → producer → broker → design
   * before its freed slot is used again; the direct driver starts its next job at once. A backlog
   * keeps jobs waiting in the queue, as a backlog does in production.
   */
  readonly backlog?: number | undefined;
  readonly warmupMs: number;
  readonly measureMs: number;
  /** Sends job `seq`; its completion must be reported with `complete(seq)` (or `fail(seq)`). */
  readonly submit: (seq: number) => void;
  /** Called when the measured window opens and closes (CPU meters). */
  readonly onMeasureStart?: () => void;
  readonly onMeasureEnd?: () => void;
  /**
   * Open loop instead: submit at this steady rate (jobs/s) whatever the completions do. For
   * latency at a load below capacity, where a closed loop only shows Little's law (C / throughput).
   */
  readonly ratePerS?: number | undefined;
  /** How long to wait for the last outstanding jobs after the window; default 20 s. */
  readonly drainTimeoutMs?: number | undefined;
  /**
   * The warm-up also lasts until this many jobs completed (at most 120 s more): with a real
   * Asterisk a job takes seconds at high concurrency, and a window opened before the pipeline
   * turned over once measures the start-up, not the steady state.
   */
  readonly warmupCompletions?: number | undefined;
}

export interface LoopResult {
  readonly jobsPerS: number;
  readonly completedInWindow: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly failures: number;
  /** Jobs submitted in total (warm-up and drain included). */
  readonly submitted: number;
  readonly measuredSeconds: number;
}

export class ClosedLoop {
  private readonly sentAt: number[] = [];
  private readonly latencies: number[] = [];
  private phase: 'idle' | 'warmup' | 'measure' | 'drain' | 'done' = 'idle';
  private measureStart = 0;
  private measureEnd = 0;
  private inWindow = 0;
  private failures = 0;
  private outstanding = 0;
  private completed = 0;
  private next = 0;
  private onDrained: (() => void) | undefined;

  constructor(private readonly opts: LoopOptions) {}

  /** A job finished. Unknown or repeated sequence numbers are ignored. */
  complete(seq: number, ok = true): void {
    const sent = this.sentAt[seq];
    if (sent === undefined || sent < 0) return;
    this.sentAt[seq] = -1;
    this.outstanding--;
    this.completed++;
    const now = performance.now();
    if (!ok) this.failures++;
    if (this.phase === 'measure') this.inWindow++;
    if ((this.phase === 'measure' || this.phase === 'drain') && sent >= this.measureStart) this.latencies.push(now - sent);
    if ((this.phase === 'warmup' || this.phase === 'measure') && this.opts.ratePerS === undefined) this.submitNext();
    else if (this.phase === 'drain' && this.outstanding === 0) this.onDrained?.();
  }

  /** Runs warm-up, window and drain; resolves with the figures. */
  async run(): Promise<LoopResult> {
    this.phase = 'warmup';
    const pacer = this.opts.ratePerS === undefined ? undefined : this.pace(this.opts.ratePerS);
    if (pacer === undefined) for (let i = 0; i < this.opts.window + (this.opts.backlog ?? 0); i++) this.submitNext();
    await sleep(this.opts.warmupMs);
    const warmupEnd = performance.now() + 120_000;
    while (this.completed < (this.opts.warmupCompletions ?? 0) && performance.now() < warmupEnd) await sleep(50);
    this.opts.onMeasureStart?.();
    this.phase = 'measure';
    this.measureStart = performance.now();
    await sleep(this.opts.measureMs);
    this.phase = 'drain';
    pacer?.stop();
    this.measureEnd = performance.now();
    this.opts.onMeasureEnd?.();
    if (this.outstanding > 0) {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`${this.outstanding} jobs still outstanding after the drain timeout`)),
          this.opts.drainTimeoutMs ?? 20_000,
        );
        this.onDrained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    this.phase = 'done';
    const seconds = (this.measureEnd - this.measureStart) / 1000;
    const lat = latencySummary(this.latencies);
    return {
      jobsPerS: this.inWindow / seconds,
      completedInWindow: this.inWindow,
      p50Ms: lat.p50,
      p99Ms: lat.p99,
      maxMs: lat.max,
      failures: this.failures,
      submitted: this.next,
      measuredSeconds: seconds,
    };
  }

  /**
   * Submits what is due at `rate`, waking only when the next job is due (a timer every 1 ms would
   * cost this process ~0.1 ms of CPU per wake-up on a small VM, taken from the processes measured).
   */
  private pace(rate: number): { stop(): void } {
    const t0 = performance.now();
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const tick = (): void => {
      if (stopped) return;
      const now = performance.now();
      const due = Math.floor(((now - t0) * rate) / 1000);
      while (this.next < due) this.submitNext();
      const nextAt = t0 + ((this.next + 1) * 1000) / rate;
      timer = setTimeout(tick, Math.max(0, nextAt - now));
    };
    tick();
    return {
      stop: () => {
        stopped = true;
        clearTimeout(timer);
      },
    };
  }

  private submitNext(): void {
    const seq = this.next++;
    this.sentAt[seq] = performance.now();
    this.outstanding++;
    try {
      this.opts.submit(seq);
    } catch {
      // Counted as a failure; not replaced, or a submit that always throws would recurse forever.
      this.sentAt[seq] = -1;
      this.outstanding--;
      this.failures++;
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
