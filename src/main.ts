/**
 * The service's lifecycle, in one file: start(config) wires every part and returns { close() }.
 * Read top to bottom: start() (what is built, in which order, and who calls whom); then how the
 * parts' state is followed (AMQP and AMI → metrics, readiness, logs, intake; the topology declared
 * before intake may consume; /readyz); then close(), the shutdown order. The only module that
 * imports from every folder. Reads no environment and no files: cli.ts hands it a finished Config,
 * and connections.ts reads the CA files a TLS connection needs.
 */
import { EventEmitter, setMaxListeners } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import { Connection } from 'rabbitmq-client';
import { AmiClient } from './ami/client.js';
import type { Config } from './config.js';
import { amiTlsOptions, amqpServiceOptions } from './connections.js';
import { errorCode, errorText, type AppError } from './errors.js';
import { startHttpServer, type HttpServer, type Readiness } from './http.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import {
  amqpErrorText,
  brokerNames,
  declareTopology,
  explainDeclareMismatch,
  type BrokerNames,
  type BrokerPublisher,
} from './queue/broker.js';
import { expBackoff } from './util/backoff.js';
import { Intake, type IntakeHooks } from './worker/intake.js';
import { bulkBrokerNames, createLanes } from './worker/lanes.js';
import { ORIGINATOR_EVENTS, Originator } from './worker/originate.js';
import { DeploymentProbe } from './worker/probe.js';
import { TempFileReaper } from './worker/tempfiles.js';

export type { Readiness } from './http.js';

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
  const problems: ReadinessProblems = { deployment: undefined, auth: undefined };

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
  const deployment = followDeployment({ problems, events, intake: () => intake, probe: () => probe, log });
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
  followAmi(ami, { metrics, events, problems, intake, probe, log });
  ami.start();
  const stopping = new AbortController();
  const declaring = declareAtStart(amqp, [names.live, names.bulk], {
    intake,
    log: logger.child({ component: 'amqp' }),
    stop: stopping.signal,
  });

  let http: HttpServer | undefined;
  const parts = { stopping, abandon, probe, gate, declaring, intake, originator, ami, publishers, amqp, tempFiles, http: () => http };
  const close = closer(log, config.worker.drainTimeoutMs, parts);
  const readiness = (): Readiness => readinessOf(amqp, ami, intake, problems);
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

// ---- Following the parts ----
// How start() follows its parts: AMQP's and AMI's state, intake, deployment errors, declaring the
// topology at start-up, readiness.

/** Events of a running service, for tests and tools to wait on instead of polling. */
export interface ServiceEventMap {
  /** Intake started (true) or stopped (false) consuming. */
  consuming: [consuming: boolean];
  /** A deployment error was found (its text) or fixed (undefined). */
  deployment: [problem: string | undefined];
  /** AMI logged in (true) or was lost (false). */
  ami: [connected: boolean];
  /** The temp file of an attempt that ended without a result was removed (its path). */
  tempFileRemoved: [path: string];
  /**
   * Something /readyz reports may have changed (RabbitMQ, AMI, a refused login, the dialplan,
   * intake). Carries nothing: a listener reads readiness() and compares (systemd's STATUS=).
   */
  readiness: [];
}

export type ServiceEvents = EventEmitter<ServiceEventMap>;

/** The problems a person must fix that keep the service not ready, each as the text /readyz and the logs show (undefined: none). */
export interface ReadinessProblems {
  /** Asterisk refused the Originate itself (dialplan or permission); cleared by the probe. */
  deployment: string | undefined;
  /** AMI refused the login; cleared by the next successful login. */
  auth: string | undefined;
}

/** Intake on/off → metric, event, log line; a failed consumer close → a log line (intake closes it again). */
export function intakeHooks(s: { metrics: Metrics; events: ServiceEvents; log: Logger }): IntakeHooks {
  return {
    onChange: (consuming, pausedFor) => {
      s.metrics.consuming.set(consuming ? 1 : 0);
      s.events.emit('consuming', consuming);
      // No pause reason but not consuming: the AMQP channel is gone (rabbitmq-client re-subscribes by itself).
      if (consuming) s.log.info('consuming');
      else s.log.info('not consuming', { paused_for: pausedFor.join(',') });
      s.events.emit('readiness');
    },
    onReasons: () => s.events.emit('readiness'),
    onCloseFailed: (error) => s.log.warning('closing the consumer failed; closing it again', { error: errorText(error) }),
  };
}

/**
 * A deployment error (the policy's action says: pause intake) → CRITICAL once, /readyz, intake
 * paused, the probe started (`found`, the handler's hook); the probe's answer (`fixed`) undoes it.
 */
