/**
 * Intake: whether we take messages from RabbitMQ right now. The consumer runs only while no
 * reason to pause holds: AMI down, topology not declared yet, a deployment error, shutdown. Pausing closes the AMQP consumer
 * (unstarted prefetched messages go back to the queue, in-flight ones finish), so while Asterisk
 * is away messages wait in RabbitMQ — no hot requeue loop, no delivery-limit burn on quorum queues.
 *
 * Conversions on Asterisk are bounded by the lanes' shared gate (worker/lanes.ts), not here.
 */

/** `topology`: at start-up, until every queue and the results exchange are declared. */
export type PauseReason = 'ami-down' | 'topology' | 'deployment' | 'shutdown';

/**
 * What intake drives: the lanes' lazy consumers as one. It tells intake when it is subscribed
 * (every lane) through `Intake.subscribed()`; `channelLost` forgets that subscription.
 */
export interface IntakeConsumer {
  start(): void;
  close(): Promise<void>;
  channelLost?(): void;
}

/** What intake reports, to the one listener main.ts wires (metric, log line, readiness). */
export interface IntakeHooks {
  /** The effective state changed; `pausedFor` is notConsumingFor at that moment. */
  readonly onChange?: (consuming: boolean, pausedFor: string[]) => void;
  /** The set of pause reasons changed (what notConsumingFor says may change without the state changing). */
  readonly onReasons?: () => void;
  /**
   * Closing the consumer failed (its channel dropped mid-request). Intake closes it again, since
   * rabbitmq-client leaves a consumer whose close() rejected closing, where start() does nothing.
   */
  readonly onCloseFailed?: (error: unknown) => void;
}

/** Closing a consumer is tried this often before intake gives up on it (the second try finds the channel gone and completes). */
const CLOSE_TRIES = 3;

/**
 * Drives one lazy consumer from a set of pause reasons. Transitions are serialised: a close()
 * in progress is awaited before a start(), since rabbitmq-client ignores start() while closing.
 * pause() and resume() never reject: callers may `void` them.
 */
export class Intake {
  private readonly reasons = new Set<PauseReason>();
  private running = false;
  private ready = false;
  /** The AMQP channel went away under the subscribed consumer, and it has not re-subscribed yet. */
  private lost = false;
  private busy: Promise<void> | undefined;
  private dirty = false;

  constructor(
    private readonly consumer: IntakeConsumer,
    initial: readonly PauseReason[] = [],
    private readonly hooks: IntakeHooks = {},
  ) {
    for (const reason of initial) this.reasons.add(reason);
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

  /** The consumer (every lane of it) is subscribed: called by it, after each start and each re-subscription. */
  subscribed(): void {
    if (!this.running) return;
    this.ready = true;
    this.lost = false;
    this.changed(true);
  }

  /**
   * The AMQP connection dropped under a running consumer. rabbitmq-client re-subscribes by itself
   * and the consumer reports subscribed() again; until then we are not consuming.
   */
  channelLost(): void {
    this.consumer.channelLost?.();
    if (!this.ready) return;
    this.ready = false;
    this.lost = true;
    this.changed(false);
  }

  pause(reason: PauseReason): Promise<void> {
    if (!this.reasons.has(reason)) {
      this.reasons.add(reason);
      this.hooks.onReasons?.();
    }
    return this.reconcile();
  }

  resume(reason: PauseReason): Promise<void> {
    if (this.reasons.delete(reason)) this.hooks.onReasons?.();
    return this.reconcile();
  }

  private changed(consuming: boolean): void {
    this.hooks.onChange?.(consuming, this.notConsumingFor);
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
        await this.closeConsumer();
        if (wasReady) this.changed(false);
      }
    } while (this.dirty);
  }

  /** close() rejects when the channel drops mid-request (AMI and RabbitMQ lost together): close again, never throw. */
  private async closeConsumer(): Promise<void> {
    for (let tries = 1; ; tries++) {
      try {
        await this.consumer.close();
        return;
      } catch (error) {
        this.hooks.onCloseFailed?.(error);
        if (tries >= CLOSE_TRIES) return;
      }
    }
  }
}
