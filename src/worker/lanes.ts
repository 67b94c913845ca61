/**
 * The two classes of work (docs/decisions/0012-bulk-class.md) as lanes, and the gate they share.
 * Live jobs on `<QueueName>`, bulk work (a backfill) on `<QueueName>.bulk`: each lane has its own
 * queue and delay queues, publisher, handler, counters and lazy consumer (Intake starts and stops
 * them as one: BothLanes). Both sit behind ONE gate of `Concurrency` slots, and a free slot always
 * goes to a waiting live job first. So bulk work uses only what live traffic leaves: with a bulk
 * backlog of millions, a live job waits at most for one job in flight to finish, never behind the
 * backlog (that stays in RabbitMQ, on its own queue).
 */
import type { Connection, Consumer } from 'rabbitmq-client';
import type { Config } from '../config.js';
import { errorText } from '../errors.js';
import type { Logger } from '../log.js';
import type { JobClass, Metrics } from '../metrics.js';
import {
  BrokerPublisher,
  explainDeclareMismatch,
  isSettleFailure,
  mainQueueDeclare,
  publisherQueues,
  type BrokerNames,
} from '../queue/broker.js';
import { createJobHandler, type HandlerDeps, type JobCounters, type ReleaseSlot } from './handler.js';
import type { IntakeConsumer } from './intake.js';
import type { Originator } from './originate.js';
import type { TempFileReaper } from './tempfiles.js';

// ---- Names of the lanes ----

/** The bulk queue of an input queue. */
export const bulkQueueName = (queueName: string): string => `${queueName}.bulk`;

/**
 * The bulk lane's names: its own queue and its own delay queues (`<QueueName>.bulk.retry.<ms>`,
 * dead-lettered back into the bulk queue), so a retried bulk job never lands among live ones.
 * Results exchange and dead-letter queue are shared.
 */
export function bulkBrokerNames(names: BrokerNames): BrokerNames {
  return { ...names, queueName: bulkQueueName(names.queueName) };
}

/** Every queue the service declares: both input queues, both sets of delay queues, the dead-letter queue. */
export function serviceQueues(names: BrokerNames): string[] {
  const bulk = bulkBrokerNames(names);
  return [
    ...new Set([
      names.queueName,
      bulk.queueName,
      ...publisherQueues(names).map((q) => q.queue),
      ...publisherQueues(bulk).map((q) => q.queue),
    ]),
  ];
}

/**
 * `Concurrency` slots shared by the classes: a slot is a conversion on Asterisk. Live waiters are
 * served before bulk waiters. Closing it (the service stops) sends every waiter away without a slot.
 */
export class ClassGate {
  private free: number;
  private closed = false;
  private readonly waiting: Record<JobClass, ((release: ReleaseSlot | undefined) => void)[]> = { live: [], bulk: [] };

  constructor(readonly slots: number) {
    this.free = slots;
  }

  /** Slots in use now. */
  get busy(): number {
    return this.slots - this.free;
  }

  /**
   * Resolves when the job of class `cls` may go to Asterisk, with the function that frees its slot
   * (call it when the attempt ended); or with undefined once the gate is closed.
   */
  acquire(cls: JobClass): Promise<ReleaseSlot | undefined> {
    if (this.closed) return Promise.resolve(undefined);
    if (this.free > 0 && (cls === 'live' || this.waiting.live.length === 0)) {
      this.free--;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve) => this.waiting[cls].push(resolve));
  }

  /** No more slots: every waiter (and every later acquire) gets undefined; slots in use are still freed as usual. */
  close(): void {
    this.closed = true;
    for (const waiter of [...this.waiting.live.splice(0), ...this.waiting.bulk.splice(0)]) waiter(undefined);
  }

  private releaser(): ReleaseSlot {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.release();
    };
  }

  private release(): void {
    // The slot passes straight to the next waiter (live first), so nobody can overtake it.
    const next = this.waiting.live.shift() ?? this.waiting.bulk.shift();
    if (next !== undefined) next(this.releaser());
    else this.free++;
  }
}

/** The part of a rabbitmq-client Consumer (created with `lazy: true`) a lane is. */
export type LaneConsumer = Pick<Consumer, 'start' | 'close'> & { on(event: 'ready', listener: () => void): unknown };

/**
 * The live and bulk consumers as the one consumer intake drives: started and closed together,
 * subscribed when BOTH are (a bulk consumer whose subscription is refused keeps /readyz at 503,
 * `paused: starting`, instead of going unnoticed).
 */
export class BothLanes implements IntakeConsumer {
  private readonly subscribed = new Set<JobClass>();

  constructor(
    private readonly live: LaneConsumer,
    private readonly bulk: LaneConsumer,
    /** Every lane is subscribed (after a start, or after rabbitmq-client re-subscribed them all). */
    private readonly onSubscribed: () => void,
  ) {
    live.on('ready', () => this.laneReady('live'));
    bulk.on('ready', () => this.laneReady('bulk'));
  }

  start(): void {
    this.subscribed.clear();
    this.live.start();
    this.bulk.start();
  }

  channelLost(): void {
    this.subscribed.clear();
  }

  /** Closes both, even when one fails; rejects with the first failure. */
  async close(): Promise<void> {
    const [live, bulk] = await Promise.allSettled([this.live.close(), this.bulk.close()]);
    for (const settled of [live, bulk]) if (settled.status === 'rejected') throw settled.reason;
  }

  private laneReady(cls: JobClass): void {
    this.subscribed.add(cls);
    if (this.subscribed.size === 2) this.onSubscribed();
  }
}

// ---- Building the lanes ----

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

function handlerSettings(
  config: Config,
  lane: BrokerNames,
): Pick<HandlerDeps, 'queueName' | 'rules' | 'jobTimeoutMs' | 'maxAttempts' | 'settleTimeMs' | 'settleMaxMs'> {
  const { worker } = config;
  return {
    queueName: lane.queueName,
    rules: { allowedRoots: worker.allowedRoots, inputExtension: worker.inputExtension, outputExtension: worker.outputExtension },
    jobTimeoutMs: worker.jobTimeoutMs,
    maxAttempts: worker.maxAttempts,
    settleTimeMs: worker.settleTimeMs,
    settleMaxMs: worker.settleMaxMs,
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
    audio: (seconds, flags) => {
      metrics.audioDuration.observe(seconds);
      for (const flag of flags) metrics.audioFlags.inc({ flag });
    },
    unsettled: (outcome) => metrics.inputsUnsettled.inc({ outcome }),
  };
}
