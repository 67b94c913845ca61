/**
 * One accepted Originate: the Local channel pair, the events a `read = call,user,system` user sees
 * (final-ok.txt: 14 per job), the dialplan run on the ;1 half, and the recorded reorderings.
 */
import type { ChildProcess } from 'node:child_process';
import { convert, convertApp, ensureDir, exists, instantWav, statSize, writeShortWav, type SystemStatus } from './convert.js';
import {
  ANSWER_HOLD_MS,
  checkConvert,
  convertAppResult,
  HOLD_ANSWER_PRIORITY,
  HOLD_WAIT_PRIORITY,
  inputMissing,
  pong,
  PRIORITY,
  stepResult,
  userEventBody,
  WAV_DIR_MODE,
  wavDirOf,
  type ConversionStep,
  type DialplanOutcome,
  type PathRulesOfDialplan,
} from './dialplan.js';
import { tempPathOf } from '../characters.js';
import * as ev from './events.js';
import type { ChanSnap, WireEvent } from './events.js';
import type { ConversionInfo, EmulatorStats, JobResultInfo, ReorderMode } from './types.js';

/** What a test may force instead of the input check and the step (any mode). */
/**
 * What a test may force instead of the input check and the step (any mode). `short-ok`: a step that
 * lies — it writes a WAV too short for its input and reports success (the bridge's proof must catch it).
 */
export type OutcomeOverride = (job: ConversionInfo) => 'input-missing' | 'APPERROR' | 'FAILURE' | 'short-ok' | undefined;

/** What a call needs from the emulator. */
export interface CallHost {
  readonly generation: number;
  readonly mode: 'real' | 'instant';
  /** The step priority 8 picks (app_convert loaded or not). */
  readonly step: ConversionStep;
  readonly rules: PathRulesOfDialplan;
  readonly latencyMs: number;
  readonly conversionTimeoutMs: number;
  readonly hangConversions: boolean;
  /** The emulator was closed: start nothing new. */
  readonly stopped: boolean;
  readonly soxPath: string;
  readonly outcomeOverride: OutcomeOverride | undefined;
  readonly children: Set<ChildProcess>;
  readonly stats: EmulatorStats;
  broadcast(events: readonly WireEvent[]): void;
  /** A tracked timer (cleared by close()). */
  sleep(ms: number): Promise<void>;
  release(call: Call): void;
  emitConversion(name: 'conversionStart', info: ConversionInfo): void;
  emitConversion(name: 'conversionEnd' | 'jobEnd', info: JobResultInfo): void;
}

export interface CallSpec {
  readonly actionId: string | undefined;
  readonly uid1: string;
  readonly uid2: string;
  /** Local channel name without the ;1/;2 suffix, e.g. Local/s@audio-convert-hold-00002e23. */
  readonly baseName: string;
  readonly localContext: string;
  readonly localExten: string;
  /** What the Originate asked to run on ;1. */
  readonly context: string;
  readonly exten: string;
  readonly vars: ReadonlyMap<string, string>;
  /** A concrete mode ('random' already resolved). */
  readonly reorder: Exclude<ReorderMode, 'random'>;
  /** No Async: true — no OriginateResponse event (seed-originate-sync.txt). */
  readonly sync: boolean;
  /** False when ;1 runs something the emulator does not model (Application, Priority 0): no UserEvent. */
  readonly runnable: boolean;
}

/** An answered call whose ;1 half is running the dialplan. */
export class Call {
  readonly generation: number;
  /** The priority ;1 is at (for restart events and CoreShowChannels). */
  priority = 1;
  /** When ;1 came up (setup); 0 before. */
  answeredAt = 0;
  private deferredResponse: WireEvent | undefined;

  constructor(
    private readonly host: CallHost,
    readonly spec: CallSpec,
  ) {
    this.generation = host.generation;
  }

