/**
 * The AMI half of `audio-convert doctor`: reachable, login, the dialplan's `ping` extension
 * answers, the conversion extension exists. The conversion check originates with paths the
 * shipped dialplan's path check refuses (`invalid-path`), so nothing ever runs.
 */
import { randomUUID } from 'node:crypto';
import { AmiClient, type DisconnectReason } from '../ami/client.js';
import { getHeader, type AmiMessage } from '../ami/protocol.js';
import { Originator, type OriginateOutcome } from '../worker/originate.js';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Config } from '../config.js';
import { amiTlsOptions } from '../connections.js';
import type { DoctorReport } from './doctor-report.js';
import { compareRoots, rootsOf, stepReport, type DialplanRoots } from './doctor-roots.js';
import { errorText } from '../errors.js';

const CONNECT_TIMEOUT_MS = 5000;
const LOGIN_TIMEOUT_MS = 5000;
const DIALPLAN_TIMEOUT_MS = 10_000;

type LoginResult =
  { kind: 'connected' } | { kind: 'auth-failed'; message: string } | { kind: 'failed'; reason: DisconnectReason; message: string };

export async function checkAmi(config: Config, report: DoctorReport): Promise<void> {
  const ami = config.ami;
  const where = `${ami.tls ? 'tls://' : ''}${ami.host}:${ami.port}`;
  let tls: TlsOptions | undefined;
  try {
    tls = amiTlsOptions(ami);
  } catch (error) {
    report.fail(
      'AMI TLS',
      `cannot read [AsteriskAMI] TLSCAFile: ${errorText(error)}`,
      `make ${ami.tlsCaFile ?? 'the CA file'} readable by the service user, or fix TLSCAFile in ${config.file}`,
    );
    report.skip('AMI login and dialplan', 'no TLS settings');
    return;
  }
  const client = new AmiClient({
    host: ami.host,
    port: ami.port,
    username: ami.username,
    secret: ami.secret,
    authType: ami.authType,
    tls,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    actionTimeoutMs: LOGIN_TIMEOUT_MS,
    pingIntervalMs: 0,
  });
  try {
    const login = await firstLogin(client);
    if (!reportLogin(login, config, where, report)) {
      report.skip('dialplan', 'no AMI session');
      return;
    }
    await checkDialplan(client, config, report);
  } finally {
    await client.close();
  }
}

/** Starts the client and waits for the outcome of its first attempt (it would retry forever). */
function firstLogin(client: AmiClient): Promise<LoginResult> {
  return new Promise((resolve) => {
    const done = (result: LoginResult): void => {
      client.off('connected', onConnected);
      client.off('authFailed', onAuthFailed);
      client.off('reconnecting', onReconnecting);
      resolve(result);
    };
    const onConnected = (): void => done({ kind: 'connected' });
    // authFailed comes before the 'reconnecting' of the same attempt.
    const onAuthFailed = (error: Error): void => done({ kind: 'auth-failed', message: error.message });
    const onReconnecting = (info: { reason: DisconnectReason }): void =>
      done({ kind: 'failed', reason: info.reason, message: client.lastError?.message ?? info.reason });
    client.on('connected', onConnected);
    client.on('authFailed', onAuthFailed);
    client.on('reconnecting', onReconnecting);
    client.start();
  });
}

