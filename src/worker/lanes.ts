/**
 * The two classes of work (ADR 0012) as lanes: each has its own queue, publisher, handler and
 * counters, and both sit behind one gate of `Concurrency` slots that gives live jobs a free slot
 * first. The consumers are lazy: Intake starts and stops them.
 */
import type { Connection, Consumer } from 'rabbitmq-client';
import type { Originator } from './originate.js';
import type { Config } from '../config.js';
import { errorText } from '../errors.js';
import type { Logger } from '../log.js';
import type { JobClass, Metrics } from '../metrics.js';
import { BrokerPublisher, explainDeclareMismatch, isSettleFailure, mainQueueDeclare, type BrokerNames } from '../queue/broker.js';
import { BothLanes, ClassGate } from './classes.js';
import { createJobHandler, type HandlerDeps, type JobCounters } from './handler.js';
import type { TempFileReaper } from './tempfiles.js';

/** What both lanes share: the Originator, the temp-file reaper, the deployment hook. */
export interface LaneContext {
  readonly config: Config;
  readonly amqp: Connection;
  readonly originator: Originator;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly tempFiles: TempFileReaper;
  /** Aborted when the drain deadline passes: jobs in flight give up and are requeued. */
  readonly abandon: AbortSignal;
  readonly amiConnected: () => boolean;
  readonly pauseIntake: HandlerDeps['pauseIntake'];
  /** Both lanes' consumers are subscribed (intake's subscribed()). */
  readonly onSubscribed: () => void;
}

/** The live and bulk lanes behind one gate, their publishers (closed at shutdown) and the gate (closed first). */
export function createLanes(
  c: LaneContext,
  names: { live: BrokerNames; bulk: BrokerNames },
): { lanes: BothLanes; publishers: BrokerPublisher[]; gate: ClassGate } {
  const gate = new ClassGate(c.config.worker.concurrency);
  const live = new BrokerPublisher(c.amqp, names.live);
  const bulk = new BrokerPublisher(c.amqp, names.bulk);
  const lanes = new BothLanes(createLane('live', names.live, live, gate, c), createLane('bulk', names.bulk, bulk, gate, c), c.onSubscribed);
  return { lanes, publishers: [live, bulk], gate };
}

/** One class of work: its own handler (own queue, publisher, counters), its slots from the shared gate, consumed from its queue. */
function createLane(cls: JobClass, lane: BrokerNames, publisher: BrokerPublisher, gate: ClassGate, c: LaneContext): Consumer {
  const handler = createJobHandler({
    ...handlerSettings(c.config, lane),
    originator: c.originator,
    publisher,
    counters: countersFor(c.metrics, cls),
    logger: c.logger,
    amiConnected: c.amiConnected,
    pauseIntake: c.pauseIntake,
    abandon: c.abandon,
    tempFiles: c.tempFiles,
    acquireSlot: () => gate.acquire(cls),
  });
  return createConsumer(c.amqp, lane, c.config, handler, c.logger);
}

function handlerSettings(config: Config, lane: BrokerNames): Pick<HandlerDeps, 'queueName' | 'rules' | 'jobTimeoutMs' | 'maxAttempts'> {
  const { worker } = config;
  return {
    queueName: lane.queueName,
    rules: { allowedRoots: worker.allowedRoots, inputExtension: worker.inputExtension, outputExtension: worker.outputExtension },
    jobTimeoutMs: worker.jobTimeoutMs,
    maxAttempts: worker.maxAttempts,
  };
}

/**
 * Messages a lane holds beyond `Concurrency`: while a finished job publishes its result, waits for
 * the confirm and acks, the next one is already here and takes the freed slot at once, instead of
 * waiting for the ack to reach RabbitMQ and a new delivery to come back. On the real Asterisk:
 * 0.995 / 0.985 of the direct driver at C=4 / C=16 with it, 0.945 / 0.901 without
 * (docs/benchmarks.md). Small, so a backlog still waits in RabbitMQ, where another bridge can take it.
 */
export const headroom = (concurrency: number): number => Math.max(1, Math.ceil(concurrency / 4));

/** The lazy consumer intake drives: prefetch = handlers = Concurrency + headroom; the gate keeps Asterisk at Concurrency. */
function createConsumer(
  amqp: Connection,
  names: BrokerNames,
  config: Config,
  handler: ReturnType<typeof createJobHandler>,
  logger: Logger,
): Consumer {
  const handlers = config.worker.concurrency + headroom(config.worker.concurrency);
  const consumer = amqp.createConsumer(
    {
      queue: names.queueName,
      queueOptions: mainQueueDeclare(names),
      qos: { prefetchCount: handlers },
      concurrency: handlers,
      requeue: true,
      lazy: true,
    },
    handler,
  );
  const log = logger.child({ component: 'amqp' });
  consumer.on('error', (error: unknown) => {
    const mismatch = explainDeclareMismatch(error, names.queueName);
    if (mismatch !== undefined) log.crit(mismatch);
    else if (isSettleFailure(error)) {
      // The channel closed under a settled job (pause or connection loss): nothing is lost, the
      // broker redelivers the message; at-least-once makes the re-run harmless.
      log.notice('a message could not be settled on a closed channel; RabbitMQ will redeliver it', { error: errorText(error) });
    } else log.error('consumer error', { error: errorText(error) });
  });
  return consumer;
}

/** The handler's counting hooks for one class of work (live or bulk). */
export function countersFor(metrics: Metrics, cls: JobClass): JobCounters {
  return {
    received: () => metrics.jobsReceived.inc({ class: cls }),
    inFlight: (delta) => metrics.jobsInFlight.inc({ class: cls }, delta),
    completed: (result, seconds) => {
      metrics.jobsCompleted.inc({ class: cls, result });
      metrics.jobDuration.observe({ class: cls, result }, seconds);
    },
    retried: (code) => metrics.jobsRetried.inc({ class: cls, code }),
    deadLettered: (code) => metrics.jobsDeadLettered.inc({ class: cls, code }),
    requeued: () => metrics.jobsRequeued.inc({ class: cls }),
    unexpected: (code) => metrics.unexpectedErrors.inc({ code }),
  };
}
