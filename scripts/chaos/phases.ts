/** The timed parts of a chaos run: publishing at a pace, the fault loop, waiting for quiet queues. */
import path from 'node:path';
import type { FaultKind } from './faults.js';
import type { DataRoot } from './files.js';
import type { Observer } from './observer.js';
import type { ChaosOptions } from './options.js';
import type { Prng } from './prng.js';

export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for `promise`, at most `ms` (the timer does not outlive it). */
export async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Publishes every job, evenly over publishOverMs, a batch every 100 ms. One job in 50 names a GSM
 * file that does not exist (INPUT_MISSING) and one in 97 a path outside the allowed roots
 * (PATH_NOT_ALLOWED): they must be dead-lettered, never converted, whatever else happens.
 */
export async function publishAll(opts: Pick<ChaosOptions, 'jobs' | 'publishOverMs'>, data: DataRoot, observer: Observer): Promise<void> {
  const t0 = Date.now();
  let next = 0;
  while (next < opts.jobs) {
    const due = Math.min(opts.jobs, Math.ceil((opts.jobs * (Date.now() - t0 + 100)) / Math.max(1, opts.publishOverMs)));
    const batch: Promise<void>[] = [];
    for (; next < due; next++) {
      const id = `chaos-${String(next).padStart(6, '0')}`;
      const wav_path = data.wav(id);
      if (next % 50 === 49)
        batch.push(observer.publishJob({ job_id: id, gsm_path: path.join(data.gsmDir, `${id}.gsm`), wav_path }, 'INPUT_MISSING'));
      else if (next % 97 === 96)
        batch.push(observer.publishJob({ job_id: id, gsm_path: `/var/tmp/${id}.gsm`, wav_path }, 'PATH_NOT_ALLOWED'));
      else batch.push(observer.publishJob({ job_id: id, gsm_path: data.gsm(id), wav_path }));
    }
    await Promise.all(batch);
    await pause(100);
  }
}

/**
 * Injects faults until the phase is over or every job has ended: kinds in shuffled rounds (each
 * kind once per round, so a short run still sees every kind), gaps exponential around the mean.
 */
export async function faultLoop(
  opts: ChaosOptions,
  prng: Prng,
  allEnded: () => boolean,
  fire: (kind: FaultKind) => Promise<void>,
): Promise<void> {
  const end = Date.now() + opts.faultPhaseMs;
  let round: FaultKind[] = [];
  let rounds = 0;
  const completed = (): number => rounds - (round.length > 0 ? 1 : 0);
  const done = (): boolean => Date.now() >= end || (allEnded() && completed() >= (opts.minRounds ?? 0));
  while (!done() && opts.kinds.length > 0) {
    // The gap, in slices: the loop ends soon after the last job does, however long the gap.
    const fireAt = Date.now() + prng.exp(opts.faultEveryMs);
    while (!done() && Date.now() < fireAt) await pause(Math.min(200, fireAt - Date.now()));
    if (done()) break;
    if (round.length === 0) {
      round = prng.shuffle(opts.kinds);
      rounds++;
    }
    const kind = round.shift()!;
    opts.log(`fault: ${kind}`);
    await fire(kind);
  }
}

/** Resolves when the queues stay empty for a moment (or after maxMs): nothing left to consume. */
export async function drained(observer: Observer, queues: readonly string[], maxMs: number): Promise<void> {
  const end = Date.now() + maxMs;
  let emptyChecks = 0;
  while (Date.now() < end && emptyChecks < 3) {
    let total = 0;
    for (const q of queues) total += await observer.depth(q);
    emptyChecks = total === 0 ? emptyChecks + 1 : 0;
    await pause(300);
  }
}
