/**
 * sd_notify for a Type=notify unit: READY=1, STATUS=, WATCHDOG=1, STOPPING=1.
 *
 * Node has no AF_UNIX datagram sockets, so each notification is one run of systemd's own
 * `systemd-notify` (docs/decisions/0011-sd-notify.md: why, and what it costs). It runs without
 * `--no-block`: it then waits (BARRIER=1) until systemd has processed the message, so the message
 * is never dropped because its sender exited first; the unit needs `NotifyAccess=all` because the
 * sender is a child of the main process.
 *
 * Outside systemd ($NOTIFY_SOCKET unset) every method does nothing: no process, no timer.
 */
import { spawn } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import type { Readiness } from '../http.js';

/** The environment systemd gives a Type=notify service (cli.ts passes process.env). */
export interface NotifyEnv {
  readonly NOTIFY_SOCKET?: string | undefined;
  readonly WATCHDOG_USEC?: string | undefined;
  readonly WATCHDOG_PID?: string | undefined;
  readonly PATH?: string | undefined;
}

export interface NotifierOptions {
  /** The notifying program; default `systemd-notify`, found in $PATH. */
  readonly command?: string;
  /** This process's pid (WATCHDOG_PID names the process that must ping); default process.pid. */
  readonly pid?: number;
  /** A notification could not be delivered (the caller logs it; the service goes on). Each distinct failure once. */
  readonly onError?: (error: Error) => void;
}

export interface SystemdNotifier {
  /** Whether systemd listens ($NOTIFY_SOCKET set). */
  readonly enabled: boolean;
  /** The watchdog ping interval (half of WatchdogSec), or undefined when systemd wants no pings. */
  readonly watchdogMs: number | undefined;
  /** Sends one message: `KEY=VALUE` assignments, in order. */
  notify(assignments: readonly string[]): void;
  /** Starts the WATCHDOG=1 pings from the event loop (a blocked loop sends none). */
  startWatchdog(): void;
  /** Stops the pings and waits for the messages still being sent. */
  close(): Promise<void>;
}

/**
 * The ping interval systemd asks for: half of $WATCHDOG_USEC (as sd_watchdog_enabled() and
 * systemd.service(5) advise), or undefined when no watchdog is set or it is meant for another pid.
 */
