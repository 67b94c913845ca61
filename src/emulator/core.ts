/**
 * The emulated Asterisk without its TCP listener: users, sessions, live channels, counters, the
 * knobs tests turn, and event fan-out. server.ts puts a socket in front of it.
 */
import type { ChildProcess } from 'node:child_process';
import type { AmiMessage } from '../ami/protocol.js';
import { Call, type CallHost, type CallSpec, type OutcomeOverride } from './call.js';
import { pathRules, type ConversionStep, type DialplanState, type PathRulesOfDialplan } from './dialplan.js';
import type { WireEvent } from './events.js';
import { handleOriginate, type AcceptedOriginate, type OriginateHost } from './originate.js';
import { EXPECTED_ACTIONS, permsOf } from './perms.js';
import { AmiSession, type SessionHost } from './session.js';
import type { ConversionInfo, EmulatorEvents, EmulatorOptions, EmulatorStats, JobResultInfo, ReorderMode } from './types.js';
import { coreShowChannels } from './showchannels.js';

type Emit = <K extends keyof EmulatorEvents>(name: K, ...args: EmulatorEvents[K]) => void;

const RECEIVED_KEPT = 1000;
const UNEXPECTED_KEPT = 200;
const CONCRETE: readonly Exclude<ReorderMode, 'random'>[] = ['none', 'userevent-first', 'originateresponse-first', 'hangup2-first'];

interface User {
  readonly secret: string;
  readonly read: number;
  readonly write: number;
}

export class EmulatorCore implements SessionHost, OriginateHost, CallHost {
  readonly mode: 'real' | 'instant';
  readonly step: ConversionStep;
  readonly rules: PathRulesOfDialplan;
  readonly soxPath: string;
  readonly loginFailDelayMs: number;
  readonly authTimeoutMs: number;
  readonly maxBufferedBytes: number;
  latencyMs: number;
  conversionTimeoutMs: number;
  hangConversions = false;
  outcomeOverride: OutcomeOverride | undefined;
  silent = false;
  refuseLogins = false;
  shuttingDown = false;
  reorder: ReorderMode = 'none';
  readonly dialplan: DialplanState = { convertContextPresent: true, holdContextPresent: true };
  /** Set by close(): no new sox process is started. */
  stopped = false;
  /** Bumped by a restart: calls of an older generation are orphans whose events nobody gets. */
  generation = 0;
  startedAt = Date.now();
  readonly sessions = new Set<AmiSession>();
  readonly calls = new Set<Call>();
  readonly children = new Set<ChildProcess>();
  readonly stats: EmulatorStats = {
    logins: 0,
    loginFailures: 0,
    originates: 0,
    actions: {},
    conversionsStarted: 0,
    conversionsFinished: 0,
    forbiddenBytes: 0,
    unexpectedActions: [],
  };
  private readonly users = new Map<string, User>();
  /** Live channel Uniqueids (both halves), lower-cased. */
  private readonly ids = new Map<string, Call>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly ring: AmiMessage[] = [];
  private ringStart = 0;
  private localSeq = 0;
  private uidSeq = 0;
  private dropAfter = 0;

  constructor(
    opts: EmulatorOptions,
    private readonly emit: Emit,
  ) {
    this.mode = opts.mode ?? 'real';
    this.step = opts.step ?? 'perl';
    this.rules = pathRules(opts.root ?? '/var/local/auditorai');
    this.soxPath = opts.soxPath ?? 'sox';
    this.loginFailDelayMs = opts.loginFailDelayMs ?? 1000;
    this.authTimeoutMs = opts.authTimeoutMs ?? 30_000;
    this.maxBufferedBytes = opts.maxBufferedBytes ?? 64 * 1024 * 1024;
    this.latencyMs = opts.latencyMs ?? 0;
    this.conversionTimeoutMs = opts.conversionTimeoutMs ?? 100_000;
    for (const [name, u] of Object.entries(opts.users ?? { auditorai: 'simulator' })) {
      const user = typeof u === 'string' ? { secret: u } : u;
      this.users.set(name.toLowerCase(), {
        secret: user.secret,
        read: permsOf(user.read ?? ['call', 'user', 'system']),
        write: permsOf(user.write ?? ['originate']),
      });
    }
  }

  /** The last actions received, oldest first. */
  received(): AmiMessage[] {
    return [...this.ring.slice(this.ringStart), ...this.ring.slice(0, this.ringStart)];
  }

