/**
 * A raw AMI client for the emulator tests: a plain net.Socket, our parser, and waiters on what
 * arrived (never sleeps). Also the comparison of our messages with a recording's.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { AmiParser, getHeader, type AmiMessage } from '../../src/ami/protocol.js';
import { blockBytes, readTranscript } from '../helpers/transcripts.js';

export class RawAmi {
  banner = '';
  readonly messages: AmiMessage[] = [];
  readonly raw: Buffer[] = [];
  closed = false;
  private cursor = 0;
  private readonly parser = new AmiParser({ expectBanner: true });
  private waiters: (() => void)[] = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.raw.push(chunk);
      for (const frame of this.parser.push(chunk)) {
        if (frame.kind === 'banner') this.banner = frame.text;
        else this.messages.push(frame.message);
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static connect(port: number): Promise<RawAmi> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('error', reject);
      const client = new RawAmi(socket);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(client);
      });
    });
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  /** Resolves when `test()` is true, re-checked on every chunk and on close. */
  private until<T>(test: () => T | undefined, what: string, timeoutMs: number): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)), timeoutMs);
      const check = (): void => {
        const value = test();
        if (value !== undefined) {
          clearTimeout(timer);
          resolve(value);
        } else this.waiters.push(check);
      };
      check();
    });
  }

  send(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Sends `Key: Value` lines as one action. */
  action(pairs: Record<string, string> | [string, string][]): void {
    const list = Array.isArray(pairs) ? pairs : Object.entries(pairs);
    this.send(list.map(([k, v]) => `${k}: ${v}\r\n`).join('') + '\r\n');
  }

  /** The next unconsumed message matching `pred`; everything before it is consumed too. */
  async next(pred: (m: AmiMessage) => boolean = () => true, timeoutMs = 5000): Promise<AmiMessage> {
    let from = this.cursor; // each check looks only at what arrived since the last one
    const index = await this.until(
      () => {
        for (; from < this.messages.length; from++) if (pred(this.messages[from]!)) return from;
        return this.closed ? -1 : undefined;
      },
      'a message',
      timeoutMs,
    );
    if (index < 0) throw new Error('connection closed before the expected message');
    this.cursor = index + 1;
    return this.messages[index]!;
  }

  /** All unconsumed messages up to and including the first matching `pred`. */
  async upTo(pred: (m: AmiMessage) => boolean, timeoutMs = 5000): Promise<AmiMessage[]> {
    const start = this.cursor;
    await this.next(pred, timeoutMs);
    return this.messages.slice(start, this.cursor);
  }

  /** Exactly `n` more messages. */
  async take(n: number, timeoutMs = 5000): Promise<AmiMessage[]> {
    const start = this.cursor;
    await this.until(() => (this.messages.length - start >= n ? true : undefined), `${n} messages`, timeoutMs);
    this.cursor = start + n;
    return this.messages.slice(start, start + n);
  }

  onClose(timeoutMs = 5000): Promise<true> {
    return this.until(() => (this.closed ? true : undefined), 'the close', timeoutMs);
  }

  async login(username = 'auditorai', secret = 'test-secret', events = 'on'): Promise<AmiMessage> {
    this.action({ Action: 'Login', Username: username, Secret: secret, Events: events, ActionID: 'login-1' });
    return this.next((m) => getHeader(m, 'ActionID') === 'login-1');
  }

  close(): void {
    this.socket.destroy();
  }
}

export const isEnd =
  (id: string) =>
  (m: AmiMessage): boolean =>
    ev(m) === 'Hangup' && getHeader(m, 'Uniqueid') === id;
/** Everything up to the last of the job's two Hangup events (their order varies). */
export async function jobEnd(c: RawAmi, id: string): Promise<AmiMessage[]> {
  const first = await c.upTo((m) => isEnd(id)(m) || isEnd(`${id};2`)(m));
  const other = isEnd(id)(first.at(-1)!) ? `${id};2` : id;
  return [...first, ...(await c.upTo(isEnd(other)))];
}
export const detail = (ms: readonly AmiMessage[]): string | undefined =>
  getHeader(
    ms.find((m) => ev(m) === 'UserEvent')!,
    'Detail',
  );

export const ev = (m: AmiMessage): string => getHeader(m, 'Event') ?? `Response:${getHeader(m, 'Response') ?? '?'}`;
export const names = (ms: readonly AmiMessage[]): string[] => ms.map(ev);

