/**
 * One conversion attempt on AMI: the Originate described in docs/asterisk.md, and the correlation of the call's
 * events into exactly one typed outcome.
 *
 * Correlation rules (measured on a real Asterisk, see ami-transcripts/):
 * - `OriginateResponse` is matched by ActionID only (it is the one event that carries ours);
 * - everything else by `Uniqueid` = the ChannelId we chose; the `<id>;2` half is another Uniqueid
 *   and so is ignored without a special case;
 * - event order is not fixed: the UserEvent may come before the OriginateResponse, the
 *   OriginateResponse before Newchannel, the `;2` Hangup before the `;1`. So the state below is a
 *   set of facts, and the outcome is decided when the facts suffice, whatever their order.
 * - the attempt is complete when both the `AudioConvert` UserEvent and the `;1` Hangup are in;
 *   a Hangup with no UserEvent before it is a failure.
 *
 * One listener on the client serves every attempt (two map lookups per event), so the cost per
 * event does not grow with the number of jobs in flight.
 */
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import { errorText } from '../errors.js';
import { AmiActionTimeoutError, AmiSerializeError } from '../ami/errors.js';
import { getHeader, type AmiMessage, type AmiPair } from '../ami/protocol.js';

/**
 * What Convert() reports besides its status (the UserEvent's InputSha256, WavSha256, Audio): the
 * files' hashes (one per leg, space-separated) and each channel's audio facts (src/audio/facts.ts's
 * text). Absent from a step that reports none (the perl step): the bridge measures them then.
 */
export interface StepFacts {
  readonly inputSha256: string;
  readonly wavSha256: string;
  readonly audio: string;
}

/** What one attempt ended in. Exactly one per attempt. */
export type OriginateOutcome =
  | { readonly kind: 'converted'; readonly wavBytes: number; readonly detail: string; readonly facts?: StepFacts }
  | {
      readonly kind: 'conversion-failed';
      readonly inputMissing: boolean;
      readonly invalidPath: boolean;
      readonly detail: string;
      /** Convert()'s CONVERT_REASON (the UserEvent's Reason), for a person; '' from the perl step. */
      readonly reason: string;
    }
  /** `Response: Error` to the Originate itself: the dialplan or the manager user is wrong. */
  | { readonly kind: 'rejected'; readonly message: string }
  /** The action could not be written (a forbidden byte, a line over 1024 bytes) or Asterisk could not parse it. */
  | { readonly kind: 'invalid-request'; readonly message: string }
  /** `OriginateResponse: Failure`: the call could not start (e.g. ChannelId still in use). */
  | { readonly kind: 'start-failed'; readonly reason: string }
  | { readonly kind: 'hangup-without-result'; readonly cause: string }
  | { readonly kind: 'timeout'; readonly afterMs: number }
  | { readonly kind: 'disconnected'; readonly message: string };

/** What the tracker needs of an AMI client (AmiClient satisfies it). */
export interface AmiSession extends Pick<EventEmitter, 'on' | 'off'> {
  action(pairs: AmiPair[], options?: { timeoutMs?: number; actionId?: string }): Promise<AmiMessage>;
}

/** Where the call goes: docs/asterisk.md; config [AsteriskAMI] Channel, Context, Exten. */
export interface OriginateTarget {
  readonly channel: string;
  readonly context: string;
  readonly exten: string;
}

export interface AttemptRequest {
  readonly gsmPath: string;
  /** A two-leg job's second leg (the dialplan's GSM_PATH2): one 2-channel WAV. */
  readonly gsmPath2?: string;
  readonly wavPath: string;
  /** Hard deadline for the whole attempt, from the moment the Originate is sent. */
  readonly timeoutMs: number;
  /** Fresh per attempt; also the dialplan's JOB_ID. Generated when absent. */
  readonly attemptId?: string;
}

