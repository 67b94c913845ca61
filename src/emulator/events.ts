/**
 * Builders for the exact message shapes Asterisk 22.10.1 sent in test/fixtures/ami-transcripts
 * (header names, order and constant values). Plain string templates: the emulator runs thousands
 * of jobs a second in benchmarks, so no serializer, no arrays, no validation here — values come
 * from our own state or from already-parsed action lines (which cannot hold a LF).
 */

/** Event classes a session may read (manager.conf `read`). */
export type EventClass = 'system' | 'call' | 'user';

/** One event ready for the wire, with the class that decides who receives it. */
export interface WireEvent {
  readonly cls: EventClass;
  readonly text: string;
}

/** A channel snapshot, as every channel event prints it. */
export interface ChanSnap {
  readonly name: string;
  readonly state: 0 | 4 | 6;
  readonly context: string;
  readonly exten: string;
  readonly priority: number;
  readonly uniqueid: string;
  readonly linkedid: string;
}

const STATE_DESC = { 0: 'Down', 4: 'Ring', 6: 'Up' } as const;

/** The 14 channel lines, optionally prefixed (Dest, LocalOne, LocalTwo) as the recordings show. */
export function chanBlock(prefix: string, chan: ChanSnap): string {
  return (
    `${prefix}Channel: ${chan.name}\r\n${prefix}ChannelState: ${chan.state}\r\n${prefix}ChannelStateDesc: ${STATE_DESC[chan.state]}\r\n` +
    `${prefix}CallerIDNum: <unknown>\r\n${prefix}CallerIDName: <unknown>\r\n${prefix}ConnectedLineNum: <unknown>\r\n` +
    `${prefix}ConnectedLineName: <unknown>\r\n${prefix}Language: en\r\n${prefix}AccountCode: \r\n${prefix}Context: ${chan.context}\r\n` +
    `${prefix}Exten: ${chan.exten}\r\n${prefix}Priority: ${chan.priority}\r\n${prefix}Uniqueid: ${chan.uniqueid}\r\n${prefix}Linkedid: ${chan.linkedid}\r\n`
  );
}

const call = (text: string): WireEvent => ({ cls: 'call', text });

export const newchannel = (chan: ChanSnap): WireEvent => call(`Event: Newchannel\r\nPrivilege: call,all\r\n${chanBlock('', chan)}\r\n`);

export const newstate = (chan: ChanSnap): WireEvent => call(`Event: Newstate\r\nPrivilege: call,all\r\n${chanBlock('', chan)}\r\n`);

/** LocalBridge: both halves, then the Local channel's own dial target. */
export function localBridge(one: ChanSnap, two: ChanSnap, context: string, exten: string): WireEvent {
  return call(
    `Event: LocalBridge\r\nPrivilege: call,all\r\n${chanBlock('LocalOne', one)}${chanBlock('LocalTwo', two)}` +
      `Context: ${context}\r\nExten: ${exten}\r\nLocalOptimization: Yes\r\n\r\n`,
  );
}

export const dialBegin = (dest: ChanSnap, dialString: string): WireEvent =>
  call(`Event: DialBegin\r\nPrivilege: call,all\r\n${chanBlock('Dest', dest)}DialString: ${dialString}\r\n\r\n`);

export const dialEnd = (dest: ChanSnap): WireEvent =>
  call(`Event: DialEnd\r\nPrivilege: call,all\r\n${chanBlock('Dest', dest)}DialStatus: ANSWER\r\n\r\n`);

/** OriginateResponse; the ActionID line is only there when the Originate had one. */
export function originateResponse(o: {
  actionId: string | undefined;
  ok: boolean;
  channel: string;
  context: string;
  exten: string;
  uniqueid: string;
}): WireEvent {
  const id = o.actionId === undefined ? '' : `ActionID: ${o.actionId}\r\n`;
  return call(
    `Event: OriginateResponse\r\nPrivilege: call,all\r\n${id}Response: ${o.ok ? 'Success' : 'Failure'}\r\n` +
      `Channel: ${o.channel}\r\nContext: ${o.context}\r\nExten: ${o.exten}\r\nReason: ${o.ok ? 4 : 0}\r\n` +
      `Uniqueid: ${o.uniqueid}\r\nCallerIDNum: <unknown>\r\nCallerIDName: <unknown>\r\n\r\n`,
  );
}

/** UserEvent: `body` is the application's own lines (`UserEvent: AudioConvert\r\nJobId: …\r\n…`). */
export const userEvent = (chan: ChanSnap, body: string): WireEvent => ({
  cls: 'user',
  text: `Event: UserEvent\r\nPrivilege: user,all\r\n${chanBlock('', chan)}${body}\r\n`,
});

export const softHangupRequest = (chan: ChanSnap, cause: number): WireEvent =>
  call(`Event: SoftHangupRequest\r\nPrivilege: call,all\r\n${chanBlock('', chan)}Cause: ${cause}\r\n\r\n`);

export const hangupRequest = (chan: ChanSnap, cause: number): WireEvent =>
  call(`Event: HangupRequest\r\nPrivilege: call,all\r\n${chanBlock('', chan)}Cause: ${cause}\r\n\r\n`);

const CAUSE_TXT: Record<number, string> = { 0: 'Unknown', 16: 'Normal Clearing' };

export const hangup = (chan: ChanSnap, cause: number): WireEvent =>
  call(
    `Event: Hangup\r\nPrivilege: call,all\r\n${chanBlock('', chan)}Cause: ${cause}\r\nCause-txt: ${CAUSE_TXT[cause] ?? 'Unknown'}\r\n\r\n`,
  );

/** Sent after a successful Login when the session reads `system` events. */
export const fullyBooted = (uptimeSeconds: number): WireEvent => ({
  cls: 'system',
  text: `Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: ${uptimeSeconds}\r\nLastReload: ${uptimeSeconds}\r\nStatus: Fully Booted\r\n\r\n`,
});

/** `core restart now` (restart-core-restart-now.txt). */
export const shutdown = (): WireEvent => ({
  cls: 'system',
  text: 'Event: Shutdown\r\nPrivilege: system,all\r\nShutdown: Uncleanly\r\nRestart: True\r\n\r\n',
});

/** A response: Response, ActionID (only when the action had one), then the rest, as Asterisk orders them. */
export function response(kind: 'Success' | 'Error' | 'Goodbye', actionId: string | undefined, rest: string): string {
  const id = actionId === undefined ? '' : `ActionID: ${actionId}\r\n`;
  return `Response: ${kind}\r\n${id}${rest}\r\n`;
}

/** `Response: <kind>` with a Message line. */
export const withMessage = (kind: 'Success' | 'Error' | 'Goodbye', actionId: string | undefined, message: string): string =>
  response(kind, actionId, `Message: ${message}\r\n`);

/** Seconds.microseconds, as Ping's Timestamp prints it. */
export function timestamp(nowMs: number = Date.now()): string {
  const micros = Math.floor((nowMs % 1000) * 1000 + Math.floor((performance.now() % 1) * 1000));
  return `${Math.floor(nowMs / 1000)}.${String(micros % 1_000_000).padStart(6, '0')}`;
}
