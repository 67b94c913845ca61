/**
 * Two classes of work (docs/decisions/0012-bulk-class.md): live jobs on `<QueueName>`, bulk work (a
 * backfill) on `<QueueName>.bulk`. One consumer per queue; both share ONE gate of `Concurrency`
 * slots, and a free slot always goes to a waiting live job first. So bulk work uses only what live
 * traffic leaves: with a bulk backlog of millions, a live job waits at most for one job in flight
 * to finish, never behind the backlog (that stays in RabbitMQ, on its own queue).
 */
import { EventEmitter } from 'node:events';
import { ConsumerStatus, type AsyncMessage } from 'rabbitmq-client';
import type { JobClass } from '../metrics.js';
import { publisherQueues, type BrokerNames } from '../queue/broker.js';
import type { PausableConsumer } from './intake.js';

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

/** `Concurrency` slots shared by the classes; live waiters are served before bulk waiters. */
export class ClassGate {
  private free: number;
  private readonly waiting: Record<JobClass, (() => void)[]> = { live: [], bulk: [] };

  constructor(readonly slots: number) {
    this.free = slots;
  }

  /** Slots in use now. */
  get busy(): number {
    return this.slots - this.free;
  }

  /** Resolves when the job of class `cls` may run; call the returned function exactly once when it ends. */
  async acquire(cls: JobClass): Promise<() => void> {
    if (this.free > 0 && (cls === 'live' || this.waiting.live.length === 0)) {
      this.free--;
    } else {
      await new Promise<void>((resolve) => this.waiting[cls].push(resolve));
    }
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
    if (next !== undefined) next();
    else this.free++;
  }
}

type Handler = (message: AsyncMessage) => Promise<ConsumerStatus>;

/**
 * The handler of one class, run only while it holds a slot of the gate. A message still waiting
 * for a slot when `stop` fires (the drain deadline of a shutdown) goes back to the queue untouched
 * instead of starting a conversion the service would abandon at once.
 */
export function gated(gate: ClassGate, cls: JobClass, handler: Handler, stop?: AbortSignal): Handler {
  return async (message) => {
    const release = await gate.acquire(cls);
    try {
      if (stop?.aborted === true) return ConsumerStatus.REQUEUE;
      return await handler(message);
    } finally {
      release();
    }
  };
}

/**
 * The live and bulk consumers as the one consumer intake drives: started and closed together;
 * 'ready' is the live consumer's (the service consumes when its live queue is subscribed).
 */
export class BothLanes extends EventEmitter implements PausableConsumer {
  constructor(
    private readonly live: PausableConsumer,
    private readonly bulk: PausableConsumer,
  ) {
    super();
    live.on('ready', () => this.emit('ready'));
  }

  start(): void {
    this.live.start();
    this.bulk.start();
  }

  async close(): Promise<void> {
    await Promise.all([this.live.close(), this.bulk.close()]);
  }
}
