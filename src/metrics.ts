/**
 * Every metric of the service, in ONE explicit prom-client Registry (never the global one, so tests
 * and several instances in one process do not collide). Injected into the modules that count.
 * Labels are small closed sets (result, error code): never job ids or paths.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { ERROR_CODES, UNEXPECTED_CODES } from './errors.js';

/** How a job ended, as the result message says. */
export type JobResult = 'converted' | 'failed';
export const JOB_RESULTS = ['converted', 'failed'] as const satisfies readonly JobResult[];

/** Which input queue a job came from: live traffic, or bulk work (a backfill) that only uses spare capacity. */
export type JobClass = 'live' | 'bulk';
export const JOB_CLASSES = ['live', 'bulk'] as const satisfies readonly JobClass[];

/** The audio flags a converted channel can carry (docs/messages.md "audio"). */
export type AudioFlag = 'silent' | 'clipped' | 'unsettled';
export const AUDIO_FLAGS = ['silent', 'clipped', 'unsettled'] as const satisfies readonly AudioFlag[];

/** What happened to a job whose input was still being written when it arrived. */
export type UnsettledOutcome = 'deferred' | 'converted';
export const UNSETTLED_OUTCOMES = ['deferred', 'converted'] as const satisfies readonly UnsettledOutcome[];

/** Recordings last seconds to an hour or more. */
export const AUDIO_DURATION_BUCKETS = [1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200];

/** Job durations are seconds to minutes (a conversion is ~0.1–1 s; JobTimeout defaults to 120 s). */
export const JOB_DURATION_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300];

export interface Metrics {
  /** The registry `/metrics` serves. */
  readonly registry: Registry;
  /** `audioconvert_jobs_received_total{class}`: job messages taken from the queue. */
  readonly jobsReceived: Counter<'class'>;
  /** `audioconvert_jobs_completed_total{class,result}`: jobs that reached a final outcome (result published, message settled). */
  readonly jobsCompleted: Counter<'class' | 'result'>;
  /** `audioconvert_job_duration_seconds{class,result}`: from taking the message to its final outcome. */
  readonly jobDuration: Histogram<'class' | 'result'>;
  /** `audioconvert_jobs_in_flight{class}`: jobs being worked on now. */
  readonly jobsInFlight: Gauge<'class'>;
  /** `audioconvert_worker_concurrency`: the configured limit on jobs in flight. */
  readonly workerConcurrency: Gauge;
  /** `audioconvert_jobs_retried_total{class,code}`: attempts that failed transiently and were scheduled again. */
  readonly jobsRetried: Counter<'class' | 'code'>;
  /** `audioconvert_jobs_dead_lettered_total{class,code}`: messages dead-lettered (invalid, refused, or out of attempts). */
  readonly jobsDeadLettered: Counter<'class' | 'code'>;
  /** `audioconvert_jobs_requeued_total{class}`: messages handed back to the queue untouched (shutdown). */
  readonly jobsRequeued: Counter<'class'>;
  /**
   * `audioconvert_unexpected_errors_total{code}`: errors that are not expected outcomes (a path the
   * service cannot read, a bug, a message that could not be settled); the storm detector.
   */
  readonly unexpectedErrors: Counter<'code'>;
  /** `audioconvert_audio_duration_seconds`: the audio of each converted channel (a two-leg job counts two). */
  readonly audioDuration: Histogram;
  /** `audioconvert_audio_flags_total{flag}`: converted channels flagged silent, clipped or unsettled. */
  readonly audioFlags: Counter<'flag'>;
  /**
   * `audioconvert_inputs_unsettled_total{outcome}`: jobs whose input was still being written: sent to
   * wait through a delay queue (`deferred`), or converted as they were after SettleMax (`converted`).
   */
  readonly inputsUnsettled: Counter<'outcome'>;
  /** `audioconvert_ami_connected`: 1 while logged in to AMI. */
  readonly amiConnected: Gauge;
  /** `audioconvert_ami_reconnects_total`: AMI connections re-established after a loss. */
  readonly amiReconnects: Counter;
  /** `audioconvert_amqp_connected`: 1 while connected to RabbitMQ. */
  readonly amqpConnected: Gauge;
  /** `audioconvert_consuming`: 1 while taking messages from the job queue. */
  readonly consuming: Gauge;
  /** `audioconvert_build_info{version,node}`: always 1. */
  readonly buildInfo: Gauge<'version' | 'node'>;
}

/** Sampling period of `nodejs_eventloop_lag_*`: 10 samples a second still catch a blocked loop. */
const EVENT_LOOP_SAMPLE_MS = 100;

const UNEXPECTED_HELP = 'Errors that are not expected job outcomes (unreadable path, bug, message not settled), by code.';

