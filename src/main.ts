/**
 * Composition root: start(config) wires every part and returns { close() }. The only module that
 * imports from every folder; it fixes the shutdown order. Reads no environment and no files:
 * cli.ts hands it a finished Config.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Connection } from 'rabbitmq-client';
import { AmiClient } from './ami/client.js';
import { ORIGINATOR_EVENTS, Originator } from './ami/originate.js';
import type { Config } from './config.js';
import type { AppError } from './errors.js';
import { startHttpServer } from './http.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { coalesceWrites } from './queue/coalesce.js';
import { BrokerPublisher, explainDeclareMismatch, mainQueueDeclare, type BrokerNames } from './queue/broker.js';
import { createJobHandler, type JobCounters } from './worker/handler.js';
import { Intake } from './worker/intake.js';
import { retryDelayMs } from './worker/policy.js';
import { DeploymentProbe } from './worker/probe.js';

/**
 * Events of a running service, for tests and tools to wait on instead of polling:
 * 'consuming' (boolean) when intake starts or stops; 'deployment' (string | undefined) when a
 * deployment error is found or fixed; 'ami' (boolean) on AMI login / loss.
 */
export type ServiceEvents = EventEmitter;

export interface Service {
  readonly events: ServiceEvents;
  /** The HTTP port actually bound (when [Metrics] Listen uses port 0), or undefined when disabled. */
  readonly httpPort: number | undefined;
  readonly metrics: Metrics;
  /** Readiness as /readyz reports it. */
  readiness(): Readiness;
  /** Idempotent, ordered: stop intake, drain (up to DrainTimeout), close AMI, AMQP, HTTP. */
  close(): Promise<void>;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: Record<string, { ok: boolean; detail: string }>;
}

export interface StartOptions {
  readonly logger: Logger;
  readonly version: string;
}

export function brokerNames(config: Config): BrokerNames {
  const { worker, rabbitmq } = config;
  const retryDelaysMs: number[] = [];
  for (let level = 1; level < worker.maxAttempts; level++) retryDelaysMs.push(retryDelayMs(level, worker.retryDelayMs, worker.retryMaxDelayMs));
  return {
    queueName: rabbitmq.queueName,
    resultsExchange: rabbitmq.resultsExchange,
    deadLetterQueue: rabbitmq.deadLetterQueue,
    queueType: rabbitmq.queueType,
    retryDelaysMs,
  };
}

