/**
 * The broker-only baseline, in its own process like the bridge: consume a job (prefetch =
 * concurrency), publish a result with publisher confirms to the results exchange, then ack.
 * No AMI, no validation, no metrics, no logging: what rabbitmq-client and RabbitMQ cost alone.
 *
 * argv: <amqp url> <queue> <results exchange> <concurrency>
 */
import { Connection, ConsumerStatus } from 'rabbitmq-client';

const [url, queue, exchange, concurrencyText] = process.argv.slice(2);
if (url === undefined || queue === undefined || exchange === undefined || concurrencyText === undefined) {
  process.stderr.write('usage: broker-worker <url> <queue> <exchange> <concurrency>\n');
  process.exit(2);
}
const concurrency = Number(concurrencyText);
const connection = new Connection({ url, connectionName: 'audio-convert-bench-broker-baseline', noDelay: true });
connection.on('error', (error: unknown) => process.stderr.write(`broker-worker: ${String(error)}\n`));
const publisher = connection.createPublisher({ confirm: true, exchanges: [{ exchange, type: 'topic', durable: true }] });
const consumer = connection.createConsumer(
  { queue, queueOptions: { durable: true }, qos: { prefetchCount: concurrency }, concurrency },
  async (message) => {
    const job = message.body as { job_id?: string; gsm_path?: string; wav_path?: string };
    const now = new Date().toISOString();
    await publisher.send(
      { exchange, routingKey: 'converted', contentType: 'application/json', durable: true },
      {
        job_id: job.job_id,
        status: 'converted',
        gsm_path: job.gsm_path,
        wav_path: job.wav_path,
        wav_bytes: 48044,
        attempts: 1,
        started_at: now,
        finished_at: now,
        duration_ms: 0,
      },
    );
    return ConsumerStatus.ACK;
  },
);
consumer.on('error', (error: unknown) => process.stderr.write(`broker-worker: consumer: ${String(error)}\n`));
consumer.once('ready', () => process.stdout.write('ready\n'));
const stop = (): void => {
  void consumer
    .close()
    .then(() => publisher.close())
    .then(() => connection.close())
    .finally(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