/** The Originate action (docs/asterisk.md), as ordered pairs (no ActionID: the client adds it). */
export function originateAction(
  target: OriginateTarget,
  attemptId: string,
  gsmPath: string,
  wavPath: string,
  gsmPath2?: string,
): AmiPair[] {
  const pairs: AmiPair[] = [
    ['Action', 'Originate'],
    ['Channel', target.channel],
    ['Context', target.context],
    ['Exten', target.exten],
    ['Priority', '1'],
    ['ChannelId', attemptId],
    // Separate Variable headers: one comma-joined header is split by Asterisk at every comma.
    ['Variable', `JOB_ID=${attemptId}`],
    ['Variable', `GSM_PATH=${gsmPath}`],
    ['Variable', `WAV_PATH=${wavPath}`],
    ['Async', 'true'],
  ];
  if (gsmPath2 !== undefined) pairs.splice(8, 0, ['Variable', `GSM_PATH2=${gsmPath2}`]);
  return pairs;
}

/** The facts gathered about one attempt; decides the outcome once they suffice. Pure. */
export class AttemptState {
  private userEvent: { ok: boolean; detail: string; reason: string; wavBytes: number; facts: StepFacts | undefined } | undefined;

  constructor(
    readonly attemptId: string,
    readonly actionId: string,
  ) {}

  /** The `Response` to the Originate action. */
  onResponse(response: AmiMessage): OriginateOutcome | undefined {
    if (getHeader(response, 'Response') === 'Success') return undefined;
    const message = getHeader(response, 'Message') ?? 'Originate refused';
    // "Failed to parse message: line too long" is about this job's values, not the deployment.
    if (message.startsWith('Failed to parse message')) return { kind: 'invalid-request', message };
    return { kind: 'rejected', message };
  }

  /** An event already known to concern this attempt (by ActionID or Uniqueid). */
  onEvent(name: string, event: AmiMessage): OriginateOutcome | undefined {
    switch (name) {
      case 'OriginateResponse':
        if (getHeader(event, 'Response') === 'Failure' && this.userEvent === undefined) {
          return { kind: 'start-failed', reason: `OriginateResponse Failure, Reason ${getHeader(event, 'Reason') ?? '?'}` };
        }
        return undefined;
      case 'UserEvent':
        if (getHeader(event, 'UserEvent') !== 'AudioConvert') return undefined;
        this.userEvent = {
          ok: getHeader(event, 'Status') === 'OK',
          detail: getHeader(event, 'Detail') ?? getHeader(event, 'SystemStatus') ?? '',
          reason: getHeader(event, 'Reason') ?? '',
          wavBytes: Number(getHeader(event, 'WavBytes') ?? '0') || 0,
          facts: factsOf(event),
        };
        return undefined;
      case 'Hangup':
        return this.userEvent === undefined
          ? { kind: 'hangup-without-result', cause: getHeader(event, 'Cause-txt') ?? getHeader(event, 'Cause') ?? 'unknown' }
          : this.resultOutcome(this.userEvent);
      default:
        return undefined;
    }
  }

  /**
   * The connection went away. If the dialplan already reported its result, the result stands
   * (the WAV was renamed into place before the UserEvent); otherwise nobody will ever tell us.
   */
  onDisconnect(message: string): OriginateOutcome {
    return this.userEvent === undefined ? { kind: 'disconnected', message } : this.resultOutcome(this.userEvent);
  }

  private resultOutcome(result: {
    ok: boolean;
    detail: string;
    reason: string;
    wavBytes: number;
    facts: StepFacts | undefined;
  }): OriginateOutcome {
    if (result.ok)
      return {
        kind: 'converted',
        wavBytes: result.wavBytes,
        detail: result.detail,
        ...(result.facts === undefined ? {} : { facts: result.facts }),
      };
    return {
      kind: 'conversion-failed',
      inputMissing: result.detail === 'input-missing',
      invalidPath: result.detail === 'invalid-path',
      detail: result.detail,
      reason: result.reason,
    };
  }
}

/** Convert()'s hashes and audio facts in its UserEvent, or undefined from a step that sends none (all three needed). */
function factsOf(event: AmiMessage): StepFacts | undefined {
  const inputSha256 = getHeader(event, 'InputSha256');
  const wavSha256 = getHeader(event, 'WavSha256');
  const audio = getHeader(event, 'Audio');
  return inputSha256 && wavSha256 && audio ? { inputSha256, wavSha256, audio } : undefined;
}