export function watchdogIntervalMs(env: NotifyEnv, pid: number): number | undefined {
  if (!env.NOTIFY_SOCKET || env.WATCHDOG_USEC === undefined) return undefined;
  if (env.WATCHDOG_PID !== undefined && env.WATCHDOG_PID !== '' && Number(env.WATCHDOG_PID) !== pid) return undefined;
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

/** `STATUS=` text on one line: a newline would start another assignment in the datagram. */
export function statusText(text: string): string {
  return 'STATUS=' + text.replace(/[\r\n]+/g, ' ').slice(0, 400);
}

/** A notifier for `env`; a no-op one when $NOTIFY_SOCKET is not set. */
export function systemdNotifier(env: NotifyEnv, options: NotifierOptions = {}): SystemdNotifier {
  const socket = env.NOTIFY_SOCKET;
  const watchdogMs = watchdogIntervalMs(env, options.pid ?? process.pid);
  if (!socket) {
    return { enabled: false, watchdogMs: undefined, notify: () => {}, startWatchdog: () => {}, close: () => Promise.resolve() };
  }
  const command = options.command ?? 'systemd-notify';
  const childEnv = { NOTIFY_SOCKET: socket, ...(env.PATH === undefined ? {} : { PATH: env.PATH }) };
  // A failure repeats every watchdog interval: say it once, not every 15 s.
  const reported = new Set<string>();
  const fail = (error: Error): void => {
    if (reported.has(error.message)) return;
    reported.add(error.message);
    options.onError?.(error);
  };
  // One message at a time, in order: READY=1 must not overtake the STATUS= before it.
  let queue = Promise.resolve();
  let pingInFlight = false;
  let timer: NodeJS.Timeout | undefined;

  const run = (assignments: readonly string[]): Promise<void> => runNotify(command, childEnv, assignments, fail);
  const notify = (assignments: readonly string[]): void => {
    queue = queue.then(() => run(assignments));
  };
  return {
    enabled: true,
    watchdogMs,
    notify,
    startWatchdog() {
      if (watchdogMs === undefined || timer !== undefined) return;
      const ping = (): void => {
        // A ping still waiting for systemd: another one adds nothing.
        if (pingInFlight) return;
        pingInFlight = true;
        queue = queue.then(() => run(['WATCHDOG=1'])).finally(() => (pingInFlight = false));
      };
      ping();
      timer = setInterval(ping, watchdogMs);
      // The pings must not keep a stopping process alive.
      timer.unref();
    },
    async close() {
      clearInterval(timer);
      await queue;
    },
  };
}

/** What `followService` needs of a running service (main.ts's Service). */
export interface Observable {
  readonly events: EventEmitter;
  readiness(): Readiness;
}

/** One line for STATUS=: what is not ready, or that it consumes. */
export function describe(readiness: Readiness): string {
  if (readiness.ready) return 'consuming';
  const down = Object.entries(readiness.checks)
    .filter(([, c]) => !c.ok)
    .map(([name, c]) => `${name}: ${c.detail}`);
  return `not ready (${down.join('; ')})`;
}

/**
 * READY=1 the first time the service consumes, or after `readyAfterMs` at the latest (a broker or
 * PBX that is down at boot must not make systemd kill a service that waits for it by design:
 * /readyz and STATUS= say it is not consuming). STATUS= is the text of /readyz's reasons
 * (describe(readiness())), re-sent on every 'readiness' event whose text differs from the last one
 * sent, and only then. Returns stop(), which sends STOPPING=1.
 */
export function followService(service: Observable, notifier: SystemdNotifier, readyAfterMs: number): { stopping(): void } {
  if (!notifier.enabled) return { stopping: () => {} };
  let ready = false;
  let last = '';
  const update = (): void => {
    const status = describe(service.readiness());
    if (!ready && service.readiness().ready) {
      ready = true;
      clearTimeout(fallback);
      notifier.notify(['READY=1', statusText(status)]);
    } else if (status !== last) notifier.notify([statusText(status)]);
    last = status;
  };
  const fallback = setTimeout(() => {
    if (ready) return;
    ready = true;
    last = describe(service.readiness());
    notifier.notify(['READY=1', statusText(`started, ${last}`)]);
  }, readyAfterMs);
  fallback.unref();
  service.events.on('readiness', update);
  notifier.startWatchdog();
  update();
  return {
    stopping() {
      clearTimeout(fallback);
      service.events.off('readiness', update);
      notifier.notify(['STOPPING=1', statusText('stopping: draining jobs in flight')]);
    },
  };
}

/** One `systemd-notify` run; it always resolves, reporting any failure through `fail`. */
function runNotify(
  command: string,
  childEnv: NodeJS.ProcessEnv,
  assignments: readonly string[],
  fail: (error: Error) => void,
): Promise<void> {
  return new Promise((resolve) => {
    const what = `${command} ${assignments.map((a) => a.split('=')[0]).join(' ')}`;
    // systemd-notify waits at most 5 s for systemd (its barrier timeout); 10 s is a safety net.
    const child = spawn(command, [...assignments], { env: childEnv, stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', (error) => {
      fail(new Error(`${what}: ${error.message}`, { cause: error }));
      resolve();
    });
    child.once('close', (code, signal) => {
      if (code !== 0 && code !== null) fail(new Error(`${what} exited ${code}: ${stderr.trim()}`));
      else if (signal !== null) fail(new Error(`${what} killed by ${signal}`));
      resolve();
    });
  });
}
