/**
 * The service's shutdown order, in one list: stop taking jobs (a job still waiting for a slot goes
 * back), drain what is in flight (up to DrainTimeout, then abandon it to be requeued), then close
 * each part. Idempotent; a failing step is logged and the next one still runs.
 */
import type { Connection } from 'rabbitmq-client';
import type { AmiClient } from './ami/client.js';
import type { Originator } from './worker/originate.js';
import { errorText } from './errors.js';
import type { HttpServer } from './http.js';
import type { Logger } from './log.js';
import type { BrokerPublisher } from './queue/broker.js';
import type { Intake } from './worker/intake.js';
import type { DeploymentProbe } from './worker/probe.js';
import type { TempFileReaper } from './worker/tempfiles.js';

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
