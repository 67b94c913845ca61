/**
 * Action: Originate, checked in action_originate()'s order with the recorded answers
 * (fail-unknown-extension.txt, dup-channelid.txt, hdr-crlf-injection.txt), then handed to a Call.
 */
import { getHeader, getHeaders, type AmiMessage } from '../ami/protocol.js';
import { hasOnlyPathChars } from '../characters.js';
import type { Call, CallSpec } from './call.js';
import { extensionExists, findLabel, HOLD_CONTEXT, parseVariableHeader, type DialplanState } from './dialplan.js';
import * as ev from './events.js';
import type { WireEvent } from './events.js';
import { originateForbidden, PERM } from './perms.js';
import { actionIdOf, type AmiSession } from './session.js';
import type { ReorderMode } from './types.js';

/** AST_MAX_PUBLIC_UNIQUEID. */
const MAX_UNIQUEID = 149;
const TRUE = new Set(['yes', 'true', 'y', 't', '1', 'on']);

/** What the Originate handler needs from the emulator. */
/** An Originate the emulator accepted, as its host counts and reports it. */
export interface AcceptedOriginate {
  readonly actionId: string | undefined;
  readonly channelId: string;
  readonly context: string;
  readonly exten: string;
  readonly vars: ReadonlyMap<string, string>;
}

export interface OriginateHost {
  readonly dialplan: DialplanState;
  /** Is this id (or a longer id it is a case-insensitive prefix of) a live channel? */
  idInUse(id: string): boolean;
  /** Next Local channel sequence, as Asterisk prints it (%08x). */
  nextLocalSeq(): string;
  /** A generated Uniqueid ("<epoch>.<n>") for an Originate without ChannelId. */
  nextUniqueid(): string;
  pickReorder(): Exclude<ReorderMode, 'random'>;
  writePermsOf(session: AmiSession): number;
  noteForbidden(): void;
  noteUnexpected(what: string): void;
  broadcast(events: readonly WireEvent[]): void;
  /** Counts the accepted Originate; true when dropAfterOriginates says: drop everyone now. */
  accepted(spec: AcceptedOriginate): boolean;
  dropAll(): void;
  newCall(spec: CallSpec): Call;
}

/** sscanf("%30d"): leading blanks, a sign, digits; anything after is ignored. */
function scanInt(s: string): number | undefined {
  const m = /^\s*([+-]?\d+)/.exec(s);
  return m === null ? undefined : Number.parseInt(m[1]!, 10);
}

/** The parts of an Originate that passed action_originate()'s up-front checks. */
interface Checked {
  readonly id: string | undefined;
  readonly channel: string;
  readonly channelId: string;
  readonly otherId: string;
  readonly context: string;
  readonly exten: string;
  /** 0 when the action had no Priority (the existence check is skipped then, as in Asterisk). */
  readonly priority: number;
  readonly app: string;
  readonly sync: boolean;
}

/** The synchronous refusals, in Asterisk's order; undefined once one was sent. */
function check(host: OriginateHost, session: AmiSession, m: AmiMessage): Checked | undefined {
  const id = actionIdOf(m);
  const h = (name: string): string => getHeader(m, name) ?? '';
  const [channelId, otherId, channel, context, exten] = [h('ChannelId'), h('OtherChannelId'), h('Channel'), h('Context'), h('Exten')];
  const refuse = (message: string): undefined => void session.error(id, message);
  // The format string ends in "\n": the line goes out as "…149\n\r\n" (a bare LF, recorded).
  if (channelId.length > MAX_UNIQUEID || otherId.length > MAX_UNIQUEID)
    return refuse(`Uniqueid length exceeds maximum of ${MAX_UNIQUEID}\n`);
  if (channel === '') return refuse('Channel not specified');
  const priorityText = h('Priority');
  const numeric = scanInt(priorityText);
  const priority = priorityText === '' ? 0 : (numeric ?? findLabel(host.dialplan, context, exten, priorityText));
  if (priorityText !== '' && numeric === undefined && priority < 1) return refuse('Invalid priority');
  if (h('Timeout') !== '' && scanInt(h('Timeout')) === undefined) return refuse('Invalid timeout');
  if (!channel.includes('/')) return refuse('Invalid channel');
  const app = h('Application');
  if (app !== '') {
    host.noteUnexpected(`Originate Application: ${app}`);
    if ((host.writePermsOf(session) & PERM.system) === 0 && originateForbidden(app, h('Data'))) {
      return refuse('Originate Access Forbidden: app or data blacklisted');
    }
  }
  if (priority !== 0 && !extensionExists(host.dialplan, context, exten, priority)) return refuse('Extension does not exist.');
  const sync = !TRUE.has(h('Async').toLowerCase());
  if (sync) host.noteUnexpected('Originate without Async: true (blocks the AMI session)');
  return { id, channel, channelId, otherId, context, exten, priority, app, sync };
}

