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

/**
 * Dead-lettering by a quorum queue is at-most-once unless asked otherwise: a message could be lost
 * if the target is unavailable at that moment (a leader election). at-least-once keeps it in the
 * source until the target confirms; RabbitMQ requires `x-overflow: reject-publish` with it (3.10+).
 * Used where it matters most and was measured to work on 3.10.8: a retry copy coming back from
 * its delay queue. Not on the input queue: there, on 3.10.8, a message over the delivery limit
 * stayed stuck in the queue in most of our runs instead of reaching the dead-letter queue (ADR 0010).
 */
const AT_LEAST_ONCE: QueueArguments = { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' };

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
  return q.queueType === 'quorum' ? { 'x-queue-type': 'quorum', ...back, ...AT_LEAST_ONCE } : back;
}

/** The dead-letter queue: undefined for classic. */
export function deadLetterQueueArguments(q: QueueArgumentInputs): QueueArguments | undefined {
  return q.queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : undefined;
}
