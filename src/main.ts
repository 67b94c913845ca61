/**
 * Composition root: start(config) wires every part and returns { close() }. The only module that
 * imports from every folder; it fixes the shutdown order. Reads no environment and no files:
 * cli.ts hands it a finished Config.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import { Connection, type Consumer } from 'rabbitmq-client';
import { AmiClient } from './ami/client.js';
import { ORIGINATOR_EVENTS, Originator } from './ami/originate.js';
import type { Config } from './config.js';
import type { AppError } from './errors.js';
import { startHttpServer } from './http.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { coalesceWrites } from './queue/coalesce.js';
import { amqpTarget } from './queue/nodes.js';
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
    deliveryLimit: rabbitmq.deliveryLimit,
    retryDelaysMs,
  };
}

/** What the service knows of its own troubles; /readyz and the logs read it. */
interface Troubles {
  /** Asterisk refused the Originate itself (dialplan or permission); cleared by the probe. */
  deployment: string | undefined;
  /** AMI refused the login; cleared by the next successful login. */
  auth: string | undefined;
}

/** Starts the service. Resolves once the HTTP server listens; AMQP and AMI connect in the background. */
export async function start(config: Config, options: StartOptions): Promise<Service> {
  const logger = options.logger;
  const log = logger.child({ component: 'main' });
  const metrics = createMetrics({ version: options.version });
  metrics.workerConcurrency.set(config.worker.concurrency);
  const names = brokerNames(config);
  const events: ServiceEvents = new EventEmitter();
  const troubles: Troubles = { deployment: undefined, auth: undefined };

  // `intake` is created below: the AMQP, handler and probe callbacks that use it only run later.
  const amqp = connectAmqp(config, metrics, logger, () => intake.channelLost());
  const publisher = new BrokerPublisher(amqp, names);
  const ami = createAmiClient(config, logger);
  const originator = new Originator(ami, { channel: config.ami.channel, context: config.ami.context, exten: config.ami.exten });
  const abandon = new AbortController();
  // Every job in flight listens on it (removed when the job ends): Concurrency listeners is normal, not a leak.
  setMaxListeners(config.worker.concurrency + 10, abandon.signal);

  const probe = new DeploymentProbe(originator, logger.child({ component: 'probe' }));
  const onDeploymentError = (error: AppError): void => {
    if (troubles.deployment === undefined) {
      log.crit('deployment error: consuming stopped, messages stay queued until it is fixed', { reason: error.message });
    }
    troubles.deployment = error.message;
    events.emit('deployment', troubles.deployment);
    void intake.pause('deployment');
    probe.start();
  };
  probe.on('fixed', () => {
    log.notice('deployment error fixed: consuming again', { was: troubles.deployment });
    troubles.deployment = undefined;
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
    counters: countersFor(metrics),
    logger,
    amiConnected: () => ami.connected,
    onDeploymentError,
    abandon: abandon.signal,
  });
  const intake = new Intake(createConsumer(amqp, names, config, handler, logger), ['ami-down']);
  intake.on('change', (consuming: boolean) => {
    metrics.consuming.set(consuming ? 1 : 0);
    events.emit('consuming', consuming);
    log.info(consuming ? 'consuming' : 'not consuming', { paused_for: intake.pausedFor.join(',') });
  });
  followAmi(ami, { metrics, events, troubles, intake, probe, log });
  ami.start();

  const readiness = (): Readiness => readinessOf(amqp, ami, intake, troubles);
  const http = config.metrics.enabled
    ? await startHttpServer({ host: config.metrics.host, port: config.metrics.port, registry: metrics.registry, readiness, logger: logger.child({ component: 'http' }) })
    : undefined;
  log.info('started', { queue: names.queueName, concurrency: config.worker.concurrency, ami: `${config.ami.host}:${config.ami.port}` });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      log.info('stopping: no new jobs; waiting for jobs in flight', { drain_timeout_ms: config.worker.drainTimeoutMs });
      probe.stop();
      const deadline = setTimeout(() => abandon.abort(), config.worker.drainTimeoutMs);
      await inOrder(log, [
        ['drain', () => intake.pause('shutdown')],
        ['deadline', () => clearTimeout(deadline)],
        ['originator', () => originator.dispose()],
        ['AMI', () => ami.close()],
        ['publisher', () => publisher.close()],
        ['AMQP', () => amqp.close()],
        ['HTTP', () => http?.close()],
      ]);
      log.info('stopped');
    })();
    return closing;
  };

  return { events, httpPort: http?.port, metrics, readiness, close };
}