  get name1(): string {
    return `${this.spec.baseName};1`;
  }
  get name2(): string {
    return `${this.spec.baseName};2`;
  }

  /** ;1 as Newchannel/Newstate print it: still at the Local channel's own target. */
  private s1(state: 0 | 6): ChanSnap {
    const s = this.spec;
    return { name: this.name1, state, context: s.localContext, exten: s.localExten, priority: 1, uniqueid: s.uid1, linkedid: s.uid1 };
  }

  /** ;2 (the hold half); priority 1 while Answer() waits for media, 2 once in Wait(). */
  s2(state: 4 | 6, priority: number = HOLD_ANSWER_PRIORITY): ChanSnap {
    const s = this.spec;
    return { name: this.name2, state, context: s.localContext, exten: s.localExten, priority, uniqueid: s.uid2, linkedid: s.uid1 };
  }

  /** ;1 in the job's dialplan. */
  s1At(priority: number, exten: string = this.spec.exten): ChanSnap {
    const s = this.spec;
    return { name: this.name1, state: 6, context: s.context, exten, priority, uniqueid: s.uid1, linkedid: s.uid1 };
  }

  /** Emits the call setup: both halves created, ;2 answers, ;1 is up (and OriginateResponse). */
  setup(): void {
    const s = this.spec;
    const response = ev.originateResponse({
      actionId: s.actionId,
      ok: true,
      channel: this.name1,
      context: s.context,
      exten: s.exten,
      uniqueid: s.uid1,
    });
    const setup: WireEvent[] = [
      ev.newchannel(this.s1(0)),
      ev.newchannel(this.s2(4)),
      ev.localBridge(this.s1(0), this.s2(4), s.localContext, s.localExten),
      ev.dialBegin(this.s1(0), `${s.localExten}@${s.localContext}`),
      ev.newstate(this.s2(6)),
      ev.newstate(this.s1(6)),
      ev.dialEnd(this.s1(6)),
    ];
    // A synchronous Originate gets no OriginateResponse at all.
    if (!s.sync) {
      if (s.reorder === 'originateresponse-first') setup.unshift(response);
      else if (s.reorder === 'userevent-first') this.deferredResponse = response;
      else setup.push(response);
    }
    this.host.broadcast(setup);
    this.answeredAt = Date.now();
  }

  /** Runs the dialplan on ;1, then the teardown; resolves (never rejects) when the last Hangup is out. */
  execute(): void | Promise<void> {
    let outcome: ReturnType<Call['run']>;
    try {
      outcome = this.run();
    } catch {
      outcome = undefined; // e.g. a throwing outcomeOverride: the channel ends without a result
    }
    if (outcome instanceof Promise) {
      return outcome.then(
        (o) => this.finish(o),
        () => this.finish(undefined),
      );
    }
    this.finish(outcome);
  }

  /** The dialplan of the extension the Originate named. */
  private run(): DialplanOutcome | undefined | Promise<DialplanOutcome | undefined> {
    if (!this.spec.runnable) return undefined;
    if (this.spec.exten === 'ping') return pong(this.spec.vars, this.host.rules.roots, this.host.step);
    if (this.spec.exten !== 'convert') return undefined; // h: no UserEvent, the channel just ends
    const check = checkConvert(this.spec.vars, this.host.rules);
    if (check.kind === 'refused') return check.outcome;
    const info: ConversionInfo = {
      channelId: this.spec.uid1,
      jobId: check.jobId,
      gsmPath: check.gsmPath,
      gsmPath2: check.gsmPath2,
      wavPath: check.wavPath,
    };
    const host = this.host;
    const forced = host.outcomeOverride?.(info);
    if (forced === 'input-missing') return inputMissing(check.jobId);
    if (forced === 'short-ok') {
      const bytes = writeShortWav(info.wavPath);
      host.stats.conversionsStarted++;
      return this.converted(
        info,
        host.step === 'convert-app'
          ? convertAppResult(check.jobId, { detail: 'converted', reason: 'converted', bytes })
          : stepResult(check.jobId, 'SUCCESS', bytes),
      );
    }
    if (host.mode === 'instant' && forced === undefined && host.latencyMs === 0 && !host.hangConversions) {
      // The benchmark path: synchronous, so the whole job goes out in one write.
      host.stats.conversionsStarted++;
      host.emitConversion('conversionStart', info);
      return this.converted(info, this.instantResult(info));
    }
    return this.step(info, forced);
  }