export function followDeployment(s: {
  problems: ReadinessProblems;
  events: ServiceEvents;
  intake: () => Intake;
  probe: () => DeploymentProbe;
  log: Logger;
}): {
  found: (error: AppError) => void;
  fixed: () => void;
} {
  return {
    fixed: () => {
      s.log.notice('deployment error fixed: consuming again', { was: s.problems.deployment });
      s.problems.deployment = undefined;
      s.events.emit('deployment', undefined);
      s.events.emit('readiness');
      void s.intake().resume('deployment');
    },
    found: (error) => {
      if (s.problems.deployment === undefined) {
        s.log.crit('deployment error: consuming stopped, messages stay queued until it is fixed', { reason: error.message });
      }
      s.problems.deployment = error.message;
      s.events.emit('deployment', s.problems.deployment);
      s.events.emit('readiness');
      void s.intake().pause('deployment');
      s.probe().start();
    },
  };
}

/** AMI state → metrics, events, intake (pause while down) and the deployment probe. */
export function followAmi(
  ami: AmiClient,
  s: { metrics: Metrics; events: ServiceEvents; problems: ReadinessProblems; intake: Intake; probe: DeploymentProbe; log: Logger },
): void {
  let logins = 0;
  ami.on('connected', () => {
    // A reconnect is a login after the first one (the metric counts sessions re-established).
    if (logins++ > 0) s.metrics.amiReconnects.inc();
    s.metrics.amiConnected.set(1);
    s.problems.auth = undefined;
    s.events.emit('ami', true);
    s.events.emit('readiness');
    void s.intake.resume('ami-down');
    if (s.problems.deployment !== undefined) s.probe.start();
  });
  ami.on('disconnected', () => {
    s.metrics.amiConnected.set(0);
    s.events.emit('ami', false);
    s.events.emit('readiness');
    void s.intake.pause('ami-down');
  });
  ami.on('authFailed', (error: Error) => {
    if (s.problems.auth === undefined)
      s.log.crit('AMI login refused: check [AsteriskAMI] User/Secret and manager.conf', { reason: error.message });
    s.problems.auth = 'AMI login refused';
    s.events.emit('readiness');
  });
}

/** Where the broker is and who logs in, for the AMQP log lines (no secret). */
export interface AmqpWhere {
  readonly host: string;
  readonly vhost: string;
  readonly user: string;
  readonly file: string;
}

/**
 * AMQP state → metrics and logs. One line per outage, not per retry: a refused login (a person must
 * fix it) at CRITICAL with the fix, like a refused AMI login; anything else at WARNING; then INFO
 * when connected again, with how long it was down. The text is amqpErrorText's (queue/broker.ts).
 */
export function followAmqp(
  amqp: Connection,
  where: AmqpWhere,
  s: { metrics: Metrics; log: Logger; onLost: () => void; onChange?: () => void; now?: () => number },
): void {
  const changed = (): void => s.onChange?.();
  // A blocked connection (broker out of memory or disk) is not ready either: amqp.ready says so.
  amqp.on('connection.blocked', changed);
  amqp.on('connection.unblocked', changed);
  const now = s.now ?? Date.now;
  let outage: { since: number; kind: string } | undefined;
  let connected = false;
  amqp.on('error', (error: unknown) => {
    s.metrics.amqpConnected.set(0);
    s.onLost();
    changed();
    const code = errorCode(error);
    const text = amqpErrorText(error);
    const kind = code === 'ACCESS_REFUSED' ? 'login refused' : code === 'NOT_ALLOWED' ? 'vhost refused' : 'unavailable';
    if (outage?.kind === kind) return s.log.debug('RabbitMQ reconnect attempt failed', { error: text });
    outage = { since: outage?.since ?? now(), kind };
    if (kind === 'login refused') {
      s.log.crit(
        `RabbitMQ refused the login of user '${where.user}': check [RabbitMQ] UserName/Password in ${where.file} (or AUDIOCONVERT_AMQP_PASSWORD); retrying`,
        { error: text },
      );
    } else if (kind === 'vhost refused') {
      s.log.crit(
        `RabbitMQ does not let user '${where.user}' into vhost '${where.vhost}': check [RabbitMQ] VirtualHost in ${where.file} and the user's permissions; retrying`,
        { error: text },
      );
    } else {
      s.log.warning(connected ? 'RabbitMQ connection lost; reconnecting' : 'cannot connect to RabbitMQ; retrying', {
        host: where.host,
        error: text,
      });
    }
  });
  amqp.on('connection', () => {
    s.metrics.amqpConnected.set(1);
    const down = outage === undefined ? {} : { duration_ms: now() - outage.since };
    s.log.info(connected ? 'RabbitMQ connection restored' : 'RabbitMQ connected', { host: where.host, vhost: where.vhost, ...down });
    outage = undefined;
    connected = true;
    changed();
  });
}

