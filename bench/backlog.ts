/**
 * Memory under backlog: N jobs are published (with confirms) BEFORE the bridge starts, then the
 * bridge drains them. Its RSS is sampled every 100 ms from the moment it is ready until the last
 * result; prefetch bounds what it holds, so RSS must not grow with N.
 */
import { performance } from 'node:perf_hooks';
import { jobIdOf, type BenchBroker } from './amqp.js';
import { queueNames, sleep, startBridge, type BridgeOptions } from './env.js';
import { removeBridgeObjects } from './drive-amqp.js';
import { sampleProc } from './procstat.js';

export interface BacklogSpec extends BridgeOptions {
  readonly broker: BenchBroker;
  readonly messages: number;
  readonly gsm: string;
  readonly wavFor: (seq: number) => string;
}

export interface BacklogResult {
  readonly messages: number;
  readonly concurrency: number;
  /** Environment and node flags the bridge ran with, as on a command line ('' = none). */
  readonly nodeFlags: string;
  readonly publishSeconds: number;
  readonly queuedAtStart: number;
  readonly drainSeconds: number;
  readonly drainJobsPerS: number;
  readonly rssReadyMb: number;
  readonly rssMaxMb: number;
  readonly rssEndMb: number;
  readonly hwmMb: number;
  /** RSS at 0 %, 25 %, 50 %, 75 %, 100 % of the drain. */
  readonly rssByProgress: readonly number[];
  readonly failures: number;
}

/** Publishes `n` jobs, at most `inFlight` unconfirmed at once. */
async function publishMany(
  broker: BenchBroker,
  queue: string,
  n: number,
  body: (seq: number) => Parameters<BenchBroker['publish']>[1],
  inFlight = 2000,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < n) {
      const seq = next++;
      await broker.publish(queue, body(seq));
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, n) }, lane));
}

export async function runBacklog(spec: BacklogSpec): Promise<BacklogResult> {
  const names = queueNames(spec.queue);
  await spec.broker.declareQueue(names.queue);
  const t0 = performance.now();
  await publishMany(spec.broker, names.queue, spec.messages, (seq) => ({
    job_id: jobIdOf('b', seq),
    gsm_path: spec.gsm,
    wav_path: spec.wavFor(seq),
  }));
  const publishSeconds = (performance.now() - t0) / 1000;
  const queuedAtStart = await spec.broker.depth(names.queue);
  let results = 0;
  let failures = 0;
  await spec.broker.observeResults(names.results, (_jobId, status) => {
    results++;
    if (status !== 'converted') failures++;
  });
  const bridge = await startBridge(spec);
  const samples: Array<{ done: number; rss: number }> = [];
  const start = performance.now();
  let hwmMb = Number.NaN;
  let drainEnd = start;
  try {
    const deadline = Date.now() + Math.max(120_000, spec.messages * 5);
    while (results < spec.messages && Date.now() < deadline) {
      const s = sampleProc(bridge.pid);
      if (s !== undefined) samples.push({ done: results, rss: s.rssMb });
      await sleep(100);
    }
    drainEnd = performance.now();
    const last = sampleProc(bridge.pid);
    if (last !== undefined) {
      samples.push({ done: results, rss: last.rssMb });
      hwmMb = last.hwmMb;
    }
  } finally {
    await bridge.stop();
    await spec.broker.stopObservers();
    await removeBridgeObjects(spec);
  }
  const drainSeconds = (drainEnd - start) / 1000;
  if (results < spec.messages) throw new Error(`backlog: only ${results} of ${spec.messages} results arrived`);
  return {
    messages: spec.messages,
    concurrency: spec.concurrency,
    // The environment first, as on a command line: `MALLOC_ARENA_MAX=2 --max-semi-space-size=8 …`.
    nodeFlags: [...Object.entries(spec.env ?? {}).map(([k, v]) => `${k}=${v}`), ...(spec.nodeFlags ?? [])].join(' '),
    publishSeconds,
    queuedAtStart,
    drainSeconds,
    drainJobsPerS: results / drainSeconds,
    rssReadyMb: samples[0]?.rss ?? Number.NaN,
    rssMaxMb: Math.max(...samples.map((s) => s.rss)),
    rssEndMb: samples.at(-1)?.rss ?? Number.NaN,
    hwmMb,
    rssByProgress: [0, 0.25, 0.5, 0.75, 1].map((f) => samples.find((s) => s.done >= f * spec.messages)?.rss ?? Number.NaN),
    failures,
  };
}
