/**
 * Composition root: start(config) wires every part and returns { close() }. The only module that
 * imports from every folder; it fixes the shutdown order. Reads no environment and no files:
 * cli.ts hands it a finished Config, and connections.ts reads the CA files a TLS connection needs.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import { Connection, type Consumer } from 'rabbitmq-client';
import { AmiClient } from './ami/client.js';
import { ORIGINATOR_EVENTS, Originator } from './ami/originate.js';
import type { Config } from './config.js';
import { startHttpServer, type HttpServer } from './http.js';
import type { Logger } from './log.js';
import { createMetrics, type JobClass, type Metrics } from './metrics.js';
import { amqpTarget } from './queue/nodes.js';
import { amiTlsOptions, amqpTlsOptions } from './connections.js';
import { BrokerPublisher, brokerNames, explainDeclareMismatch, mainQueueDeclare, type BrokerNames } from './queue/broker.js';
import { BothLanes, bulkBrokerNames, ClassGate, gated } from './worker/classes.js';
import { createJobHandler, type HandlerDeps } from './worker/handler.js';
import { Intake } from './worker/intake.js';
import { DeploymentProbe } from './worker/probe.js';
import { TempFileReaper } from './worker/tempfiles.js';
import { type ServiceEventMap, type ServiceEvents, countersFor, declareAtStart, followAmi, followAmqp, followDeployment, followIntake, readinessOf, type Readiness, type Troubles } from './wiring.js';
import { errorText } from './errors.js';

export type { Readiness } from './wiring.js';

export type { ServiceEventMap, ServiceEvents } from './wiring.js';

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

export interface StartOptions {
  readonly logger: Logger;
  readonly version: string;
  /** Tests only: how long after an attempt's start its orphaned temp file is removed (default: the dialplan's step bound + margin). */
  readonly tempFileRemoveAfterMs?: number;
}


/** Starts the service. Resolves once the HTTP server listens; AMQP and AMI connect in the background. */
export async function start(config: Config, options: StartOptions): Promise<Service> {
  const { logger } = options;
  const log = logger.child({ component: 'main' });
  const metrics = createMetrics({ version: options.version });
  metrics.workerConcurrency.set(config.worker.concurrency);
  const names = brokerNames(config);
  const events: ServiceEvents = new EventEmitter<ServiceEventMap>();
  const troubles: Troubles = { deployment: undefined, auth: undefined, topology: undefined };
  log.info('starting', { version: options.version, node: process.versions.node });

  // `intake` and `onDeploymentError` are created below: the callbacks that use them only run later.
  const amqp = connectAmqp(config, metrics, logger, () => intake.channelLost());
  const publisher = new BrokerPublisher(amqp, names);
  const bulkNames = bulkBrokerNames(names);
  const bulkPublisher = new BrokerPublisher(amqp, bulkNames);
  const ami = createAmiClient(config, logger);
  const originator = new Originator(ami, { channel: config.ami.channel, context: config.ami.context, exten: config.ami.exten });
  const abandon = new AbortController();
  // Every job in flight listens on it (removed when the job ends): Concurrency listeners is normal, not a leak.
  setMaxListeners(2 * config.worker.concurrency + 10, abandon.signal);
  const probe = new DeploymentProbe(originator, logger.child({ component: 'probe' }));
  const tempFiles = new TempFileReaper(logger.child({ component: 'tempfiles' }), options.tempFileRemoveAfterMs);
  tempFiles.on('removed', (path: string) => events.emit('tempFileRemoved', path));
  // Live and bulk share one gate of Concurrency slots; live jobs get a free slot first (ADR 0012).
  const shared: LaneContext = {
    config, amqp, originator, metrics, logger, tempFiles, gate: new ClassGate(config.worker.concurrency), abandon: abandon.signal,
    amiConnected: () => ami.connected, pauseIntake: (error) => onDeploymentError(error),
  };
  const lanes = new BothLanes(createLane('live', names, publisher, shared), createLane('bulk', bulkNames, bulkPublisher, shared));
  // Paused until AMI logs in and the whole topology is declared: nothing is consumed before both.
  const intake = new Intake(lanes, ['ami-down', 'topology']);
  followIntake(intake, { metrics, events, log });
  const onDeploymentError = followDeployment(probe, { troubles, events, intake, log });
  followAmi(ami, { metrics, events, troubles, intake, probe, log });
  ami.start();
  const stopping = new AbortController();
  const declaring = declareAtStart(amqp, [names, bulkNames], { intake, troubles, log: logger.child({ component: 'amqp' }), stop: stopping.signal });

  let http: HttpServer | undefined;
  const close = closer(log, config.worker.drainTimeoutMs, { stopping, abandon, probe, declaring, intake, originator, ami, publishers: [publisher, bulkPublisher], amqp, tempFiles, http: () => http });
  const readiness = (): Readiness => readinessOf(amqp, ami, intake, troubles);
  try {
    http = await startHttp(config, metrics, readiness, logger);
  } catch (error) {
    // AMQP and AMI are already connecting: close them, or the failed start leaves them open.
    await close();
    throw error;
  }
  log.info('started', { version: options.version, queue: names.queueName, concurrency: config.worker.concurrency, ami: `${config.ami.host}:${config.ami.port}` });
  return { events, httpPort: http?.port, metrics, readiness, close };
}