/** Runs shutdown steps one after another; a failing step is logged and the next one still runs. */
async function inOrder(log: Logger, steps: [name: string, fn: () => Promise<void> | void][]): Promise<void> {
  for (const [name, fn] of steps) {
    try {
      await fn();
    } catch (error) {
      log.error(`shutdown: ${name} failed`, { error: errorText(error) });
    }
  }
}

/** The AMQP connection, its state in the metrics and the logs (first failure of an outage only: the library says so once). */
function connectAmqp(config: Config, metrics: Metrics, logger: Logger, onLost: () => void): Connection {
  // acquireTimeout 5 s (library default 20 s): while the broker is away, a publish or a consumer
  // close gives up after 5 s instead of 20; the job is simply redelivered, and a stop stays short.
  const amqp = new Connection({
    ...amqpTarget(config.rabbitmq),
    connectionName: 'audio-convert',
    retryLow: 250,
    retryHigh: 15000,
    acquireTimeout: 5000,
    ...amqpTlsOptions(config.rabbitmq),
  });
  const log = logger.child({ component: 'amqp' });
  amqp.on('error', (error: unknown) => {
    metrics.amqpConnected.set(0);
    onLost();
    log.error('RabbitMQ connection lost; reconnecting', { error: errorText(error) });
  });
  amqp.on('connection', () => {
    metrics.amqpConnected.set(1);
    log.info('RabbitMQ connected', { hosts: config.rabbitmq.hosts.join(', '), vhost: config.rabbitmq.vhost });
  });
  // One writev per event-loop turn instead of one write per publish and per ack (docs/benchmarks.md).
  coalesceWrites(amqp);
  return amqp;
}

function createAmiClient(config: Config, logger: Logger): AmiClient {
  return new AmiClient({
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
}

/** The lazy consumer intake drives: prefetch = concurrency, the one gate. */
function createConsumer(amqp: Connection, names: BrokerNames, config: Config, handler: ReturnType<typeof createJobHandler>, logger: Logger): Consumer {
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
  const log = logger.child({ component: 'amqp' });
  consumer.on('error', (error: unknown) => {
    const mismatch = explainDeclareMismatch(error, names.queueName);
    if (mismatch !== undefined) log.crit(mismatch);
    else if (errorText(error).includes('failed to ack/nack')) {
      // The channel closed under a settled job (pause or connection loss): nothing is lost, the
      // broker redelivers the message; at-least-once makes the re-run harmless.
      log.notice('a message could not be settled on a closed channel; RabbitMQ will redeliver it', { error: errorText(error) });
    } else log.error('consumer error', { error: errorText(error) });
  });
  return consumer;
}

/** AMI state → metrics, events, intake (pause while down) and the deployment probe. */
function followAmi(
  ami: AmiClient,
  s: { metrics: Metrics; events: ServiceEvents; troubles: Troubles; intake: Intake; probe: DeploymentProbe; log: Logger },
): void {
  let logins = 0;
  ami.on('connected', () => {
    // A reconnect is a login after the first one (the metric counts sessions re-established).
    if (logins++ > 0) s.metrics.amiReconnects.inc();
    s.metrics.amiConnected.set(1);
    s.troubles.auth = undefined;
    s.events.emit('ami', true);
    void s.intake.resume('ami-down');
    if (s.troubles.deployment !== undefined) s.probe.start();
  });
  ami.on('disconnected', () => {
    s.metrics.amiConnected.set(0);
    s.events.emit('ami', false);
    void s.intake.pause('ami-down');
  });
  ami.on('authFailed', (error: Error) => {
    if (s.troubles.auth === undefined) s.log.crit('AMI login refused: check [AsteriskAMI] User/Secret and manager.conf', { reason: error.message });
    s.troubles.auth = 'AMI login refused';
  });
}

function readinessOf(amqp: Connection, ami: AmiClient, intake: Intake, troubles: Troubles): Readiness {
  const checks = {
    amqp: { ok: amqp.ready, detail: amqp.ready ? 'connected' : 'RabbitMQ not connected' },
    ami: { ok: ami.connected, detail: ami.connected ? 'logged in' : (troubles.auth ?? 'AMI not connected') },
    dialplan: { ok: troubles.deployment === undefined, detail: troubles.deployment ?? 'ok' },
    consuming: { ok: intake.consuming, detail: intake.consuming ? 'consuming' : `paused: ${intake.pausedFor.join(', ') || 'starting'}` },
  };
  return { ready: Object.values(checks).every((c) => c.ok), checks };
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