/**
 * Declares the whole topology before intake may consume (intake starts paused for `topology`),
 * retrying with backoff while RabbitMQ is away, until it succeeds or `stop` aborts. A piece that
 * exists with other arguments is logged CRITICAL once, with the fix: a person must act.
 */
export async function declareAtStart(
  amqp: Connection,
  lanes: readonly BrokerNames[],
  s: { intake: Intake; log: Logger; stop: AbortSignal; backoff?: { baseMs: number; capMs: number } },
): Promise<void> {
  // The last failure's text: a failure like the previous one is not logged again (one line per problem).
  let last: string | undefined;
  for (let failures = 0; !s.stop.aborted; failures++) {
    try {
      for (const names of lanes) await declareTopology(amqp, names);
      const names = lanes[0]!;
      s.log.info('topology declared', {
        queues: lanes.map((l) => l.queueName).join(','),
        dead_letter_queue: names.deadLetterQueue,
        results_exchange: names.resultsExchange,
        delay_queues: lanes.length * new Set(names.retryDelaysMs).size,
      });
      await s.intake.resume('topology');
      return;
    } catch (error) {
      const mismatch = explainDeclareMismatch(error, lanes[0]!.queueName);
      const text = mismatch ?? errorText(error);
      if (last !== text) {
        if (mismatch !== undefined) s.log.crit(mismatch);
        else s.log.warning('cannot declare the queues and the results exchange yet; retrying', { error: text });
      }
      last = text;
      await delay(expBackoff(failures, s.backoff ?? { baseMs: 1000, capMs: 30_000 }), undefined, { signal: s.stop, ref: false }).catch(
        () => undefined,
      );
    }
  }
}

export function readinessOf(amqp: Connection, ami: AmiClient, intake: Intake, problems: ReadinessProblems): Readiness {
  const checks = {
    amqp: { ok: amqp.ready, detail: amqp.ready ? 'connected' : 'RabbitMQ not connected' },
    ami: { ok: ami.connected, detail: ami.connected ? 'logged in' : (problems.auth ?? 'AMI not connected') },
    dialplan: { ok: problems.deployment === undefined, detail: problems.deployment ?? 'ok' },
    consuming: { ok: intake.consuming, detail: intake.consuming ? 'consuming' : `paused: ${intake.notConsumingFor.join(', ')}` },
  };
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}

// ---- Shutdown ----
// The service's shutdown order, in one list: stop taking jobs (a job still waiting for a slot goes
// back), drain what is in flight (up to DrainTimeout, then abandon it to be requeued), then close
// each part. Idempotent; a failing step is logged and the next one still runs.

/** What close() stops, in the order it stops them. */
export interface ShutdownParts {
  /** Aborted first: the topology declaration stops retrying. */
  readonly stopping: AbortController;
  /** Aborted when the drain deadline passes: jobs still in flight give up and are requeued. */
  readonly abandon: AbortController;
  readonly probe: DeploymentProbe;
  /** Closed first: a job still waiting for a slot goes back to the queue instead of starting. */
  readonly gate: { close(): void };
  readonly declaring: Promise<void>;
  readonly intake: Intake;
  readonly originator: Originator;
  readonly ami: AmiClient;
  readonly publishers: readonly BrokerPublisher[];
  readonly amqp: Connection;
  readonly tempFiles: TempFileReaper;
  /** Read when the step runs: the HTTP server starts after the closer exists. */
  readonly http: () => HttpServer | undefined;
}

/**
 * The service's close(): idempotent, ordered. `failedStart`: start() is undoing itself (no job was
 * taken yet), so the log says that instead of the drain's wording.
 */
export function closer(log: Logger, drainTimeoutMs: number, p: ShutdownParts): (failedStart?: boolean) => Promise<void> {
  let closing: Promise<void> | undefined;
  return (failedStart = false) => {
    closing ??= (async () => {
      if (failedStart) log.info('start failed: closing the connections it had opened');
      else log.info('stopping: no new jobs; waiting for jobs in flight', { drain_timeout_ms: drainTimeoutMs });
      p.stopping.abort();
      p.gate.close();
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
      log.info(failedStart ? 'closed after the failed start' : 'stopped');
    })();
    return closing;
  };
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
