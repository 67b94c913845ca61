/**
 * Composition root: start(config) wires every part and returns { close() }. The only module that
 * imports from every folder; it fixes the shutdown order. Reads no environment and no files:
 * cli.ts hands it a finished Config, and connections.ts reads the CA files a TLS connection needs.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import { Connection } from 'rabbitmq-client';
import { AmiClient } from './ami/client.js';
import { ORIGINATOR_EVENTS, Originator } from './worker/originate.js';
import type { Config } from './config.js';
import { amiTlsOptions, amqpServiceOptions } from './connections.js';
import { startHttpServer, type HttpServer, type Readiness } from './http.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { brokerNames } from './queue/broker.js';
import { closer } from './shutdown.js';
import { bulkBrokerNames } from './worker/lanes.js';
import { Intake } from './worker/intake.js';
import { createLanes } from './worker/lanes.js';
import { DeploymentProbe } from './worker/probe.js';
import { TempFileReaper } from './worker/tempfiles.js';
import { declareAtStart, followAmi, followAmqp, followDeployment, intakeHooks, readinessOf } from './wiring.js';
import type { ServiceEventMap, ServiceEvents, Troubles } from './wiring.js';

export type { Readiness } from './http.js';

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
  const { logger, version } = options;
  const log = logger.child({ component: 'main' });
  log.info('starting', { version, node: process.versions.node });
  const metrics = createMetrics({ version });
  metrics.workerConcurrency.set(config.worker.concurrency);
  const live = brokerNames(config);
  const names = { live, bulk: bulkBrokerNames(live) };
  const events: ServiceEvents = new EventEmitter<ServiceEventMap>();
  const troubles: Troubles = { deployment: undefined, auth: undefined, topology: undefined };

  // `intake` is created below: the callbacks that use it only run later.
  const amqp = connectAmqp(config, metrics, logger, {
    onLost: () => intake.channelLost(),
    onChange: () => events.emit('readiness'),
  });
  const ami = createAmiClient(config, logger);
  const originator = new Originator(ami, { channel: config.ami.channel, context: config.ami.context, exten: config.ami.exten });
  const abandon = new AbortController();
  // Every job in flight listens on it (removed when the job ends): Concurrency listeners is normal, not a leak.
  setMaxListeners(2 * config.worker.concurrency + 10, abandon.signal);
  // `intake` and `probe` are used by the callbacks only once they run, after both exist.
  const deployment = followDeployment({ troubles, events, intake: () => intake, probe: () => probe, log });
  const probe = new DeploymentProbe(originator, logger.child({ component: 'probe' }), deployment.fixed);
  const tempFiles = new TempFileReaper(logger.child({ component: 'tempfiles' }), {
    removeAfterMs: options.tempFileRemoveAfterMs,
    onRemoved: (path) => events.emit('tempFileRemoved', path),
  });
  const laneContext = { config, amqp, originator, metrics, logger, tempFiles, abandon: abandon.signal, amiConnected: () => ami.connected };
  const { lanes, publishers, gate } = createLanes(
    { ...laneContext, pauseIntake: deployment.found, onSubscribed: () => intake.subscribed() },
    names,
  );
  // Paused until AMI logs in and the whole topology is declared: nothing is consumed before both.
  const intake = new Intake(lanes, ['ami-down', 'topology'], intakeHooks({ metrics, events, log }));
  followAmi(ami, { metrics, events, troubles, intake, probe, log });
  ami.start();
  const stopping = new AbortController();
  const declaring = declareAtStart(amqp, [names.live, names.bulk], {
    intake,
    troubles,
    log: logger.child({ component: 'amqp' }),
    stop: stopping.signal,
  });

  let http: HttpServer | undefined;
  const parts = { stopping, abandon, probe, gate, declaring, intake, originator, ami, publishers, amqp, tempFiles, http: () => http };
  const close = closer(log, config.worker.drainTimeoutMs, parts);
  const readiness = (): Readiness => readinessOf(amqp, ami, intake, troubles);
  try {
    http = await startHttp(config, metrics, readiness, logger);
  } catch (error) {
    // AMQP and AMI are already connecting: close them, or the failed start leaves them open.
    await close(true);
    throw error;
  }
  const amiAt = `${config.ami.host}:${config.ami.port}`;
  log.info('started', { version, queue: names.live.queueName, concurrency: config.worker.concurrency, ami: amiAt });
  return { events, httpPort: http?.port, metrics, readiness, close: () => close() };
}

function startHttp(config: Config, metrics: Metrics, readiness: () => Readiness, logger: Logger): Promise<HttpServer | undefined> {
  if (!config.metrics.enabled) return Promise.resolve(undefined);
  return startHttpServer({
    host: config.metrics.host,
    port: config.metrics.port,
    registry: metrics.registry,
    readiness,
    logger: logger.child({ component: 'http' }),
  });
}

/** The AMQP connection, its state in the metrics and the logs (first failure of an outage only: the library says so once). */
function connectAmqp(config: Config, metrics: Metrics, logger: Logger, on: { onLost: () => void; onChange: () => void }): Connection {
  const amqp = new Connection(amqpServiceOptions(config.rabbitmq));
  const where = { host: config.rabbitmq.hosts.join(', '), vhost: config.rabbitmq.vhost, user: config.rabbitmq.username, file: config.file };
  followAmqp(amqp, where, { metrics, log: logger.child({ component: 'amqp' }), ...on });
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