  // ---- SessionHost ----
  uptimeSeconds(): number {
    return Math.floor((Date.now() - this.startedAt) / 1000);
  }
  findUser(name: string): User | undefined {
    return this.users.get(name.toLowerCase());
  }
  record(message: AmiMessage, name: string): void {
    const label = name === '' ? '<none>' : name;
    this.stats.actions[label] = (this.stats.actions[label] ?? 0) + 1;
    if (this.ring.length < RECEIVED_KEPT) this.ring.push(message);
    else {
      this.ring[this.ringStart] = message;
      this.ringStart = (this.ringStart + 1) % RECEIVED_KEPT;
    }
    if (!EXPECTED_ACTIONS.has(name.toLowerCase())) this.noteUnexpected(label);
    if (message.overlong === true) this.stats.forbiddenBytes++;
    for (const [, value] of message.pairs) if (value.includes('\r') || value.includes('\0')) this.stats.forbiddenBytes++;
    this.emit('action', message);
  }
  loginResult(username: string, ok: boolean): void {
    if (ok) this.stats.logins++;
    else this.stats.loginFailures++;
    this.emit('login', { username, ok });
  }
  originate(session: AmiSession, message: AmiMessage): void {
    handleOriginate(this, session, message);
  }
  coreShowChannels(session: AmiSession, actionId: string | undefined): void {
    coreShowChannels(session, actionId, this.calls);
  }
  sessionClosed(session: AmiSession): void {
    this.sessions.delete(session);
    this.emit('sessionClose', { username: session.username });
  }

  // ---- OriginateHost ----
  idInUse(id: string): boolean {
    const lower = id.toLowerCase();
    if (this.ids.has(lower)) return true;
    for (const key of this.ids.keys()) if (key.startsWith(lower)) return true;
    return false;
  }
  nextLocalSeq(): string {
    this.localSeq = (this.localSeq + 1) >>> 0;
    return this.localSeq.toString(16).padStart(8, '0');
  }
  nextUniqueid(): string {
    return `${Math.floor(this.startedAt / 1000)}.${++this.uidSeq}`;
  }
  pickReorder(): Exclude<ReorderMode, 'random'> {
    return this.reorder === 'random' ? CONCRETE[Math.floor(Math.random() * CONCRETE.length)]! : this.reorder;
  }
  writePermsOf(session: AmiSession): number {
    return this.findUser(session.username ?? '')?.write ?? 0;
  }
  noteForbidden(): void {
    this.stats.forbiddenBytes++;
  }
  noteUnexpected(what: string): void {
    if (this.stats.unexpectedActions.length < UNEXPECTED_KEPT) this.stats.unexpectedActions.push(what);
  }
  accepted(spec: AcceptedOriginate): boolean {
    this.stats.originates++;
    this.emit('originate', {
      actionId: spec.actionId,
      channelId: spec.channelId,
      context: spec.context,
      exten: spec.exten,
      variables: spec.vars,
    });
    if (this.dropAfter > 0 && --this.dropAfter === 0) return true;
    return false;
  }
  /** Drop every client after flushing what is queued (dropAfterOriginates). */
  dropAll(): void {
    for (const session of this.sessions) session.close('graceful');
  }
  armDrop(n: number): void {
    this.dropAfter = Math.max(0, Math.floor(n));
  }
  newCall(spec: CallSpec): Call {
    const call = new Call(this, spec);
    this.calls.add(call);
    this.ids.set(spec.uid1.toLowerCase(), call);
    this.ids.set(spec.uid2.toLowerCase(), call);
    return call;
  }

  // ---- CallHost ----
  broadcast(events: readonly WireEvent[]): void {
    if (this.silent || this.sessions.size === 0) return;
    // Join runs of one class so each session gets a few appends, not one per event.
    let i = 0;
    while (i < events.length) {
      const cls = events[i]!.cls;
      let text = '';
      for (; i < events.length && events[i]!.cls === cls; i++) text += events[i]!.text;
      for (const session of this.sessions) session.deliver(cls, text);
    }
  }
  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        resolve();
      }, ms);
      this.timers.add(timer);
    });
  }
  release(call: Call): void {
    this.calls.delete(call);
    this.ids.delete(call.spec.uid1.toLowerCase());
    this.ids.delete(call.spec.uid2.toLowerCase());
  }
  emitConversion(name: 'conversionStart' | 'conversionEnd' | 'jobEnd', info: ConversionInfo | JobResultInfo): void {
    if (name === 'conversionStart') this.emit(name, info as ConversionInfo);
    else this.emit(name, info as JobResultInfo);
  }

  /** Asterisk went away: its channels are gone; steps still running finish as orphans. */
  forgetCalls(): void {
    this.generation++;
    this.calls.clear();
    this.ids.clear();
  }

  /** close(): stop every timer (pending steps never finish) and kill running sox processes. */
  stopAll(): void {
    this.stopped = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const child of this.children) child.kill('SIGKILL');
    this.children.clear();
  }
}