/** Create a fresh registry with every metric defined and every known series at 0. */
export function createMetrics(options: { readonly version: string }): Metrics {
  const registry = new Registry();
  const registers = [registry];
  // The event-loop lag histogram samples with a timer; prom-client's default (10 ms) wakes an idle
  // service 100 times a second, which cost ~5 ms of CPU per second here (docs/benchmarks.md).
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });

  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> =>
    new Counter<L>({ name, help, labelNames, registers });
  const gauge = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> =>
    new Gauge<L>({ name, help, labelNames, registers });

  const byClass = ['class'] as const;
  const byClassResult = ['class', 'result'] as const;
  const byClassCode = ['class', 'code'] as const;
  const metrics: Metrics = {
    registry,
    jobsReceived: counter('audioconvert_jobs_received_total', 'Job messages taken from the queue, by class (live, bulk).', byClass),
    jobsCompleted: counter('audioconvert_jobs_completed_total', 'Jobs that reached a final outcome, by class and result.', byClassResult),
    jobDuration: new Histogram({
      name: 'audioconvert_job_duration_seconds',
      help: 'Time from taking a job message to its final outcome, by class and result.',
      labelNames: byClassResult,
      buckets: JOB_DURATION_BUCKETS,
      registers,
    }),
    jobsInFlight: gauge('audioconvert_jobs_in_flight', 'Jobs being worked on now, by class.', byClass),
    workerConcurrency: gauge('audioconvert_worker_concurrency', 'Configured maximum of jobs in flight.'),
    jobsRetried: counter(
      'audioconvert_jobs_retried_total',
      'Attempts that failed transiently and will be retried, by class and error code.',
      byClassCode,
    ),
    jobsDeadLettered: counter('audioconvert_jobs_dead_lettered_total', 'Job messages dead-lettered, by class and error code.', byClassCode),
    jobsRequeued: counter(
      'audioconvert_jobs_requeued_total',
      'Job messages returned to the queue untouched (shutdown), by class.',
      byClass,
    ),
    unexpectedErrors: counter('audioconvert_unexpected_errors_total', UNEXPECTED_HELP, ['code']),
    audioDuration: new Histogram({
      name: 'audioconvert_audio_duration_seconds',
      help: 'Audio duration of each converted channel (from its samples).',
      buckets: AUDIO_DURATION_BUCKETS,
      registers,
    }),
    audioFlags: counter('audioconvert_audio_flags_total', 'Converted channels by audio flag (silent, clipped, unsettled).', ['flag']),
    inputsUnsettled: counter(
      'audioconvert_inputs_unsettled_total',
      'Jobs whose input was still being written: deferred through a delay queue, or converted after SettleMax.',
      ['outcome'],
    ),
    amiConnected: gauge('audioconvert_ami_connected', '1 while logged in to Asterisk AMI.'),
    amiReconnects: counter('audioconvert_ami_reconnects_total', 'AMI connections re-established after a loss.'),
    amqpConnected: gauge('audioconvert_amqp_connected', '1 while connected to RabbitMQ.'),
    consuming: gauge('audioconvert_consuming', '1 while taking messages from the job queue.'),
    buildInfo: gauge('audioconvert_build_info', 'Build information; always 1.', ['version', 'node']),
  };

  zeroSeries(metrics);
  metrics.buildInfo.set({ version: options.version, node: process.versions.node }, 1);
  return metrics;
}

/** Series that exist from the first scrape: rate() and alerts need a 0 before the first event. */
function zeroSeries(metrics: Metrics): void {
  for (const cls of JOB_CLASSES) {
    metrics.jobsReceived.inc({ class: cls }, 0);
    metrics.jobsRequeued.inc({ class: cls }, 0);
    metrics.jobsInFlight.set({ class: cls }, 0);
    for (const result of JOB_RESULTS) {
      metrics.jobsCompleted.inc({ class: cls, result }, 0);
      metrics.jobDuration.zero({ class: cls, result });
    }
    for (const code of ERROR_CODES) {
      metrics.jobsRetried.inc({ class: cls, code }, 0);
      metrics.jobsDeadLettered.inc({ class: cls, code }, 0);
    }
  }
  for (const code of UNEXPECTED_CODES) metrics.unexpectedErrors.inc({ code }, 0);
  for (const flag of AUDIO_FLAGS) metrics.audioFlags.inc({ flag }, 0);
  for (const outcome of UNSETTLED_OUTCOMES) metrics.inputsUnsettled.inc({ outcome }, 0);
  metrics.audioDuration.zero({});
  for (const g of [metrics.workerConcurrency, metrics.amiConnected, metrics.amqpConnected, metrics.consuming]) {
    g.set(0);
  }
}