  /** What `instant` mode reports for a conversion, in the chosen step's words (it writes a silent WAV of the inputs' length). */
  private instantResult(info: ConversionInfo): DialplanOutcome {
    const wav = instantWav(legsOf(info), info.wavPath);
    return this.host.step === 'convert-app'
      ? convertAppResult(info.jobId, { detail: 'converted', reason: 'converted', ...wav })
      : stepResult(info.jobId, 'SUCCESS', wav.bytes);
  }

  /**
   * Priorities 22–23: Convert() in process. A forced APPERROR/FAILURE stands for a decode failure
   * (input-corrupt), the only failure the module shares with a failing perl step.
   */
  private async appStep(info: ConversionInfo, forced: 'APPERROR' | 'FAILURE' | undefined): Promise<DialplanOutcome> {
    const host = this.host;
    this.priority = 22;
    host.stats.conversionsStarted++;
    host.emitConversion('conversionStart', info);
    if (host.latencyMs > 0) await host.sleep(host.latencyMs);
    let result: { detail: string; reason: string; bytes: number };
    if (forced !== undefined || host.stopped) result = { detail: 'input-corrupt', reason: 'GSM frame 1 cannot be decoded', bytes: 0 };
    else if (host.hangConversions) {
      // In process there is no bound to reach; a hung read (an NFS mount) holds the channel until the hold ends.
      await host.sleep(host.conversionTimeoutMs);
      result = { detail: 'input-unreadable', reason: 'cannot read the input: Input/output error', bytes: 0 };
    } else if (host.mode === 'instant')
      result = {
        detail: 'converted',
        reason: 'converted',
        ...instantWav(legsOf(info), info.wavPath),
      };
    else {
      result = await convertApp(
        {
          soxPath: host.soxPath,
          gsmPath: info.gsmPath,
          gsmPath2: info.gsmPath2,
          tmpPath: tempPathOf(info.wavPath, info.channelId),
          wavPath: info.wavPath,
          timeoutMs: host.conversionTimeoutMs,
        },
        wavDirOf(info.wavPath),
        host.children,
      );
    }
    return this.converted(info, convertAppResult(info.jobId, result));
  }

  private async step(info: ConversionInfo, forced: 'APPERROR' | 'FAILURE' | undefined): Promise<DialplanOutcome> {
    const host = this.host;
    if (host.mode === 'real' && forced === undefined && !(await exists(info.gsmPath))) return inputMissing(info.jobId);
    if (host.mode === 'real' && forced === undefined && info.gsmPath2 !== '' && !(await exists(info.gsmPath2)))
      return inputMissing(info.jobId);
    if (host.step === 'convert-app') return this.appStep(info, forced);
    if (host.mode === 'real' && forced === undefined && !host.stopped) {
      this.priority = 20;
      // A failed mkdir goes on to the step, which then fails to write (APPERROR), as in the dialplan.
      await ensureDir(wavDirOf(info.wavPath), WAV_DIR_MODE);
    }
    this.priority = info.gsmPath2 === '' ? 12 : PRIORITY.legsStep;
    host.stats.conversionsStarted++;
    host.emitConversion('conversionStart', info);
    if (host.latencyMs > 0) await host.sleep(host.latencyMs);
    let status: SystemStatus;
    if (forced !== undefined) status = forced;
    else if (host.hangConversions) {
      // The step never ends by itself: the step's bound kills sox at the limit (no OK → APPERROR).
      await host.sleep(host.conversionTimeoutMs);
      status = 'APPERROR';
    } else if (host.mode === 'instant') status = 'SUCCESS';
    else if (host.stopped) status = 'APPERROR';
    else {
      const tmpPath = tempPathOf(info.wavPath, info.jobId);
      status = await convert(
        {
          soxPath: host.soxPath,
          gsmPath: info.gsmPath,
          gsmPath2: info.gsmPath2,
          tmpPath,
          wavPath: info.wavPath,
          timeoutMs: host.conversionTimeoutMs,
        },
        host.children,
      );
    }
    const bytes =
      host.mode === 'instant' ? (status === 'SUCCESS' ? instantWav(legsOf(info), info.wavPath).bytes : 0) : await statSize(info.wavPath);
    return this.converted(info, stepResult(info.jobId, status, bytes));
  }

