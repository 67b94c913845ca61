/**
 * The parts main.ts wires together, kept here so that main.ts reads as the wiring (the shutdown
 * order is shutdown.ts): following AMI's state, declaring the topology at start-up, readiness.
 */
import type { EventEmitter } from 'node:events';
import { setTimeout as delay } from 'node:timers/promises';
import type { Connection } from 'rabbitmq-client';
import type { AmiClient } from './ami/client.js';
import type { AppError } from './errors.js';
import { errorCode, errorText } from './errors.js';
import type { Readiness } from './http.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { amqpErrorText, declareTopology, explainDeclareMismatch, type BrokerNames } from './queue/broker.js';
import { expBackoff } from './util/backoff.js';
import type { Intake, IntakeHooks } from './worker/intake.js';
import type { DeploymentProbe } from './worker/probe.js';

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

/** What the service knows of its own troubles; /readyz and the logs read it. */
export interface Troubles {
  /** Asterisk refused the Originate itself (dialplan or permission); cleared by the probe. */
  deployment: string | undefined;
  /** AMI refused the login; cleared by the next successful login. */
  auth: string | undefined;
  /** The topology could not be declared yet; cleared once it is. */
  topology: string | undefined;
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
  troubles: Troubles;
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
      s.log.notice('deployment error fixed: consuming again', { was: s.troubles.deployment });
      s.troubles.deployment = undefined;
      s.events.emit('deployment', undefined);
      s.events.emit('readiness');
      void s.intake().resume('deployment');
    },
    found: (error) => {
      if (s.troubles.deployment === undefined) {
        s.log.crit('deployment error: consuming stopped, messages stay queued until it is fixed', { reason: error.message });
      }
      s.troubles.deployment = error.message;
      s.events.emit('deployment', s.troubles.deployment);
      s.events.emit('readiness');
      void s.intake().pause('deployment');
      s.probe().start();
    },
  };
}

/** AMI state → metrics, events, intake (pause while down) and the deployment probe. */
export function followAmi(
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
    s.events.emit('readiness');
    void s.intake.resume('ami-down');
    if (s.troubles.deployment !== undefined) s.probe.start();
  });
  ami.on('disconnected', () => {
    s.metrics.amiConnected.set(0);
    s.events.emit('ami', false);
    s.events.emit('readiness');
    void s.intake.pause('ami-down');
  });
  ami.on('authFailed', (error: Error) => {
    if (s.troubles.auth === undefined)
      s.log.crit('AMI login refused: check [AsteriskAMI] User/Secret and manager.conf', { reason: error.message });
    s.troubles.auth = 'AMI login refused';
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
  s: { intake: Intake; troubles: Troubles; log: Logger; stop: AbortSignal; backoff?: { baseMs: number; capMs: number } },
): Promise<void> {
  for (let failures = 0; !s.stop.aborted; failures++) {
    try {
      for (const names of lanes) await declareTopology(amqp, names);
      s.troubles.topology = undefined;
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
      if (s.troubles.topology !== text) {
        if (mismatch !== undefined) s.log.crit(mismatch);
        else s.log.warning('cannot declare the queues and the results exchange yet; retrying', { error: text });
      }
      s.troubles.topology = text;
      await delay(expBackoff(failures, s.backoff ?? { baseMs: 1000, capMs: 30_000 }), undefined, { signal: s.stop, ref: false }).catch(
        () => undefined,
      );
    }
  }
}

export function readinessOf(amqp: Connection, ami: AmiClient, intake: Intake, troubles: Troubles): Readiness {
  const checks = {
    amqp: { ok: amqp.ready, detail: amqp.ready ? 'connected' : 'RabbitMQ not connected' },
    ami: { ok: ami.connected, detail: ami.connected ? 'logged in' : (troubles.auth ?? 'AMI not connected') },
    dialplan: { ok: troubles.deployment === undefined, detail: troubles.deployment ?? 'ok' },
    consuming: { ok: intake.consuming, detail: intake.consuming ? 'consuming' : `paused: ${intake.notConsumingFor.join(', ')}` },
  };
  return { ready: Object.values(checks).every((c) => c.ok), checks };
}