/** Starts the service. Resolves once the HTTP server listens; AMQP and AMI connect in the background. */
export async function start(config: Config, options: StartOptions): Promise<Service> {
  const logger = options.logger;
  const log = logger.child({ component: 'main' });
  const metrics = createMetrics({ version: options.version });
  metrics.workerConcurrency.set(config.worker.concurrency);
  const names = brokerNames(config);
  const events: ServiceEvents = new EventEmitter();

  // acquireTimeout 5 s (library default 20 s): while the broker is away, a publish or a consumer
  // close gives up after 5 s instead of 20; the job is simply redelivered, and a stop stays short.
  const amqp = new Connection({
    url: config.rabbitmq.url,
    connectionName: 'audio-convert',
    retryLow: 250,
    retryHigh: 15000,
    acquireTimeout: 5000,
    ...amqpTlsOptions(config.rabbitmq),
  });
  const amqpLog = logger.child({ component: 'amqp' });
  amqp.on('error', (error: unknown) => {
    metrics.amqpConnected.set(0);
    intake.channelLost();
    amqpLog.error('RabbitMQ connection lost; reconnecting', { error: errorText(error) });
  });
  amqp.on('connection', () => {
    metrics.amqpConnected.set(1);
    amqpLog.info('RabbitMQ connected', { host: config.rabbitmq.hostname, vhost: config.rabbitmq.vhost });
  });
  // One writev per event-loop turn instead of one write per publish and per ack (docs/benchmarks.md).
  coalesceWrites(amqp);
  const publisher = new BrokerPublisher(amqp, names);

  const ami = new AmiClient({
    host: config.ami.host,
    port: config.ami.port,
    username: config.ami.username,
    secret: config.ami.secret,
    authType: config.ami.authType,
    tls: amiTlsOptions(config.ami),
    actionTimeoutMs: config.ami.actionTimeoutMs,
    pingIntervalMs: config.ami.pingIntervalMs,
    logger: logger.child({ component: 'ami' }),
    keepEvents: ORIGINATOR_EVENTS,
  });
  const originator = new Originator(ami, { channel: config.ami.channel, context: config.ami.context, exten: config.ami.exten });
  const abandon = new AbortController();
  // Every job in flight listens on it (removed when the job ends): Concurrency listeners is normal, not a leak.
  setMaxListeners(config.worker.concurrency + 10, abandon.signal);
  let deploymentProblem: string | undefined;

  // Declared before the handler: the handler reports deployment errors to it.
  const probe = new DeploymentProbe(originator, logger.child({ component: 'probe' }));
  const counters = countersFor(metrics);
  const onDeploymentError = (error: AppError): void => {
    if (deploymentProblem === undefined) {
      log.crit('deployment error: consuming stopped, messages stay queued until it is fixed', { reason: error.message });
    }
    deploymentProblem = error.message;
    events.emit('deployment', deploymentProblem);
    void intake.pause('deployment');
    probe.start();
  };
  probe.on('fixed', () => {
    log.notice('deployment error fixed: consuming again', { was: deploymentProblem });
    deploymentProblem = undefined;
    events.emit('deployment', undefined);
    void intake.resume('deployment');
  });

  const handler = createJobHandler({
    queueName: names.queueName,
    rules: { allowedRoots: config.worker.allowedRoots, inputExtension: config.worker.inputExtension, outputExtension: config.worker.outputExtension },
    jobTimeoutMs: config.worker.jobTimeoutMs,
    maxAttempts: config.worker.maxAttempts,
    originator,
    publisher,
    counters,
    logger,
    amiConnected: () => ami.connected,
    onDeploymentError,
    abandon: abandon.signal,
  });
  const consumer = amqp.createConsumer(
    {
      queue: names.queueName,
      queueOptions: mainQueueDeclare(names),
      qos: { prefetchCount: config.worker.concurrency },
      concurrency: config.worker.concurrency,
      requeue: true,
      lazy: true,
    },
    handler,
  );
  consumer.on('error', (error: unknown) => {
    const mismatch = explainDeclareMismatch(error, names.queueName);
    if (mismatch !== undefined) log.crit(mismatch);
    else if (errorText(error).includes('failed to ack/nack')) {
      // The channel closed under a settled job (pause or connection loss): nothing is lost, the
      // broker redelivers the message; at-least-once makes the re-run harmless.
      amqpLog.notice('a message could not be settled on a closed channel; RabbitMQ will redeliver it', { error: errorText(error) });
    } else amqpLog.error('consumer error', { error: errorText(error) });
  });
  // Referenced by the callbacks above; they only run after start() has returned.
  const intake = new Intake(consumer, ['ami-down']);
  intake.on('change', (consuming: boolean) => {
    metrics.consuming.set(consuming ? 1 : 0);
    events.emit('consuming', consuming);
    log.info(consuming ? 'consuming' : 'not consuming', { paused_for: intake.pausedFor.join(',') ?? '' });
  });

  let authProblem: string | undefined;
  let amiLogins = 0;
  ami.on('connected', () => {
    // A reconnect is a login after the first one (the metric counts sessions re-established).
    if (amiLogins++ > 0) metrics.amiReconnects.inc();
    metrics.amiConnected.set(1);
    authProblem = undefined;
    events.emit('ami', true);
    void intake.resume('ami-down');
    if (deploymentProblem !== undefined) probe.start();
  });
  ami.on('disconnected', () => {
    metrics.amiConnected.set(0);
    events.emit('ami', false);
    void intake.pause('ami-down');
  });
  ami.on('authFailed', (error: Error) => {
    if (authProblem === undefined) log.crit('AMI login refused: check [AsteriskAMI] User/Secret and manager.conf', { reason: error.message });
    authProblem = 'AMI login refused';
  });
  ami.start();

  const readiness = (): Readiness => {
    const checks = {
      amqp: { ok: amqp.ready, detail: amqp.ready ? 'connected' : 'RabbitMQ not connected' },
      ami: { ok: ami.connected, detail: ami.connected ? 'logged in' : (authProblem ?? 'AMI not connected') },
      dialplan: { ok: deploymentProblem === undefined, detail: deploymentProblem ?? 'ok' },
      consuming: { ok: intake.consuming ?? false, detail: intake.consuming ? 'consuming' : `paused: ${intake.pausedFor.join(', ') || 'starting'}` },
    };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  };

  const http = config.metrics.enabled
    ? await startHttpServer({ host: config.metrics.host, port: config.metrics.port, registry: metrics.registry, readiness, logger: logger.child({ component: 'http' }) })
    : undefined;
  log.info('started', { queue: names.queueName, concurrency: config.worker.concurrency, ami: `${config.ami.host}:${config.ami.port}` });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= shutdown();
    return closing;
  };
  const shutdown = async (): Promise<void> => {
    const step = async (name: string, fn: () => Promise<void> | void): Promise<void> => {
      try {
        await fn();
      } catch (error) {
        log.error(`shutdown: ${name} failed`, { error: errorText(error) });
      }
    };
    log.info('stopping: no new jobs; waiting for jobs in flight', { drain_timeout_ms: config.worker.drainTimeoutMs });
    probe.stop();
    const drain = intake.pause('shutdown') ?? Promise.resolve();
    const deadline = setTimeout(() => abandon.abort(), config.worker.drainTimeoutMs);
    await step('drain', () => drain);
    clearTimeout(deadline);
    await step('originator', () => originator.dispose());
    await step('AMI', () => ami.close());
    await step('publisher', () => publisher.close());
    await step('AMQP', () => amqp.close());
    await step('HTTP', () => http?.close());
    log.info('stopped');
  };

  return { events, httpPort: http?.port, metrics, readiness, close };
}

