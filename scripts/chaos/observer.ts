/**
 * The broker side of a chaos run or test, outside the bridge: publishes jobs (with confirms,
 * retried through broker faults), watches the results exchange and the dead-letter queue through
 * durable queues of its own (so nothing is lost while the broker restarts), and cleans up every
 * queue and exchange of the run.
 */
import { Connection, type AsyncMessage, type Consumer, type Publisher } from 'rabbitmq-client';
import type { QueueNames } from './bridge.js';
import type { DeadLetter, Expected, Ledger } from './ledger.js';

/** A job message body, as producers send it (docs/messages.md "Job"). */
export interface JobBody {
  readonly job_id: string;
  readonly gsm_path: string;
  readonly wav_path: string;
}

function bodyOf(message: AsyncMessage): Record<string, unknown> {
  const raw: unknown = message.body;
  if (Buffer.isBuffer(raw)) return JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
  if (typeof raw === 'string') return JSON.parse(raw) as Record<string, unknown>;
  return (raw ?? {}) as Record<string, unknown>;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export class Observer {
  readonly amqp: Connection;
  private readonly publisher: Publisher;
  private readonly consumers: Consumer[] = [];
  private readonly observedQueue: string;

  /**
   * `queueArguments`: the input queue's, exactly as the bridge declares it (a quorum queue has some).
   * `cluster`: the nodes to fail over between, and the arguments of the dead-letter queue (as the
   * bridge declares it) and of the observer's own results queue (quorum on a cluster, so nothing is
   * lost with a node).
   */
  constructor(
    amqpUrl: string,
    readonly names: QueueNames,
    private readonly ledger: Ledger,
    private readonly queueArguments?: Record<string, unknown>,
    private readonly cluster?: {
      hosts?: string[];
      deadLetterArguments?: Record<string, unknown>;
      resultsArguments?: Record<string, unknown>;
    },
  ) {
    this.amqp = new Connection({
      url: amqpUrl,
      ...(cluster?.hosts === undefined ? {} : { hosts: cluster.hosts }),
      connectionName: 'audio-convert-chaos-observer',
      retryLow: 200,
      retryHigh: 2000,
    });
    this.amqp.on('error', () => undefined);
    this.observedQueue = `${names.queueName}.observed-results`;
    this.publisher = this.amqp.createPublisher({ confirm: true, maxAttempts: 1 });
  }

  /** Declares what the bridge will use and starts watching results and dead letters. */
  async start(): Promise<void> {
    const { names } = this;
    const results = this.amqp.createConsumer(
      {
        queue: this.observedQueue,
        queueOptions: {
          durable: true,
          ...(this.cluster?.resultsArguments === undefined ? {} : { arguments: this.cluster.resultsArguments }),
        },
        qos: { prefetchCount: 200 },
        exchanges: [{ exchange: names.resultsExchange, type: 'topic', durable: true }],
        queueBindings: [{ exchange: names.resultsExchange, queue: this.observedQueue, routingKey: '#' }],
      },
      (message) => {
        try {
          this.ledger.result(bodyOf(message));
        } catch {
          this.ledger.result({ job_id: '<unparseable result>' });
        }
      },
    );
    const deadOptions = {
      durable: true,
      ...(this.cluster?.deadLetterArguments === undefined ? {} : { arguments: this.cluster.deadLetterArguments }),
    };
    const dead = this.amqp.createConsumer(
      { queue: names.deadLetterQueue, queueOptions: deadOptions, qos: { prefetchCount: 200 } },
      (message) => this.ledger.deadLetter(deadLetterOf(message)),
    );
    for (const c of [results, dead]) {
      c.on('error', () => undefined);
      this.consumers.push(c);
    }
    await Promise.all([onceReady(results), onceReady(dead)]);
    await this.amqp.queueDeclare({
      queue: names.queueName,
      durable: true,
      ...(this.queueArguments === undefined ? {} : { arguments: this.queueArguments }),
    });
  }

  /**
   * Publishes one job and waits for the broker's confirm, retrying through connection loss
   * until `deadline` (epoch ms). The ledger learns the id first: its result may arrive before
   * the confirm does. A retried publish may put the job in the queue twice: a duplicate, allowed.
   */
  async publishJob(job: JobBody, expected: Expected = 'converted', deadline = Date.now() + 120_000): Promise<void> {
    this.ledger.publish(job.job_id, expected);
    for (;;) {
      try {
        await this.publisher.send(
          { routingKey: this.names.queueName, durable: true, messageId: job.job_id, contentType: 'application/json' },
          job,
        );
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await sleep(250);
      }
    }
  }

  /** Ready messages in a queue (0 when it does not exist). */
  async depth(queue: string): Promise<number> {
    try {
      return (await this.amqp.queueDeclare({ queue, passive: true })).messageCount;
    } catch {
      return 0;
    }
  }

  /** Stops consuming, deletes every queue and exchange named (the run's own), closes. */
  async close(extraQueues: readonly string[] = []): Promise<void> {
    await Promise.allSettled([...this.consumers.map((c) => c.close()), this.publisher.close()]);
    const { names } = this;
    for (const queue of [names.queueName, names.deadLetterQueue, this.observedQueue, ...extraQueues]) {
      await this.amqp.queueDelete({ queue }).catch(() => undefined);
    }
    await this.amqp.exchangeDelete({ exchange: names.resultsExchange }).catch(() => undefined);
    await this.amqp.close();
  }
}

/**
 * A dead-letter record as the bridge writes it (x-audioconvert-* headers), or a job message the
 * broker itself dead-lettered (a quorum queue's delivery-limit: x-first-death-reason), as `broker:<reason>`.
 */
function deadLetterOf(message: AsyncMessage): DeadLetter {
  const h = message.headers ?? {};
  if (h['x-audioconvert-job-id'] === undefined && h['x-first-death-reason'] !== undefined) {
    let jobId = '<unparseable>';
    try {
      const id = bodyOf(message)['job_id'];
      if (typeof id === 'string') jobId = id;
    } catch {
      // keep '<unparseable>'
    }
    const reason = String(h['x-first-death-reason']);
    const time = (h['x-death'] as { time?: unknown }[] | undefined)?.[0]?.time;
    const failedAt = time instanceof Date ? time.toISOString() : `delivery ${message.deliveryTag}`;
    return { jobId, code: `broker:${reason}`, reason: `dead-lettered by RabbitMQ (${reason})`, failedAt };
  }
  return {
    jobId: String(h['x-audioconvert-job-id'] ?? ''),
    code: String(h['x-audioconvert-error-code'] ?? ''),
    reason: String(h['x-audioconvert-reason'] ?? ''),
    failedAt: String(h['x-audioconvert-failed-at'] ?? ''),
  };
}

function onceReady(consumer: Consumer): Promise<void> {
  return new Promise((resolve) => consumer.once('ready', () => resolve()));
}
