/**
 * `audio-convert doctor`: checks a deployment from the outside, in order, and says for each
 * problem how to fix it: the config file, RabbitMQ (reachable; the live and bulk input queues,
 * their delay queues, the dead-letter queue and the results exchange as the service declares them
 * at start-up), AMI (reachable, login), and the dialplan (the `ping` extension answers, the
 * conversion extension exists).
 * It never converts a file and never creates a queue.
 */
import { statSync } from 'node:fs';
import type { Connection } from 'rabbitmq-client';
import { configFileWarnings, loadConfig, redactUrl, type Config } from '../config.js';
import { ConfigError, errorCode, errorText } from '../errors.js';
import {
  brokerNames,
  describeDeclareMismatch,
  mainQueueDeclare,
  publisherQueues,
  resultsExchangeDeclare,
  type BrokerNames,
  type QueueDeclare,
} from '../queue/broker.js';
import { bulkBrokerNames } from '../worker/lanes.js';
import { checkAmi } from './doctor-ami.js';
import { RabbitConnectError, connectRabbit } from './rabbit.js';
import { DoctorReport } from './doctor-report.js';
import type { Output } from './output.js';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Runs every check and prints one line (or two, with the fix) per check on `out`.
 * Resolves with the exit code: 0 when all pass, 1 otherwise. Closes every connection it opens.
 */
export async function runDoctor(configPath: string, env: Env, out: Output): Promise<number> {
  const report = new DoctorReport(out);
  const config = checkConfig(configPath, env, report);
  if (config === undefined) return 1;
  await checkRabbit(config, report);
  await checkAmi(config, report);
  out.write(report.failures === 0 ? 'all checks passed\n' : `${report.failures} check${report.failures === 1 ? '' : 's'} failed\n`);
  return report.failures === 0 ? 0 : 1;
}

