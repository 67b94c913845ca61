/**
 * RabbitMQ topology and publishing (rabbitmq-client). Knows queue names and message envelopes;
 * knows nothing of AMI or of the policy.
 *
 * Topology:
 *   <QueueName>                    durable input queue (classic, or quorum when configured)
 *   <QueueName>.retry.<ms>         durable delay queues, one per backoff step: x-message-ttl, then
 *                                  dead-lettered by the broker back into <QueueName>. A fixed TTL per
 *                                  queue avoids the head-of-line blocking of per-message expiry.
 *   <DeadLetterQueue>              durable, where messages that cannot succeed end, with the reason
 *   <ResultsExchange>              durable topic exchange; routing keys `converted` / `failed`
 */
import type { Connection, Envelope, Publisher } from 'rabbitmq-client';
import type { Config } from '../config.js';
import { deadLetterQueueArguments, delayQueueArguments, inputQueueArguments } from './arguments.js';
import { errorCode, errorText } from '../errors.js';

export interface BrokerNames {
  readonly queueName: string;
  readonly resultsExchange: string;
  readonly deadLetterQueue: string;
  readonly queueType: 'classic' | 'quorum';
  /** Quorum only: deliveries before RabbitMQ dead-letters a message (src/queue/arguments.ts). */
  readonly deliveryLimit: number;
  /** Delay before attempt n+1, for n = 1 … MaxAttempts-1 (index 0 is level 1). */
  readonly retryDelaysMs: readonly number[];
}

/** The header that counts the attempts already made (the broker's redeliveries do not count). */
export const ATTEMPTS_HEADER = 'x-audioconvert-attempts';
/** When the service first saw a job whose input was still being written (ms since the epoch): SettleMax counts from it. */
export const SETTLE_HEADER = 'x-audioconvert-unsettled-since';

export type QueueDeclare = { queue: string; durable: boolean; arguments?: Record<string, unknown> };

/** Arguments of the input queue; the consumer re-declares it on every reconnect with these. */
export function mainQueueDeclare(names: BrokerNames): QueueDeclare {
  return withArguments({ queue: names.queueName, durable: true }, inputQueueArguments(names));
}

function withArguments(declare: QueueDeclare, args: Record<string, unknown> | undefined): QueueDeclare {
  return args === undefined ? declare : { ...declare, arguments: args };
}

export function retryQueueName(names: BrokerNames, level: number): string {
  const delay = names.retryDelaysMs[Math.min(level, names.retryDelaysMs.length) - 1] ?? 0;
  return `${names.queueName}.retry.${delay}`;
}

/** Every queue the publisher needs: the dead-letter queue and one delay queue per distinct delay. */
export function publisherQueues(names: BrokerNames): QueueDeclare[] {
  const queues: QueueDeclare[] = [withArguments({ queue: names.deadLetterQueue, durable: true }, deadLetterQueueArguments(names))];
  for (const delay of new Set(names.retryDelaysMs)) {
    queues.push({ queue: `${names.queueName}.retry.${delay}`, durable: true, arguments: delayQueueArguments(names, delay) });
  }
  return queues;
}

/** The results exchange, as the service declares it. */
export function resultsExchangeDeclare(names: BrokerNames): { exchange: string; type: 'topic'; durable: true } {
  return { exchange: names.resultsExchange, type: 'topic', durable: true };
}

/**
 * Declares everything the service uses — input queue, dead-letter queue, delay queues, results
 * exchange — so that a downstream service can bind to the results exchange as soon as the bridge
 * is ready, not only after its first job. Idempotent; rejects (e.g. PRECONDITION_FAILED) on the
 * first piece that exists with other arguments.
 */
export async function declareTopology(connection: Pick<Connection, 'queueDeclare' | 'exchangeDeclare'>, names: BrokerNames): Promise<void> {
  await connection.queueDeclare(mainQueueDeclare(names));
  for (const queue of publisherQueues(names)) await connection.queueDeclare(queue);
  await connection.exchangeDeclare(resultsExchangeDeclare(names));
}

// What rabbitmq-client and RabbitMQ say, matched in this one place where they expose no code for it.
// test/integration/library-texts.test.ts pins each text against the library and the real broker.

/** rabbitmq-client's consumer prefixes the error of a failed ack/nack with this (the error's own code is the channel's). */
const SETTLE_FAILED_PREFIX = 'failed to ack/nack message; ';

/** The consumer's 'error' is a failed ack/nack: the channel closed under a settled job, and the broker redelivers it. */
export function isSettleFailure(error: unknown): boolean {
  return error instanceof Error && error.message.startsWith(SETTLE_FAILED_PREFIX);
}

/**
 * The text of an AMQP error for a log line. rabbitmq-client names the broker's close method from a
 * table that lacks the handshake's, so a login refused at the handshake reads "undefined: ACCESS_REFUSED…".
 */
export function amqpErrorText(error: unknown): string {
  return errorText(error).replace(/^undefined: /, '');
}

