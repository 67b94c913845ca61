/**
 * The bench's RabbitMQ side: a producer that publishes jobs with publisher confirms, and an
 * observer of the results exchange (its own exclusive queue, no acks: it watches, it is not part
 * of the system under test). Used for the bridge and for the broker-only baseline.
 */
import { once } from 'node:events';
import { Connection, type Consumer, type Publisher } from 'rabbitmq-client';

export interface JobBody {
  job_id: string;
  gsm_path: string;
  wav_path: string;
}

export class BenchBroker {
  readonly connection: Connection;
  private readonly publisher: Publisher;
  private observers: Consumer[] = [];

  constructor(url: string) {
    this.connection = new Connection({ url, connectionName: 'audio-convert-bench', noDelay: true });
    this.connection.on('error', (error: unknown) => process.stderr.write(`bench: RabbitMQ: ${String(error)}\n`));
    this.publisher = this.connection.createPublisher({ confirm: true });
  }

  /** Publishes one persistent job; resolves when the broker confirmed it. */
  publish(queue: string, body: JobBody, headers?: Record<string, unknown>): Promise<void> {
    return this.publisher.send({ routingKey: queue, durable: true, ...(headers === undefined ? {} : { headers }) }, body);
  }

  /** Declares the input queue as the bridge does (durable, classic). */
  async declareQueue(queue: string): Promise<void> {
    await this.connection.queueDeclare({ queue, durable: true });
  }

  /** Messages ready in `queue`. */
  async depth(queue: string): Promise<number> {
    return (await this.connection.queueDeclare({ queue, passive: true })).messageCount;
  }

  /**
   * Watches every result published to `exchange`; calls `onResult(jobId, status)` for each.
   * Resolves once the observer's queue is bound and consuming.
   */
  async observeResults(exchange: string, onResult: (jobId: string, status: string) => void): Promise<void> {
    const queue = `${exchange}.bench-observer`;
    const consumer = this.connection.createConsumer(
      {
        queue,
        noAck: true,
        queueOptions: { exclusive: true, autoDelete: true },
        exchanges: [{ exchange, type: 'topic', durable: true }],
        queueBindings: [{ exchange, queue, routingKey: '#' }],
      },
      (message) => {
        const body = (Buffer.isBuffer(message.body) ? JSON.parse(message.body.toString()) : message.body) as {
          job_id?: string;
          status?: string;
        };
        onResult(body.job_id ?? '', body.status ?? '?');
      },
    );
    consumer.on('error', (error: unknown) => process.stderr.write(`bench: observer: ${String(error)}\n`));
    this.observers.push(consumer);
    await once(consumer, 'ready');
  }

  async stopObservers(): Promise<void> {
    const observers = this.observers;
    this.observers = [];
    await Promise.allSettled(observers.map((c) => c.close()));
  }

  /** Deletes queues and exchanges (a run's leftovers); errors are ignored. */
  async remove(queues: readonly string[], exchanges: readonly string[]): Promise<void> {
    for (const queue of queues) await this.connection.queueDelete({ queue }).catch(() => undefined);
    for (const exchange of exchanges) await this.connection.exchangeDelete({ exchange }).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.stopObservers();
    await this.publisher.close();
    await this.connection.close();
  }
}

/** `j<seq>` ↔ seq: the job id carries the loop's sequence number. */
export const jobIdOf = (prefix: string, seq: number): string => `${prefix}${seq}`;
export function seqOf(prefix: string, jobId: string): number {
  return jobId.startsWith(prefix) ? Number(jobId.slice(prefix.length)) : -1;
}