/** What close() stops, in the order it stops them. */
interface Parts {
  readonly stopping: AbortController;
  readonly abandon: AbortController;
  readonly probe: DeploymentProbe;
  readonly declaring: Promise<void>;
  readonly intake: Intake;
  readonly originator: Originator;
  readonly ami: AmiClient;
  readonly publishers: readonly BrokerPublisher[];
  readonly amqp: Connection;
  readonly tempFiles: TempFileReaper;
  readonly http: () => HttpServer | undefined;
}

/** Idempotent, ordered: stop intake, drain (up to DrainTimeout), then close each part; a failing step does not stop the next. */
function closer(log: Logger, drainTimeoutMs: number, p: Parts): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => {
    closing ??= (async () => {
      log.info('stopping: no new jobs; waiting for jobs in flight', { drain_timeout_ms: drainTimeoutMs });
      p.stopping.abort();
      p.probe.stop();
      const deadline = setTimeout(() => p.abandon.abort(), drainTimeoutMs);
      await inOrder(log, [
        ['topology', () => p.declaring],
        ['drain', () => p.intake.pause('shutdown')],
        ['deadline', () => clearTimeout(deadline)],
        ['probe', () => p.probe.stop()],
        ['originator', () => p.originator.dispose()],
        ['AMI', () => p.ami.close()],
        ['publishers', () => Promise.all(p.publishers.map((publisher) => publisher.close())).then(() => undefined)],
        ['AMQP', () => p.amqp.close()],
        ['temp files', () => p.tempFiles.close()],
        ['HTTP', () => p.http()?.close()],
      ]);
      log.info('stopped');
    })();
    return closing;
  };
}

/** What both lanes share: the gate, the Originator, the temp-file reaper, the deployment hook. */
interface LaneContext {
  readonly config: Config;
  readonly amqp: Connection;
  readonly originator: Originator;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly tempFiles: TempFileReaper;
  readonly gate: ClassGate;
  readonly abandon: AbortSignal;
  readonly amiConnected: () => boolean;
  readonly pauseIntake: HandlerDeps['pauseIntake'];
}

/** One class of work: its own handler (own queue, publisher, counters) behind the shared gate, consumed from its queue. */
function createLane(cls: JobClass, lane: BrokerNames, publisher: BrokerPublisher, c: LaneContext): Consumer {
  const handler = createJobHandler({
    ...handlerSettings(c.config, lane),
    originator: c.originator,
    publisher,
    counters: countersFor(c.metrics, cls),
    logger: c.logger,
    amiConnected: c.amiConnected,
    pauseIntake: c.pauseIntake,
    abandon: c.abandon,
    tempFiles: c.tempFiles,
  });
  return createConsumer(c.amqp, lane, c.config, gated(c.gate, cls, handler, c.abandon), c.logger);
}

function handlerSettings(config: Config, lane: BrokerNames): Pick<HandlerDeps, 'queueName' | 'rules' | 'jobTimeoutMs' | 'maxAttempts'> {
  const { worker } = config;
  return {
    queueName: lane.queueName,
    rules: { allowedRoots: worker.allowedRoots, inputExtension: worker.inputExtension, outputExtension: worker.outputExtension },
    jobTimeoutMs: worker.jobTimeoutMs,
    maxAttempts: worker.maxAttempts,
  };
}

function startHttp(config: Config, metrics: Metrics, readiness: () => Readiness, logger: Logger): Promise<HttpServer | undefined> {
  if (!config.metrics.enabled) return Promise.resolve(undefined);
  return startHttpServer({ host: config.metrics.host, port: config.metrics.port, registry: metrics.registry, readiness, logger: logger.child({ component: 'http' }) });
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
  const where = { host: config.rabbitmq.hosts.join(', '), vhost: config.rabbitmq.vhost, user: config.rabbitmq.username, file: config.file };
  followAmqp(amqp, where, { metrics, log: logger.child({ component: 'amqp' }), onLost });
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

