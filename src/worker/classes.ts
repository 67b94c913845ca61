/**
 * Two classes of work (docs/decisions/0012-bulk-class.md): live jobs on `<QueueName>`, bulk work (a
 * backfill) on `<QueueName>.bulk`. One consumer per queue; both share ONE gate of `Concurrency`
 * slots, and a free slot always goes to a waiting live job first. So bulk work uses only what live
 * traffic leaves: with a bulk backlog of millions, a live job waits at most for one job in flight
 * to finish, never behind the backlog (that stays in RabbitMQ, on its own queue).
 */
import type { Consumer } from 'rabbitmq-client';
import type { JobClass } from '../metrics.js';
import { publisherQueues, type BrokerNames } from '../queue/broker.js';
import type { IntakeConsumer } from './intake.js';

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

/** Frees the slot; calling it again does nothing. */
export type ReleaseSlot = () => void;

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
