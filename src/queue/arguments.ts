/**
 * PURE: the arguments the service declares its queues with. Classic queues get none beyond what a
 * delay queue needs. With `QueueType = quorum` every queue of the service is a quorum queue (so
 * retries and dead letters survive the loss of a node as the backlog does), and the input queue
 * carries what ends a poison message: a delivery limit and a dead-letter target, the service's own
 * dead-letter queue. Why arguments and not a policy: docs/decisions/0010-quorum-queues.md.
 *
 * RabbitMQ compares these on every redeclare (PRECONDITION_FAILED when they differ): changing one
 * means recreating the queue (the ADR says how).
 */

/** What the arguments depend on (a subset of the broker names and the config). */
export interface QueueArgumentInputs {
  readonly queueName: string;
  readonly deadLetterQueue: string;
  readonly queueType: 'classic' | 'quorum';
  /** Quorum only: `x-delivery-limit`. */
  readonly deliveryLimit: number;
}

export type QueueArguments = Record<string, string | number>;

/*
 * Dead-lettering stays at-most-once (RabbitMQ's default). at-least-once (`x-dead-letter-strategy`,
 * with `x-overflow: reject-publish`) would keep a message in the source until the target confirms,
 * but on RabbitMQ 3.10.8 it stalled: messages over the delivery limit, and retry copies whose TTL had
 * passed, stayed in the source queue — neither ready nor dead-lettered (ADR 0010).
 */

/** The input queue: undefined for classic (no arguments, as before). */
export function inputQueueArguments(q: QueueArgumentInputs): QueueArguments | undefined {
  if (q.queueType !== 'quorum') return undefined;
  return {
    'x-queue-type': 'quorum',
    'x-delivery-limit': q.deliveryLimit,
    'x-dead-letter-exchange': '',
    'x-dead-letter-routing-key': q.deadLetterQueue,
  };
}

/** A delay queue: holds a retry copy for `delayMs`, then the broker dead-letters it back into the input queue. */
export function delayQueueArguments(q: QueueArgumentInputs, delayMs: number): QueueArguments {
  const back = { 'x-message-ttl': delayMs, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': q.queueName };
  return q.queueType === 'quorum' ? { 'x-queue-type': 'quorum', ...back } : back;
}

/** The dead-letter queue: undefined for classic. */
export function deadLetterQueueArguments(q: QueueArgumentInputs): QueueArguments | undefined {
  return q.queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : undefined;
}