  private converted(info: ConversionInfo, outcome: DialplanOutcome): DialplanOutcome {
    this.host.stats.conversionsFinished++;
    this.host.emitConversion('conversionEnd', this.resultInfo(outcome, this.generation !== this.host.generation, info.jobId));
    return outcome;
  }

  private resultInfo(o: DialplanOutcome | undefined, orphaned: boolean, jobId?: string): JobResultInfo {
    return {
      channelId: this.spec.uid1,
      jobId: o?.jobId ?? jobId ?? this.spec.vars.get('JOB_ID') ?? '',
      status: o?.status,
      detail: o?.detail,
      wavBytes: o?.wavBytes,
      orphaned,
    };
  }

  /** UserEvent (if any), then Hangup() and the recorded teardown of both halves. */
  private finish(outcome: DialplanOutcome | undefined): void {
    const host = this.host;
    const orphaned = this.generation !== host.generation;
    if (!orphaned) {
      host.release(this);
      host.broadcast(this.teardown(outcome));
    }
    host.emitConversion('jobEnd', this.resultInfo(outcome, orphaned));
  }

  private teardown(outcome: DialplanOutcome | undefined): WireEvent[] {
    const hold = this.s2(6, Date.now() - this.answeredAt < ANSWER_HOLD_MS ? HOLD_ANSWER_PRIORITY : HOLD_WAIT_PRIORITY);
    const h1 = ev.hangup(this.s1At(2, 'h'), 16);
    const soft2 = ev.softHangupRequest(hold, 16);
    const h2 = ev.hangup(hold, 16);
    const out: WireEvent[] = [];
    if (outcome !== undefined) {
      out.push(ev.userEvent(this.s1At(outcome.priority), userEventBody(outcome)));
      if (this.deferredResponse !== undefined) out.push(this.deferredResponse);
      out.push(ev.softHangupRequest(this.s1At(outcome.priority + 1), 16));
    } else if (this.deferredResponse !== undefined) out.push(this.deferredResponse);
    out.push(ev.hangupRequest(hold, 16));
    if (this.spec.reorder === 'hangup2-first') out.push(soft2, h2, h1);
    else out.push(h1, soft2, h2);
    return out;
  }

  /** `core restart now` while ;1 is in its step (restart-core-restart-now.txt): ;2 dies, ;1 lingers. */
  restartEvents(): { first: WireEvent[]; then: WireEvent[] } {
    const hold = this.s2(6, HOLD_WAIT_PRIORITY);
    const job = this.s1At(this.priority);
    return {
      first: [ev.softHangupRequest(job, 4), ev.softHangupRequest(hold, 4)],
      then: [ev.softHangupRequest(hold, 16), ev.hangupRequest(job, 0), ev.hangup(hold, 0)],
    };
  }
}

/** The inputs of a conversion: GSM_PATH, and GSM_PATH2 for a two-leg job. */
function legsOf(info: ConversionInfo): string[] {
  return info.gsmPath2 === '' ? [info.gsmPath] : [info.gsmPath, info.gsmPath2];
}