/** The only events an Originator reads (an AmiClient may drop the rest: its `keepEvents` option). */
export const ORIGINATOR_EVENTS: readonly string[] = ['OriginateResponse', 'UserEvent', 'Hangup'];

interface Pending {
  readonly state: AttemptState;
  readonly finish: (outcome: OriginateOutcome) => void;
}

/**
 * Runs attempts over one shared AMI client. Registers each attempt in two maps BEFORE the
 * Originate is written, because its events may arrive before the action's Response.
 */
export class Originator {
  private readonly byActionId = new Map<string, Pending>();
  private readonly byChannelId = new Map<string, Pending>();
  private readonly onEventBound = (event: AmiMessage): void => this.onEvent(event);
  private readonly onDisconnectBound = (info?: { reason?: string }): void => this.onDisconnect(info?.reason ?? 'AMI connection lost');

  constructor(
    private readonly client: AmiSession,
    private readonly target: OriginateTarget,
  ) {
    client.on('event', this.onEventBound);
    client.on('disconnected', this.onDisconnectBound);
  }

  /** Attempts in flight (for tests and metrics: must return to 0). */
  get inFlight(): number {
    return this.byChannelId.size;
  }

  /** Sends one Originate and resolves with its outcome. Never rejects. */
  run(request: AttemptRequest): Promise<OriginateOutcome> {
    const attemptId = request.attemptId ?? randomUUID();
    const actionId = randomUUID();
    const state = new AttemptState(attemptId, actionId);
    return new Promise<OriginateOutcome>((resolve) => {
      let done = false;
      const finish = (outcome: OriginateOutcome): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        this.byActionId.delete(actionId);
        this.byChannelId.delete(attemptId);
        resolve(outcome);
      };
      const timer = setTimeout(() => finish({ kind: 'timeout', afterMs: request.timeoutMs }), request.timeoutMs);
      const pending: Pending = { state, finish };
      this.byActionId.set(actionId, pending);
      this.byChannelId.set(attemptId, pending);
      this.client
        .action(originateAction(this.target, attemptId, request.gsmPath, request.wavPath, request.gsmPath2), {
          actionId,
          timeoutMs: request.timeoutMs,
        })
        .then(
          (response) => {
            const outcome = state.onResponse(response);
            if (outcome !== undefined) finish(outcome);
          },
          (error: unknown) => finish(actionErrorOutcome(error)),
        );
    });
  }

  /** Stops listening. Attempts still in flight end as disconnected. */
  dispose(): void {
    this.client.off('event', this.onEventBound);
    this.client.off('disconnected', this.onDisconnectBound);
    this.onDisconnect('originator disposed');
  }

  private onEvent(event: AmiMessage): void {
    const name = getHeader(event, 'Event');
    let pending: Pending | undefined;
    if (name === 'OriginateResponse') {
      const actionId = getHeader(event, 'ActionID');
      pending = actionId === undefined ? undefined : this.byActionId.get(actionId);
    } else if (name === 'UserEvent' || name === 'Hangup') {
      const uniqueid = getHeader(event, 'Uniqueid');
      pending = uniqueid === undefined ? undefined : this.byChannelId.get(uniqueid);
    }
    if (pending === undefined || name === undefined) return;
    const outcome = pending.state.onEvent(name, event);
    if (outcome !== undefined) pending.finish(outcome);
  }

  private onDisconnect(message: string): void {
    // Copy first: finish() deletes from the map we iterate.
    for (const pending of [...this.byChannelId.values()]) pending.finish(pending.state.onDisconnect(message));
  }
}

/** Why the client rejected the Originate, by the error's class (client.ts `action()` documents them). */
function actionErrorOutcome(error: unknown): OriginateOutcome {
  const message = errorText(error);
  if (error instanceof AmiSerializeError) return { kind: 'invalid-request', message: `refused before sending: ${message}` };
  // The client's own action deadline equals the attempt's: report it as the timeout it is.
  if (error instanceof AmiActionTimeoutError) return { kind: 'timeout', afterMs: error.timeoutMs };
  return { kind: 'disconnected', message };
}