/** Prints the reachability and login lines; true when logged in. */
function reportLogin(login: LoginResult, config: Config, where: string, report: DoctorReport): boolean {
  const { file, ami } = config;
  const portFix =
    `start Asterisk (systemctl start asterisk); check [AsteriskAMI] Addr/Port${ami.tls ? '/TLS' : ''} in ${file} and ` +
    `/etc/asterisk/manager.conf [general]: enabled = yes, port${ami.tls ? ' (tlsenable, tlsbindport)' : ''}, bindaddr`;
  if (
    login.kind === 'failed' &&
    (login.reason === 'connect-failed' || login.reason === 'connect-timeout' || login.reason === 'protocol-error')
  ) {
    const fix =
      login.reason === 'protocol-error' ? `point [AsteriskAMI] Addr/Port in ${file} at Asterisk's manager port (5038 by default)` : portFix;
    report.fail(`AMI reachable at ${where}`, login.message, fix);
    report.skip(`AMI login as '${ami.username}'`, 'AMI is not reachable');
    return false;
  }
  report.ok(`AMI reachable at ${where}`);
  if (login.kind === 'connected') {
    report.ok(`AMI login as '${ami.username}'`);
    return true;
  }
  if (login.kind === 'auth-failed') {
    report.fail(
      `AMI login as '${ami.username}'`,
      login.message,
      `check [AsteriskAMI] Secret in ${file} (or AUDIOCONVERT_AMI_SECRET) against the [${ami.username}] section of ` +
        `/etc/asterisk/manager.conf (secret, permit/deny for this host); after changing manager.conf run: asterisk -rx "manager reload"`,
    );
  } else {
    report.fail(
      `AMI login as '${ami.username}'`,
      login.message,
      `look at Asterisk's log (/var/log/asterisk/messages) for the refused login; ${portFix}`,
    );
  }
  return false;
}

async function checkDialplan(client: AmiClient, config: Config, report: DoctorReport): Promise<void> {
  const { channel, context, exten } = config.ami;
  const ping = new Originator(client, { channel, context, exten: 'ping' });
  const convert = new Originator(client, { channel, context, exten });
  try {
    // Dummy values: they pass the AMI serializer, and the ping extension ignores them.
    const attemptId = randomUUID();
    const roots = captureRoots(client, attemptId);
    const pong = await ping.run({ gsmPath: 'ping', wavPath: 'ping', timeoutMs: DIALPLAN_TIMEOUT_MS, attemptId }).finally(roots.stop);
    const pingWhat = `dialplan answers (${channel} → ping@${context})`;
    if (pong.kind === 'converted') {
      report.ok(`${pingWhat}: ${pong.detail || 'OK'}`);
      reportRoots(roots.value, config, report);
      if (roots.value !== undefined) {
        const step = stepReport(roots.value.step);
        report[step.level](step.text);
      }
    } else reportOutcome(pingWhat, pong, config, report, 'ping');

    // Paths without a slash fail the dialplan's REGEX check before any step runs.
    const probe = await convert.run({ gsmPath: 'probe', wavPath: 'probe', timeoutMs: DIALPLAN_TIMEOUT_MS });
    const convertWhat = `conversion extension ${exten}@${context}`;
    if (probe.kind === 'conversion-failed' && probe.invalidPath) {
      report.ok(`${convertWhat} present (refused the probe's path as it should: nothing ran)`);
    } else if (probe.kind === 'conversion-failed' || probe.kind === 'converted') {
      report.fail(
        convertWhat,
        `answered ${probe.kind === 'converted' ? 'OK' : `FAILED (Detail: ${probe.detail || 'none'})`} to a path it must refuse ('probe')`,
        `install the shipped path checks: copy config/asterisk/extensions.conf into /etc/asterisk/extensions.conf, then asterisk -rx "dialplan reload"`,
      );
    } else reportOutcome(convertWhat, probe, config, report, exten);
  } finally {
    ping.dispose();
    convert.dispose();
  }
}

/** Listens for the ping's UserEvent (Uniqueid = the attempt's ChannelId) to read the roots it reports. */
function captureRoots(client: AmiClient, attemptId: string): { value: DialplanRoots | undefined; stop: () => void } {
  const capture: { value: DialplanRoots | undefined; stop: () => void } = { value: undefined, stop: () => client.off('event', onEvent) };
  function onEvent(event: AmiMessage): void {
    if (
      getHeader(event, 'Event') === 'UserEvent' &&
      getHeader(event, 'UserEvent') === 'AudioConvert' &&
      getHeader(event, 'Uniqueid') === attemptId
    ) {
      capture.value = rootsOf(event);
    }
  }
  client.on('event', onEvent);
  return capture;
}