function checkConfig(path: string, env: Env, report: DoctorReport): Config | undefined {
  let config: Config;
  try {
    config = loadConfig(path, env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    report.fail('config', error.message, `correct ${path}, then check it with: audio-convert check-config --config ${path}`);
    return undefined;
  }
  report.ok(`config ${config.file} loads`);
  for (const warning of config.warnings) report.warn(warning);
  const readable = configFileWarnings(config.file, statSync(config.file, { throwIfNoEntry: false }));
  if (readable !== undefined) report.warn(readable);
  return config;
}

async function checkRabbit(config: Config, report: DoctorReport): Promise<void> {
  let connection: Connection;
  try {
    connection = await connectRabbit(config, 'audio-convert doctor', 5000);
  } catch (error) {
    if (!(error instanceof RabbitConnectError)) throw error;
    report.fail('RabbitMQ', error.problem, error.fix);
    report.skip('RabbitMQ queues', 'RabbitMQ is not reachable');
    return;
  }
  try {
    report.ok(`RabbitMQ reachable at ${redactUrl(config.rabbitmq.url)}`);
    await checkQueues(connection, config, report);
  } catch (error) {
    // E.g. ACCESS_REFUSED on a queue: report it and go on to the AMI checks.
    report.fail(
      'RabbitMQ queues',
      errorText(error),
      `check that user '${config.rabbitmq.username}' may configure and read the queues: rabbitmqctl list_permissions -p '${config.rabbitmq.vhost}'`,
    );
  } finally {
    await connection.close().catch(() => undefined);
  }
}

async function checkQueues(connection: Connection, config: Config, report: DoctorReport): Promise<void> {
  const names = brokerNames(config);
  // Both classes of work (decisions/0012): the live lane, then the bulk lane with its own delay queues.
  for (const [lane, laneNames] of [
    ['input', names],
    ['bulk', bulkBrokerNames(names)],
  ] as const) {
    await checkInputQueue(connection, config, report, lane, laneNames);
    for (const declare of publisherQueues(laneNames).filter((q) => q.queue !== names.deadLetterQueue)) {
      const delay = await inspectQueue(connection, declare);
      reportPiece(
        report,
        `delay queue '${declare.queue}'`,
        delay,
        (n) => `present with the expected TTL and dead-letter target (${plural(n.messageCount, 'message')} waiting)`,
      );
    }
  }
  const dead = await inspectQueue(connection, { queue: names.deadLetterQueue, durable: true });
  reportPiece(report, `dead-letter queue '${names.deadLetterQueue}'`, dead, (n) => `present (${plural(n.messageCount, 'message')})`);
  const exchange = await inspectExchange(connection, resultsExchangeDeclare(names));
  reportPiece(report, `results exchange '${names.resultsExchange}'`, exchange, () => 'present (topic, durable)');
}

/** The live or the bulk input queue: its arguments, what waits in it, and whether anyone consumes it. */
async function checkInputQueue(
  connection: Connection,
  config: Config,
  report: DoctorReport,
  lane: 'input' | 'bulk',
  names: BrokerNames,
): Promise<void> {
  const main = mainQueueDeclare(names);
  const input = await inspectQueue(connection, main);
  if (input.kind === 'absent') {
    report.info(`${lane} queue '${main.queue}' does not exist yet: the service declares it at start-up, before it consumes`);
  } else if (input.kind === 'mismatch') {
    report.fail(
      `${lane} queue '${main.queue}'`,
      input.problem,
      `set [RabbitMQ] QueueType in ${config.file} to match the existing queue, or drain it and delete it ` +
        `(rabbitmqctl delete_queue '${main.queue}') so that the service declares it again`,
    );
  } else {
    report.ok(
      `${lane} queue '${main.queue}' present with the expected arguments (${plural(input.messageCount, 'message')} waiting, ${plural(input.consumerCount, 'consumer')})`,
    );
    if (input.consumerCount === 0)
      report.info(`nobody consumes '${main.queue}': the service is not running, or is paused (see its /readyz)`);
  }
}

/** One piece of the topology: OK, absent (the service declares it at start-up) or FAIL with the fix. */
function reportPiece(
  report: DoctorReport,
  what: string,
  state: QueueState,
  ok: (present: { messageCount: number; consumerCount: number }) => string,
): void {
  if (state.kind === 'present') report.ok(`${what} ${ok(state)}`);
  else if (state.kind === 'absent') {
    report.info(`${what} does not exist yet: the service declares it at start-up, before it consumes (if the service runs, restart it)`);
  } else {
    report.fail(
      what,
      state.problem,
      'drain it and delete it (rabbitmqctl delete_queue NAME, or for the exchange: rabbitmqadmin delete exchange name=NAME), ' +
        'then restart the service, which declares it again with its own arguments; or change the config back to the values it was declared with',
    );
  }
}

type QueueState =
  { kind: 'absent' } | { kind: 'present'; messageCount: number; consumerCount: number } | { kind: 'mismatch'; problem: string };

/**
 * Passive declare first (never creates the queue); when the queue exists and `compare` is set,
 * a declare with the service's arguments, which RabbitMQ refuses (PRECONDITION_FAILED) when they differ.
 */
async function inspectQueue(connection: Connection, declare: QueueDeclare, compare = true): Promise<QueueState> {
  // A refused declare closes its channel: one channel per step.
  const passive = await onChannel(connection, (ch) => ch.queueDeclare({ queue: declare.queue, passive: true }));
  if (passive instanceof Error) {
    if (errorCode(passive) === 'NOT_FOUND') return { kind: 'absent' };
    throw passive;
  }
  if (compare) {
    const again = await onChannel(connection, (ch) => ch.queueDeclare(declare));
    if (again instanceof Error) {
      const mismatch = describeDeclareMismatch(again, declare.queue);
      if (mismatch === undefined) throw again;
      // The report prints the fix on its own line.
      return { kind: 'mismatch', problem: mismatch.problem };
    }
  }
  return { kind: 'present', messageCount: passive.messageCount, consumerCount: passive.consumerCount };
}

/** Passive declare, then (when present) a declare with the service's type, refused when it differs. */
async function inspectExchange(connection: Connection, declare: ReturnType<typeof resultsExchangeDeclare>): Promise<QueueState> {
  const passive = await onChannel(connection, (ch) => ch.exchangeDeclare({ exchange: declare.exchange, passive: true }));
  if (passive instanceof Error) {
    if (errorCode(passive) === 'NOT_FOUND') return { kind: 'absent' };
    throw passive;
  }
  const again = await onChannel(connection, (ch) => ch.exchangeDeclare(declare));
  if (again instanceof Error) {
    if (errorCode(again) !== 'PRECONDITION_FAILED') throw again;
    return { kind: 'mismatch', problem: `exists with other arguments (${again.message})` };
  }
  return { kind: 'present', messageCount: 0, consumerCount: 0 };
}

/** Runs `fn` on a fresh channel and closes it; an AMQP error comes back as a value. */
async function onChannel<T>(
  connection: Connection,
  fn: (channel: Awaited<ReturnType<Connection['acquire']>>) => Promise<T>,
): Promise<T | Error> {
  const channel = await connection.acquire();
  try {
    return await fn(channel);
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  } finally {
    await channel.close().catch(() => undefined);
  }
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