/** RabbitMQ's reply text for a declare whose arguments differ: which argument, of what, and how. */
const INEQUIVALENT_ARG = /inequivalent arg '([^']+)' for (queue|exchange) '([^']+)'[^:]*:\s*(.*)$/;

/** A piece that exists with other arguments: what differs, and what a person does about it. */
export interface DeclareMismatch {
  readonly problem: string;
  readonly fix: string;
}

/**
 * Turns RabbitMQ's PRECONDITION_FAILED on a declare into what differs and how to fix it.
 * Undefined when the error is something else.
 */
export function describeDeclareMismatch(error: unknown, queue: string): DeclareMismatch | undefined {
  if (errorCode(error) !== 'PRECONDITION_FAILED') return undefined;
  const text = errorText(error);
  const match = INEQUIVALENT_ARG.exec(text);
  const what = match ? `argument ${match[1]}: ${match[4]}` : text;
  if (match?.[2] === 'exchange') {
    return {
      problem: `exchange '${match[3]}' already exists with other arguments (${what})`,
      fix:
        `Either delete it (rabbitmqadmin delete exchange name='${match[3]}') so the service can declare it again, ` +
        `or point [RabbitMQ] ResultsExchange at another name.`,
    };
  }
  const name = match?.[3] ?? queue;
  return {
    problem: `queue '${name}' already exists with other arguments (${what})`,
    fix:
      `Either make the config match the existing queue (e.g. [RabbitMQ] QueueType), or drain and delete it ` +
      `(rabbitmqctl delete_queue '${name}') so the service can declare it again.`,
  };
}

/** describeDeclareMismatch as one line: the problem, then the fix. */
export function explainDeclareMismatch(error: unknown, queue: string): string | undefined {
  const mismatch = describeDeclareMismatch(error, queue);
  return mismatch && `${mismatch.problem}. ${mismatch.fix}`;
}

/** Properties kept from the job message when it is re-published for a retry. */
export interface JobEnvelope {
  readonly messageId?: string | undefined;
  readonly correlationId?: string | undefined;
  readonly replyTo?: string | undefined;
  readonly headers?: Record<string, unknown> | undefined;
}

/** The envelope without its undefined fields (rabbitmq-client's types, exactOptionalPropertyTypes). */
function envelopeOf(fields: Record<string, unknown>): Envelope {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) if (value !== undefined) out[key] = value;
  return out;
}

/** Publishing, always with publisher confirms: a resolved promise means the broker has it. */
export class BrokerPublisher {
  private readonly publisher: Publisher;

  constructor(
    connection: Connection,
    private readonly names: BrokerNames,
  ) {
    this.publisher = connection.createPublisher({
      confirm: true,
      maxAttempts: 3,
      queues: publisherQueues(names),
      exchanges: [resultsExchangeDeclare(names)],
    });
  }

  /** The result for the next stage; also to the job's reply_to queue when it named one. */
  async publishResult(status: 'converted' | 'failed', result: object, envelope: JobEnvelope): Promise<void> {
    const common = { contentType: 'application/json', durable: true, correlationId: envelope.correlationId, messageId: envelope.messageId };
    const sends = [this.publisher.send(envelopeOf({ ...common, exchange: this.names.resultsExchange, routingKey: status }), result)];
    if (envelope.replyTo) sends.push(this.publisher.send(envelopeOf({ ...common, exchange: '', routingKey: envelope.replyTo }), result));
    await Promise.all(sends);
  }

  /** A copy of the job into the delay queue for `level`; the broker brings it back after the delay. */
  async publishRetry(level: number, attemptsDone: number, job: object, envelope: JobEnvelope): Promise<void> {
    await this.publisher.send(
      envelopeOf({
        exchange: '',
        routingKey: retryQueueName(this.names, level),
        contentType: 'application/json',
        durable: true,
        messageId: envelope.messageId,
        correlationId: envelope.correlationId,
        replyTo: envelope.replyTo,
        headers: { ...envelope.headers, [ATTEMPTS_HEADER]: attemptsDone },
      }),
      job,
    );
  }

  /** The dead-letter record: reason in headers and body, original body inside. */
  async publishDeadLetter(body: object, headers: Record<string, string | number>, envelope: JobEnvelope): Promise<void> {
    await this.publisher.send(
      envelopeOf({
        exchange: '',
        routingKey: this.names.deadLetterQueue,
        contentType: 'application/json',
        durable: true,
        messageId: envelope.messageId,
        correlationId: envelope.correlationId,
        headers,
      }),
      body,
    );
  }

  async close(): Promise<void> {
    await this.publisher.close();
  }
}

/** The broker names and delay queues the service uses, from its config: the topology it declares. */
export function brokerNames(config: Config): BrokerNames {
  const { worker, rabbitmq } = config;
  const retryDelaysMs: number[] = [];
  for (let level = 1; level < worker.maxAttempts; level++)
    retryDelaysMs.push(retryDelayMs(level, worker.retryDelayMs, worker.retryMaxDelayMs));
  return {
    queueName: rabbitmq.queueName,
    resultsExchange: rabbitmq.resultsExchange,
    deadLetterQueue: rabbitmq.deadLetterQueue,
    queueType: rabbitmq.queueType,
    deliveryLimit: rabbitmq.deliveryLimit,
    retryDelaysMs,
  };
}

/** Delay before attempt `level + 1`: base × 2^(level-1), capped. Fixed per level: one delay queue each. */
export function retryDelayMs(level: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, level - 1));
}
