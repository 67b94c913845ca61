/**
 * Intake: whether we take messages from RabbitMQ right now. The consumer runs only while no
 * reason to pause holds: AMI down, topology not declared yet, a deployment error, shutdown. Pausing closes the AMQP consumer
 * (unstarted prefetched messages go back to the queue, in-flight ones finish), so while Asterisk
 * is away messages wait in RabbitMQ — no hot requeue loop, no delivery-limit burn on quorum queues.
 *
 * Conversions on Asterisk are bounded by the lanes' shared gate (worker/classes.ts), not here.
 */
import { EventEmitter } from 'node:events';
import type { Consumer } from 'rabbitmq-client';

/** `topology`: at start-up, until every queue and the results exchange are declared. */
export type PauseReason = 'ami-down' | 'topology' | 'deployment' | 'shutdown';

/** The part of rabbitmq-client's Consumer that intake drives (created with `lazy: true`). */
export type PausableConsumer = Pick<Consumer, 'start' | 'close'> & Pick<EventEmitter, 'on'>;

/**
 * Drives one lazy consumer from a set of pause reasons. Transitions are serialised: a close()
 * in progress is awaited before a start(), since rabbitmq-client ignores start() while closing.
 * Emits 'change' with `consuming` whenever the effective state changes, and 'reasons' whenever the
 * set of pause reasons does (what notConsumingFor says may change without the state changing).
 */
export class Intake extends EventEmitter {
  private readonly reasons = new Set<PauseReason>();
  private running = false;
  private ready = false;
  /** The AMQP channel went away under the subscribed consumer, and it has not re-subscribed yet. */
  private lost = false;
  private busy: Promise<void> | undefined;
  private dirty = false;

  constructor(
    private readonly consumer: PausableConsumer,
    initial: readonly PauseReason[] = [],
  ) {
    super();
    for (const reason of initial) this.reasons.add(reason);
    consumer.on('ready', () => {
      if (!this.running) return;
      this.ready = true;
      this.lost = false;
      this.emit('change', true);
    });
  }

  /** True when the consumer is subscribed and no pause reason holds. */
  get consuming(): boolean {
    return this.running && this.ready && this.reasons.size === 0;
  }

  /**
   * Why it is not consuming, as /readyz and the log both say it: the pause reasons; else
   * `amqp-down` when the channel went away under the consumer (rabbitmq-client re-subscribes by
   * itself); else `starting` (subscribing, or the consumer's own queue declaration is refused).
   * Empty while consuming.
   */
  get notConsumingFor(): string[] {
    if (this.consuming) return [];
    if (this.reasons.size > 0) return [...this.reasons];
    return [this.lost ? 'amqp-down' : 'starting'];
  }

  /**
   * The AMQP connection dropped under a running consumer. rabbitmq-client re-subscribes by itself
   * and emits 'ready' again; until then we are not consuming.
   */
  channelLost(): void {
    if (!this.ready) return;
    this.ready = false;
    this.lost = true;
    this.emit('change', false);
  }

  pause(reason: PauseReason): Promise<void> {
    if (!this.reasons.has(reason)) {
      this.reasons.add(reason);
      this.emit('reasons');
    }
    return this.reconcile();
  }

  resume(reason: PauseReason): Promise<void> {
    if (this.reasons.delete(reason)) this.emit('reasons');
    return this.reconcile();
  }

  /** Resolves once the consumer's state matches the reasons (a pause: all handlers settled). */
  private reconcile(): Promise<void> {
    if (this.busy !== undefined) {
      this.dirty = true;
      return this.busy;
    }
    this.busy = this.loop().finally(() => {
      this.busy = undefined;
    });
    return this.busy;
  }

  private async loop(): Promise<void> {
    do {
      this.dirty = false;
      const want = this.reasons.size === 0;
      if (want && !this.running) {
        this.running = true;
        this.consumer.start();
      } else if (!want && this.running) {
        this.running = false;
        const wasReady = this.ready;
        this.ready = false;
        // `consuming` is false from here on; the event waits until every handler has settled and
        // unstarted messages are back in the queue, so a listener sees the queue as it will stay.
        await this.consumer.close();
        if (wasReady) this.emit('change', false);
      }
    } while (this.dirty);
  }
}