/** Values that must match the recording (ids, names, counters, times and our priorities may not). */
const STABLE = new Set([
  'Event',
  'Response',
  'Message',
  'Privilege',
  'ChannelState',
  'ChannelStateDesc',
  'CallerIDNum',
  'CallerIDName',
  'ConnectedLineNum',
  'ConnectedLineName',
  'Language',
  'AccountCode',
  'Cause',
  'Cause-txt',
  'Reason',
  'DialStatus',
  'DialString',
  'LocalOptimization',
  'UserEvent',
  'Status',
  'EventList',
  'Shutdown',
  'Restart',
  'Ping',
  'Context',
]);

/**
 * Same messages, same header names in the same order, same stable values. `bodyOf` names events
 * whose lines after `UserEvent` are the dialplan's own (ours differs on purpose): only the channel
 * part is compared for them.
 */
export function assertLikeRecording(ours: readonly AmiMessage[], recorded: readonly AmiMessage[], opts: { skipBody?: boolean } = {}): void {
  // OriginateResponse has no fixed place (measured on a real Asterisk: 15–40 % of jobs before Newchannel): compared apart.
  const isOr = (m: AmiMessage): boolean => ev(m) === 'OriginateResponse';
  const [ourOr, theirOr] = [ours.filter(isOr), recorded.filter(isOr)];
  if ((ourOr.length > 0 || theirOr.length > 0) && (ourOr.length < ours.length || theirOr.length < recorded.length)) {
    assert.equal(ourOr.length, theirOr.length, 'OriginateResponse count');
    assertLikeRecording(ourOr, theirOr);
    [ours, recorded] = [ours.filter((m) => !isOr(m)), recorded.filter((m) => !isOr(m))];
  }
  assert.deepEqual(names(ours), names(recorded), 'message sequence');
  ours.forEach((m, i) => {
    const r = recorded[i]!;
    const cut = (x: AmiMessage): (readonly [string, string])[] => {
      const at = x.pairs.findIndex(([k]) => k === 'UserEvent');
      return opts.skipBody === true && at >= 0 ? x.pairs.slice(0, at + 1) : [...x.pairs];
    };
    const [a, b] = [cut(m), cut(r)];
    assert.deepEqual(
      a.map(([k]) => k),
      b.map(([k]) => k),
      `header names of message ${i} (${ev(m)})`,
    );
    a.forEach(([k, v], j) => {
      if (STABLE.has(k.replace(/^(Dest|LocalOne|LocalTwo)/, ''))) assert.equal(v, b[j]![1], `${ev(m)} #${i}: ${k}`);
    });
  });
}

/** One C->S block of a recording and the messages Asterisk answered before the next one. */
export interface ReplayStep {
  readonly sent: Buffer;
  readonly expected: AmiMessage[];
}

/**
 * The C->S blocks of one connection of a recording, each with the S->C messages that followed it
 * (the banner left out). `rewrite` adapts the sent text to our dialplan (paths, extension names).
 */
export function replaySteps(name: string, conn: number, rewrite: (text: string) => string = (t) => t): ReplayStep[] {
  const blocks = readTranscript(name).connections[conn]?.blocks ?? [];
  const steps: { sent: Buffer; expected: AmiMessage[] }[] = [];
  for (const block of blocks) {
    if (block.dir === 'C->S') steps.push({ sent: blockBytes({ ...block, text: rewrite(block.text) }), expected: [] });
    else if (block.dir === 'S->C' && steps.length > 0 && block.text.trim() !== '') {
      const parser = new AmiParser({ expectBanner: false });
      for (const f of parser.push(blockBytes(block))) if (f.kind === 'message') steps.at(-1)!.expected.push(f.message);
    }
  }
  return steps;
}

/** Sends each step and takes as many messages as the recording shows; returns [ours, recorded] per step. */
export async function replay(client: RawAmi, steps: readonly ReplayStep[], timeoutMs = 5000): Promise<[AmiMessage[], AmiMessage[]][]> {
  const out: [AmiMessage[], AmiMessage[]][] = [];
  for (const step of steps) {
    client.send(step.sent);
    out.push([await client.take(step.expected.length, timeoutMs), step.expected]);
  }
  return out;
}
