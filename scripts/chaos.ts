/**
 * `npm run chaos`: thousands of jobs through the built bridge while AMI, "Asterisk", the bridge
 * process and RabbitMQ fail at random (seeded) moments. At the end every job id must have ended
 * converted or dead-lettered with a reason; prints the tally, exits 1 if anything is missing.
 *
 * Broker faults (close_all_connections, stop_app/start_app) hit EVERY client of the RabbitMQ node:
 * point --rabbit-node/--amqp-url at a node of its own, or pass --no-broker-faults, when other
 * things use the local broker.
 */
import { parseArgs } from 'node:util';
import { FAULT_KINDS, FULL_TIMING, LOCAL_FAULTS } from './chaos/faults.js';
import { formatReport } from './chaos/report.js';
import { runChaos } from './chaos/run.js';

const HELP = `npm run chaos -- [options]

  --jobs N              jobs to publish (default 10000)
  --seed S              PRNG seed for fault kinds, gaps and durations (default: random, printed)
  --duration SECONDS    faults go on until every job has ended, at most this long (default 1800)
  --publish-over SECONDS  jobs are published evenly over this long (default: max(10, jobs/150))
  --fault-every SECONDS mean gap between faults (default 2.5)
  --mode real|instant   real: sox converts every file and each WAV is checked (default);
                        instant: the emulator answers without converting, results are checked
  --concurrency N       the bridge's [Worker] Concurrency (default 16)
  --no-broker-faults    leave RabbitMQ alone (no close_all_connections, no stop_app)
  --amqp-url URL        default amqp://guest:guest@127.0.0.1:5672
  --rabbit-node NODE    rabbitmqctl -n NODE for broker faults (default: rabbitmqctl's default node)
  --bridge-log FILE     append the bridge's JSON log lines (every process) to FILE
  --queue-type classic|quorum   the bridge's [RabbitMQ] QueueType (default classic)
  --delivery-limit N    quorum: the bridge's [RabbitMQ] DeliveryLimit (default 20), the input queue's
                        x-delivery-limit into the DLQ; broker dead-letters are reported
`;

function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      jobs: { type: 'string' },
      seed: { type: 'string' },
      duration: { type: 'string' },
      'publish-over': { type: 'string' },
      'fault-every': { type: 'string' },
      mode: { type: 'string' },
      concurrency: { type: 'string' },
      'no-broker-faults': { type: 'boolean' },
      'amqp-url': { type: 'string' },
      'rabbit-node': { type: 'string' },
      'bridge-log': { type: 'string' },
      'queue-type': { type: 'string' },
      'delivery-limit': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return Promise.resolve(0);
  }
  const num = (name: string, value: string | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} ${value}: must be a non-negative number`);
    return n;
  };
  const jobs = Math.floor(num('jobs', values.jobs, 10_000));
  const seed = Math.floor(num('seed', values.seed, Math.floor(Math.random() * 2 ** 31)));
  const faultPhaseMs = num('duration', values.duration, 1800) * 1000;
  const mode = values.mode ?? 'real';
  if (mode !== 'real' && mode !== 'instant') throw new Error(`--mode ${mode}: must be real or instant`);
  const queueType = values['queue-type'] ?? 'classic';
  if (queueType !== 'classic' && queueType !== 'quorum') throw new Error(`--queue-type ${queueType}: must be classic or quorum`);
  const deliveryLimit = values['delivery-limit'] === undefined ? undefined : Math.floor(num('delivery-limit', values['delivery-limit'], 0));
  if (deliveryLimit !== undefined && queueType !== 'quorum') throw new Error('--delivery-limit needs --queue-type quorum');
  return runChaos({
    jobs,
    seed,
    faultPhaseMs,
    publishOverMs: num('publish-over', values['publish-over'], Math.max(10, jobs / 150)) * 1000,
    faultEveryMs: num('fault-every', values['fault-every'], 2.5) * 1000,
    settleMs: 180_000,
    kinds: values['no-broker-faults'] ? LOCAL_FAULTS : FAULT_KINDS,
    timing: FULL_TIMING,
    mode,
    latencyMs: 30,
    amqpUrl: values['amqp-url'] ?? process.env['AUDIOCONVERT_TEST_AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672',
    rabbitNode: values['rabbit-node'],
    queueType,
    deliveryLimit,
    worker: {
      Concurrency: String(Math.floor(num('concurrency', values.concurrency, 16))),
      JobTimeout: '3',
      MaxAttempts: '8',
      RetryDelay: '200ms',
      RetryMaxDelay: '2',
      DrainTimeout: '5',
    },
    conversionTimeoutMs: 6000,
    bridgeLog: values['bridge-log'],
    log: (line) => process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`),
  }).then((report) => {
    process.stdout.write(`\nchaos tally (seed ${seed}, ${jobs} jobs, mode ${mode}, ${queueType} queue)\n${formatReport(report)}\n`);
    return report.ok ? 0 : 1;
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chaos: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
