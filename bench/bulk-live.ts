/**
 * Live jobs under a bulk backlog (docs/decisions/0012-bulk-class.md): N bulk jobs are queued on
 * `<QueueName>.bulk` (publisher confirms, in windows) before the service starts; once it is busy
 * with them, live jobs arrive one at a time on `<QueueName>` and each one's wait is measured:
 * from its publish to its result, against the time the service spent on it (the conversion).
 *
 * The service runs in this process against the AMI emulator in instant mode with a fixed
 * conversion time (--conversion-ms), so the figures are about scheduling, not sox.
 *
 *   npm run bench:bulk                        100,000 bulk jobs, 200 live jobs
 *   npm run bench:bulk -- --bulk 20000 --live 50 --conversion-ms 50 --concurrency 8
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Connection } from 'rabbitmq-client';
import { parseConfig } from '../src/config.js';
import { AsteriskEmulator } from '../src/emulator/server.js';
import { nullLogger } from '../src/log.js';
import { brokerNames } from '../src/queue/broker.js';
import { start } from '../src/main.js';
import { bulkQueueName, serviceQueues } from '../src/worker/lanes.js';
import { percentile } from './stats.js';

const { values } = parseArgs({
  options: {
    bulk: { type: 'string', default: '100000' },
    live: { type: 'string', default: '200' },
    'live-interval-ms': { type: 'string', default: '100' },
    'conversion-ms': { type: 'string', default: '50' },
    concurrency: { type: 'string', default: '8' },
    amqp: { type: 'string', default: process.env['AUDIOCONVERT_TEST_AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672' },
  },
});
const BULK = Number(values.bulk);
const LIVE = Number(values.live);
const INTERVAL_MS = Number(values['live-interval-ms']);
const CONVERSION_MS = Number(values['conversion-ms']);
const CONCURRENCY = Number(values.concurrency);

interface Result {
  readonly job_id: string;
  readonly status: string;
  readonly duration_ms: number;
}

async function main(): Promise<void> {
  const root = mkdtempSync(path.join(tmpdir(), 'ac-bench-bulk-'));
  const emulator = await AsteriskEmulator.start({ port: 0, root, mode: 'instant', latencyMs: CONVERSION_MS });
  const id = randomUUID().slice(0, 8);
  const config = parseConfig(
    `[RabbitMQ]\nUrl = ${values.amqp}\nQueueName = bench-bulk.${id}\nResultsExchange = bench-bulk.${id}.results\nDeadLetterQueue = bench-bulk.${id}.dead\n` +
      `[AsteriskAMI]\nPort = ${emulator.port}\nUser = auditorai\nSecret = simulator\n` +
      `[Worker]\nConcurrency = ${CONCURRENCY}\nAllowedRoots = ${root}\n[Metrics]\nListen = off\n[Logging]\nMinimumLevel = ERROR\n`,
    '<bench>',
    {},
  );
  const names = brokerNames(config);
  const bulkQueue = bulkQueueName(names.queueName);
  const amqp = new Connection(values.amqp);
  amqp.on('error', () => undefined);
  const job = (jobId: string) => ({ job_id: jobId, gsm_path: `${root}/gsm/${jobId}.gsm`, wav_path: `${root}/wav/${jobId}.wav` });

  // Results: the service's own exchange, every routing key, into a queue of ours.
  const results = new Map<string, { at: number; result: Result }>();
  let bulkDone = 0;
  const onBulk: (() => void)[] = [];
  const resultsQueue = `${names.queueName}.bench-results`;
  const consumer = amqp.createConsumer(
    {
      queue: resultsQueue,
      queueOptions: { exclusive: true, autoDelete: true },
      exchanges: [{ exchange: names.resultsExchange, type: 'topic', durable: true }],
      queueBindings: [{ exchange: names.resultsExchange, queue: resultsQueue, routingKey: '#' }],
      qos: { prefetchCount: 1000 },
    },
    (message) => {
      const result = message.body as Result;
      if (result.job_id.startsWith('live-')) results.set(result.job_id, { at: performance.now(), result });
      else if (++bulkDone % 100 === 0) onBulk.splice(0).forEach((f) => f());
    },
  );
  consumer.on('error', () => undefined);

  try {
    // The backlog, with confirms, at most 2,000 unconfirmed at once.
    await amqp.queueDeclare({ queue: bulkQueue, durable: true });
    const publisher = amqp.createPublisher({ confirm: true });
    const t0 = performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: 2000 }, async () => {
        while (next < BULK) {
          const seq = next++;
          await publisher.send({ routingKey: bulkQueue, durable: true, contentType: 'application/json' }, job(`bulk-${seq}`));
        }
      }),
    );
    const publishS = (performance.now() - t0) / 1000;
    const queued = (await amqp.queueDeclare({ queue: bulkQueue, passive: true })).messageCount;
    process.stderr.write(`queued ${queued} bulk jobs in ${publishS.toFixed(1)} s\n`);

    const service = await start(config, { logger: nullLogger(), version: 'bench' });
    await new Promise<void>((resolve) => onBulk.push(resolve)); // busy with bulk work: 100 done
    const bulkAtLiveStart = bulkDone;
    const liveStart = performance.now();
    const sentAt = new Map<string, number>();
    for (let i = 0; i < LIVE; i++) {
      const jobId = `live-${i}`;
      sentAt.set(jobId, performance.now());
      await publisher.send({ routingKey: names.queueName, durable: true, contentType: 'application/json' }, job(jobId));
      await new Promise((resolve) => setTimeout(resolve, INTERVAL_MS)); // the arrival rate of live traffic
    }
    while (results.size < LIVE) await new Promise<void>((resolve) => onBulk.push(resolve));
    const liveS = (performance.now() - liveStart) / 1000;
    const bulkRate = (bulkDone - bulkAtLiveStart) / liveS;
    const bulkLeft = (await amqp.queueDeclare({ queue: bulkQueue, passive: true })).messageCount;
    await service.close();
    await publisher.close();

    const waits: number[] = [];
    const totals: number[] = [];
    const services: number[] = [];
    for (const [jobId, { at, result }] of results) {
      const total = at - sentAt.get(jobId)!;
      totals.push(total);
      services.push(result.duration_ms);
      waits.push(total - result.duration_ms);
    }
    const row = (name: string, xs: number[]): string =>
      `| ${name} | ${percentile(xs, 50).toFixed(0)} | ${percentile(xs, 95).toFixed(0)} | ${percentile(xs, 99).toFixed(0)} | ${Math.max(...xs).toFixed(0)} |`;
    const fifoMinutes = (queued - bulkAtLiveStart) / Math.max(bulkRate, 1) / 60;
    process.stdout.write(
      [
        `bulk backlog: ${queued} jobs queued (confirms, ${publishS.toFixed(1)} s); Concurrency ${CONCURRENCY}; conversion ${CONVERSION_MS} ms (emulator)`,
        `live: ${LIVE} jobs, one every ${INTERVAL_MS} ms; all converted: ${[...results.values()].every((r) => r.result.status === 'converted')}`,
        `bulk converted meanwhile: ${bulkRate.toFixed(0)} jobs/s; bulk left when the live jobs were done: ${bulkLeft}`,
        `one FIFO queue instead: a live job would wait behind ≈ ${(queued - bulkAtLiveStart).toLocaleString('en')} jobs ≈ ${fifoMinutes.toFixed(0)} min at that rate`,
        '',
        '| live job, ms | p50 | p95 | p99 | max |',
        '|---|---|---|---|---|',
        row('publish → result', totals),
        row('in the service (duration_ms)', services),
        row('wait (the difference)', waits),
        '',
      ].join('\n'),
    );
  } finally {
    await consumer.close();
    for (const queue of serviceQueues(names)) await amqp.queueDelete({ queue }).catch(() => undefined);
    await amqp.exchangeDelete({ exchange: names.resultsExchange }).catch(() => undefined);
    await amqp.close();
    await emulator.close();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
