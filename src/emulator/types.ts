/**
 * Public shapes of the AMI emulator: options, statistics and the payloads of the events it emits
 * so tests can wait on them instead of sleeping.
 */
import type { AmiMessage } from '../ami/protocol.js';

/**
 * How the recorded event reorderings are reproduced (measured over 1,000 real jobs:
 * OriginateResponse may precede Newchannel, a fast failure's UserEvent may precede OriginateResponse).
 */
export type ReorderMode = 'none' | 'userevent-first' | 'originateresponse-first' | 'hangup2-first' | 'random';

/** A manager.conf user. A bare string is the secret of a `read = call,user,system`, `write = originate` user. */
export interface EmulatorUser {
  readonly secret: string;
  /** manager.conf `read` classes; default call,user,system. */
  readonly read?: readonly string[];
  /** manager.conf `write` classes; default originate. Add 'reporting' to allow CoreShowChannels. */
  readonly write?: readonly string[];
}

export interface EmulatorOptions {
  /** Listen address; default 127.0.0.1. A non-loopback address needs allowNonLoopback. */
  host?: string;
  /** TCP port; default 0 (ephemeral). */
  port?: number;
  allowNonLoopback?: boolean;
  /** Users, like manager.conf; default { auditorai: 'simulator' }. */
  users?: Record<string, string | EmulatorUser>;
  /** 'real' runs sox (default); 'instant' writes nothing and reports WavBytes 48044 at once. */
  mode?: 'real' | 'instant';
  /**
   * The conversion step priority 8 picks: 'perl' (default: app_convert not loaded, priorities 11–21) or
   * 'convert-app' (the Convert() application of app_convert, priorities 22–24, with its CONVERT_DETAIL outcomes).
   */
  step?: 'perl' | 'convert-app';
  /** Root of the dialplan's path rules; default /var/local/auditorai. */
  root?: string;
  /** Extra time every conversion step takes, in ms (default 0). */
  latencyMs?: number;
  /** The dialplan's time bound on the step; default 100000 (extensions.conf: perl's `alarm 100`, then SIGKILL of the decoder). */
  conversionTimeoutMs?: number;
  /** Delay before "Authentication failed" and the close; Asterisk sleeps 1 s. Default 1000. */
  loginFailDelayMs?: number;
  /** Unauthenticated sessions are closed after this (manager.conf authtimeout, default 30 s). */
  authTimeoutMs?: number;
  /** A client that lets more than this pile up unread is disconnected (Asterisk's write timeout). Default 64 MiB. */
  maxBufferedBytes?: number;
  /** The sox binary; default 'sox' from PATH. */
  soxPath?: string;
  tls?: { key: string | Buffer; cert: string | Buffer };
}

/** Counters for assertions. Plain numbers: read them, do not write them. */
export interface EmulatorStats {
  logins: number;
  loginFailures: number;
  originates: number;
  /** Actions received, by name as Asterisk spells it (unknown names as sent). */
  actions: Record<string, number>;
  conversionsStarted: number;
  conversionsFinished: number;
  /** CR/NUL inside a value, a line over 1024 bytes, a shell metacharacter in GSM_PATH/WAV_PATH. */
  forbiddenBytes: number;
  /** Actions a correct bridge never sends (Command, a synchronous Originate, ...), first 200. */
  unexpectedActions: string[];
}

/** Payload of the 'originate' event: an Originate that Asterisk accepted ("successfully queued"). */
export interface OriginateInfo {
  readonly actionId: string | undefined;
  readonly channelId: string;
  readonly context: string;
  readonly exten: string;
  readonly variables: ReadonlyMap<string, string>;
}

/** Payload of 'conversionStart'. */
export interface ConversionInfo {
  readonly channelId: string;
  readonly jobId: string;
  readonly gsmPath: string;
  /** GSM_PATH2: a two-leg job's second leg ('' for one input). */
  readonly gsmPath2: string;
  readonly wavPath: string;
}

/** Payload of 'conversionEnd' and 'jobEnd'. */
export interface JobResultInfo {
  readonly channelId: string;
  readonly jobId: string;
  /** 'OK' | 'FAILED', or undefined when the dialplan ended without a UserEvent. */
  readonly status: string | undefined;
  readonly detail: string | undefined;
  readonly wavBytes: number | undefined;
  /** True when Asterisk "restarted" meanwhile: nobody was told. */
  readonly orphaned: boolean;
}

/** Events the emulator emits (EventEmitter), for tests to wait on. */
export interface EmulatorEvents {
  listening: [port: number];
  login: [info: { username: string; ok: boolean }];
  action: [message: AmiMessage];
  originate: [info: OriginateInfo];
  conversionStart: [info: ConversionInfo];
  conversionEnd: [info: JobResultInfo];
  /** The job's last Hangup went out (or would have, for an orphan). */
  jobEnd: [info: JobResultInfo];
  sessionClose: [info: { username: string | undefined }];
  restart: [phase: 'down' | 'up'];
}

/** Re-exported for users of `received`. */
export type { AmiMessage };