function countersFor(metrics: Metrics): JobCounters {
  return {
    received: () => metrics.jobsReceived.inc(),
    inFlight: (delta) => metrics.jobsInFlight.inc(delta),
    completed: (result, seconds) => {
      metrics.jobsCompleted.inc({ result });
      metrics.jobDuration.observe({ result }, seconds);
    },
    retried: (code) => metrics.jobsRetried.inc({ code }),
    deadLettered: (code) => metrics.jobsDeadLettered.inc({ code }),
    requeued: () => metrics.jobsRequeued.inc(),
  };
}

/** TLS to AMI (Asterisk's `tlsenable`), when configured. The CA file is read here, at the edge. */
export function amiTlsOptions(ami: Config['ami']): TlsOptions | undefined {
  if (!ami.tls) return undefined;
  return {
    // SNI takes a host name only: an IP address there is deprecated (DEP0123) and ignored anyway.
    ...(isIP(ami.host) === 0 ? { servername: ami.host } : {}),
    rejectUnauthorized: ami.tlsRejectUnauthorized,
    ...(ami.tlsCaFile === undefined ? {} : { ca: readFileSync(ami.tlsCaFile) }),
  };
}

/**
 * amqps with a private CA ([RabbitMQ] TLSCAFile), read here at the edge. rabbitmq-client turns TLS
 * on for an amqps:// URL by itself; it must not be given TLS options for a plain amqp:// URL.
 */
export function amqpTlsOptions(rabbitmq: Config['rabbitmq']): { tls?: TlsOptions } {
  if (!rabbitmq.tls || rabbitmq.tlsCaFile === undefined) return {};
  return { tls: { ca: readFileSync(rabbitmq.tlsCaFile) } };
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