/**
 * Channel variables from every Variable: header; counts a path that holds anything outside the
 * job path characters (a shell or dialplan metacharacter).
 */
function variablesOf(host: OriginateHost, m: AmiMessage): Map<string, string> {
  const vars = new Map<string, string>();
  for (const value of getHeaders(m, 'Variable')) parseVariableHeader(value, vars);
  for (const name of ['GSM_PATH', 'GSM_PATH2', 'WAV_PATH']) {
    const value = vars.get(name);
    if (value !== undefined && !hasOnlyPathChars(value)) host.noteForbidden();
  }
  return vars;
}

export function handleOriginate(host: OriginateHost, session: AmiSession, m: AmiMessage): void {
  const c = check(host, session, m);
  if (c === undefined) return;
  const vars = variablesOf(host, m);
  if (c.app !== '' || c.priority === 0) host.noteUnexpected('Originate the emulator only half-supports');
  const uid1 = c.channelId !== '' ? c.channelId : host.nextUniqueid();
  const queued = (): void => session.send(ev.withMessage('Success', c.id, 'Originate successfully queued'));
  /** Queued, then only failure events (no call was made). */
  const failLater = (events: (failure: WireEvent) => WireEvent[]): void => {
    queued();
    if (host.accepted({ actionId: c.id, channelId: uid1, context: c.context, exten: c.exten, vars })) return host.dropAll();
    host.broadcast(
      events(ev.originateResponse({ actionId: c.id, ok: false, channel: c.channel, context: c.context, exten: c.exten, uniqueid: uid1 })),
    );
  };
  const slash = c.channel.indexOf('/');
  const tech = c.channel.slice(0, slash);
  const target = c.channel.slice(slash + 1).split('/')[0]!; // Local/exten@context[/options]
  const at = target.indexOf('@');
  const [localExten, localContext] = at < 0 ? [target, 'default'] : [target.slice(0, at), target.slice(at + 1)];
  const inUse = (c.channelId !== '' && host.idInUse(c.channelId)) || (c.otherId !== '' && host.idInUse(c.otherId));
  // Unknown technology, or a ChannelId still in use (dup-channelid.txt): a bare failure.
  if (tech.toLowerCase() !== 'local' || inUse) return failLater((failure) => [failure]);
  const spec: CallSpec = {
    actionId: c.id,
    uid1,
    uid2: c.otherId !== '' ? c.otherId : c.channelId !== '' ? `${c.channelId};2` : host.nextUniqueid(),
    baseName: `${tech}/${localExten}@${localContext}-${host.nextLocalSeq()}`,
    localContext,
    localExten,
    context: c.context,
    exten: c.exten,
    vars,
    reorder: c.sync ? 'none' : host.pickReorder(),
    sync: c.sync,
    runnable: c.app === '' && c.priority !== 0,
  };
  if (localContext !== HOLD_CONTEXT) host.noteUnexpected(`Originate Channel: ${c.channel} (the job would run on both halves)`);
  if (!extensionExists(host.dialplan, localContext, localExten, 1)) return failLater((failure) => localTargetMissing(spec, failure));
  const call = host.newCall(spec);
  if (!c.sync) queued();
  if (host.accepted({ actionId: c.id, channelId: uid1, context: c.context, exten: c.exten, vars })) host.dropAll();
  call.setup();
  if (c.sync) queued(); // only once ;1 is answered, and no OriginateResponse (seed-originate-sync.txt)
  void call.execute();
}

/** Local channel into a context that does not exist (fail-unknown-extension.txt, case 3). */
function localTargetMissing(spec: CallSpec, failure: WireEvent): WireEvent[] {
  const snap = (half: 1 | 2, state: 0 | 4) => ({
    name: `${spec.baseName};${half}`,
    state,
    context: spec.localContext,
    exten: spec.localExten,
    priority: 1,
    uniqueid: half === 1 ? spec.uid1 : spec.uid2,
    linkedid: spec.uid1,
  });
  return [ev.newchannel(snap(1, 0)), ev.newchannel(snap(2, 4)), ev.hangup(snap(2, 4), 0), failure, ev.hangup(snap(1, 0), 0)];
}