/** The dialplan's roots against [Worker] AllowedRoots. */
function reportRoots(roots: DialplanRoots | undefined, config: Config, report: DoctorReport): void {
  const what = 'dialplan roots agree with [Worker] AllowedRoots';
  if (roots === undefined) {
    report.warn(`${what}: the ping's UserEvent was not seen; cannot compare`);
    return;
  }
  const problems = compareRoots(roots, config.worker.allowedRoots, config.file);
  if (problems.length === 0) {
    report.ok(
      `dialplan roots ${roots.gsm ?? ''}, ${roots.wav ?? ''} lie inside [Worker] AllowedRoots (${config.worker.allowedRoots.join(', ')})`,
    );
    return;
  }
  for (const p of problems) report.fail(what, p.problem, p.fix);
}

const DIALPLAN_FIX =
  'copy config/asterisk/extensions.conf into /etc/asterisk/extensions.conf (or #include it), then asterisk -rx "dialplan reload"';

/** A FAIL line for an outcome that is not the expected answer, with the fix its kind points to. */
function reportOutcome(what: string, outcome: OriginateOutcome, config: Config, report: DoctorReport, exten: string): void {
  const { problem, fix } = outcomeProblem(outcome, config, exten);
  report.fail(what, problem, fix);
}

/** What an unexpected outcome says is wrong, and the fix its kind points to. */
function outcomeProblem(outcome: OriginateOutcome, config: Config, exten: string): { problem: string; fix: string } {
  const { file, ami } = config;
  switch (outcome.kind) {
    case 'rejected':
      return rejectedProblem(outcome.message, config, exten);
    case 'start-failed':
      return {
        problem: `the call could not start (${outcome.reason})`,
        fix: `check [AsteriskAMI] Channel = ${ami.channel} in ${file}: its context must exist (the shipped audio-convert-hold); ${DIALPLAN_FIX}`,
      };
    case 'hangup-without-result':
      return {
        problem: `the call ended without the AudioConvert UserEvent (cause: ${outcome.cause})`,
        fix: `give the [${ami.username}] user of /etc/asterisk/manager.conf read = call,user,system (asterisk -rx "manager reload"), and use the shipped dialplan: ${DIALPLAN_FIX}`,
      };
    case 'timeout':
      return {
        problem: `no answer within ${DIALPLAN_TIMEOUT_MS / 1000} s`,
        fix: `check that the [${ami.username}] user of manager.conf has read = call,user,system, and look at the Asterisk console (asterisk -rvvv) while running doctor again`,
      };
    case 'invalid-request':
      return { problem: outcome.message, fix: `check [AsteriskAMI] Channel/Context/Exten in ${file}` };
    case 'disconnected':
      return { problem: `AMI connection lost: ${outcome.message}`, fix: 'run doctor again; if it persists, look at the Asterisk log' };
    default:
      return { problem: `unexpected outcome ${outcome.kind}`, fix: DIALPLAN_FIX };
  }
}

/** Asterisk refused the Originate: a missing extension, a missing right, or something else. */
function rejectedProblem(message: string, config: Config, exten: string): { problem: string; fix: string } {
  const { file, ami } = config;
  if (/extension does not exist/i.test(message)) {
    return {
      problem: `Asterisk: "${message}" (no extension '${exten}' in context '${ami.context}')`,
      fix: `${DIALPLAN_FIX}; or fix [AsteriskAMI] Context/Exten in ${file}`,
    };
  }
  if (/permission denied/i.test(message)) {
    return {
      problem: `Asterisk: "${message}"`,
      fix: `give the [${ami.username}] user of /etc/asterisk/manager.conf write = originate, then asterisk -rx "manager reload"`,
    };
  }
  return {
    problem: `Asterisk refused the Originate: "${message}"`,
    fix: `${DIALPLAN_FIX}; check [AsteriskAMI] Channel/Context/Exten in ${file}`,
  };
}
