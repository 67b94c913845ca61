/**
 * One AMI connection, as manager.c runs it: banner, one action at a time, login (plain or MD5
 * challenge), permissions, the recorded error texts, and buffered output — everything queued in
 * one tick goes out in one socket.write.
 */
import { createHash, randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import { AmiParser, getHeader, type AmiMessage } from '../ami/protocol.js';
import * as ev from './events.js';
import type { EventClass } from './events.js';
import { ACTIONS, eventMaskOf, PERM } from './perms.js';

/** What a session needs from the emulator. */
export interface SessionHost {
  readonly silent: boolean;
  readonly refuseLogins: boolean;
  readonly shuttingDown: boolean;
  readonly loginFailDelayMs: number;
  readonly authTimeoutMs: number;
  readonly maxBufferedBytes: number;
  uptimeSeconds(): number;
  findUser(name: string): { secret: string; read: number; write: number } | undefined;
  /** Counts and remembers a received message; `name` is the canonical action name. */
  record(message: AmiMessage, name: string): void;
  loginResult(username: string, ok: boolean): void;
  originate(session: AmiSession, message: AmiMessage): void;
  coreShowChannels(session: AmiSession, actionId: string | undefined): void;
  sessionClosed(session: AmiSession): void;
}

/** Asterisk's line buffer is 1024 bytes with the CRLF: 1022 of text. */
export const SERVER_MAX_LINE = 1022;
/** How long a gracefully closed socket may stay half-open. */
const GRACEFUL_CLOSE_MS = 2000;
/** Output queued in the socket beyond which we stop reading the client's actions. */
const PAUSE_READING_AT = 4 * 1024 * 1024;
/** AST_MAX_MANHEADERS. */
const MAX_HEADERS = 128;

const CLASS_BIT: Record<EventClass, number> = { system: PERM.system, call: PERM.call, user: PERM.user };

export class AmiSession {
  state: 'unauth' | 'auth' | 'closing' | 'closed' = 'unauth';
  username: string | undefined;
  /** read perms ∧ the Events: mask: the event classes this session receives. */
  private eventBits = 0;
  private writePerms = 0;
  private challenge = '';
  private readonly parser = new AmiParser({ expectBanner: false, maxLineBytes: SERVER_MAX_LINE, overlong: 'mark' });
  private out: string[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  private authTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Socket,
    private readonly host: SessionHost,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => undefined); // 'close' follows
    socket.on('close', () => this.onClose());
    this.authTimer = setTimeout(() => this.close('abrupt'), host.authTimeoutMs);
    this.authTimer.unref();
    this.send('Asterisk Call Manager/11.0.0\r\n');
  }

  /** Queues bytes; they go out, joined, at the end of this tick. */
  send(text: string): void {
    if (this.state === 'closed') return;
    this.out.push(text);
    this.outBytes += text.length;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /** Delivers an event if this session is logged in and reads its class. */
  deliver(cls: EventClass, text: string): void {
    if (this.state === 'auth' && (this.eventBits & CLASS_BIT[cls]) !== 0) this.send(text);
  }

  flush(): void {
    this.flushScheduled = false;
    if (this.out.length === 0 || this.state === 'closed') return;
    if (this.socket.writableLength + this.outBytes > this.host.maxBufferedBytes) {
      // A reader this slow would hit Asterisk's write timeout and be disconnected.
      this.close('abrupt');
      return;
    }
    const data = this.out.length === 1 ? this.out[0]! : this.out.join('');
    this.out = [];
    this.outBytes = 0;
    this.socket.write(data);
    // Backpressure: stop reading actions until the client catches up (memory stays bounded).
    if (this.socket.writableLength > PAUSE_READING_AT && !this.socket.isPaused()) {
      this.socket.pause();
      this.socket.once('drain', () => this.socket.resume());
    }
  }

  /** 'graceful': flush what is queued, then FIN. 'abrupt': drop it all now (kill -9). */
  close(how: 'graceful' | 'abrupt'): void {
    if (this.state === 'closed') return;
    clearTimeout(this.authTimer);
    if (how === 'graceful') {
      this.flush();
      this.state = 'closing';
      this.socket.end();
      // A peer that never closes its side must not keep the socket (or close()) waiting.
      setTimeout(() => this.socket.destroy(), GRACEFUL_CLOSE_MS).unref();
    } else {
      this.state = 'closed';
      this.socket.destroy();
    }
  }

  private onClose(): void {
    clearTimeout(this.authTimer);
    this.state = 'closed';
    this.out = [];
    this.host.sessionClosed(this);
  }

  private onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.parser.push(chunk);
    } catch {
      this.close('abrupt'); // more lines in one message than we keep: a hostile peer
      return;
    }
    for (const frame of frames) {
      if (frame.kind !== 'message' || this.state === 'closing' || this.state === 'closed') continue;
      if (this.host.silent) continue; // a hung Asterisk reads and answers nothing
      this.handle(frame.message);
    }
  }

  private handle(m: AmiMessage): void {
    const action = firstNonEmpty(m, 'Action');
    const key = action?.toLowerCase() ?? '';
    this.host.record(m, ACTIONS.get(key)?.name ?? action ?? '');
    const id = actionIdOf(m);
    if (m.overlong === true) return this.error(id, 'Failed to parse message: line too long');
    if (m.pairs.length > MAX_HEADERS) return this.error(id, 'Too many lines in message or allocation failure');
    // A message without Action gets no answer from 22.10.1 (hdr-crlf-injection.txt, inj-crlfcrlf).
    if (action === undefined) return;
    if (this.host.shuttingDown) return this.error(id, 'Asterisk is shutting down');
    if (this.state !== 'auth' && key !== 'login' && key !== 'logoff' && key !== 'challenge') return this.error(id, 'Permission denied');
    const known = ACTIONS.get(key);
    if (known === undefined) {
      return this.error(id, `Invalid/unknown command: ${action}. Use Action: ListCommands to show available commands.`);
    }
    if (known.authority !== 0 && (this.writePerms & known.authority) === 0) return this.error(id, 'Permission denied');
    this.dispatch(key, m, id);
  }

  private dispatch(key: string, m: AmiMessage, id: string | undefined): void {
    switch (key) {
      case 'login':
        return this.login(m, id);
      case 'challenge':
        return this.onChallenge(m, id);
      case 'logoff':
        this.send(ev.withMessage('Goodbye', id, 'Thanks for all the fish.'));
        return this.close('graceful');
      case 'ping':
        return this.send(ev.response('Success', id, `Ping: Pong\r\nTimestamp: ${ev.timestamp()}\r\n`));
      case 'events':
        return this.onEvents(m, id);
      case 'originate':
        return this.host.originate(this, m);
      case 'coreshowchannels':
        return this.host.coreShowChannels(this, id);
      default:
        return this.error(id, 'Not implemented by the audio-convert AMI emulator');
    }
  }

  error(id: string | undefined, message: string): void {
    this.send(ev.withMessage('Error', id, message));
  }

  private onChallenge(m: AmiMessage, id: string | undefined): void {
    if ((getHeader(m, 'AuthType') ?? '').toLowerCase() !== 'md5') return this.error(id, 'Must specify AuthType');
    // manager.c keeps one challenge per session: "%ld" of ast_random() in a 10-byte buffer.
    if (this.challenge === '') this.challenge = String(randomInt(100_000_000, 1_000_000_000));
    this.send(ev.response('Success', id, `Challenge: ${this.challenge}\r\n`));
  }

  private login(m: AmiMessage, id: string | undefined): void {
    if (this.state === 'auth') return this.send(ev.withMessage('Success', id, 'Already authenticated'));
    const username = getHeader(m, 'Username') ?? '';
    const user = this.host.findUser(username);
    let ok = user !== undefined && !this.host.refuseLogins;
    if (ok && user !== undefined) {
      if ((getHeader(m, 'AuthType') ?? '').toLowerCase() === 'md5') {
        const expected = createHash('md5')
          .update(this.challenge + user.secret)
          .digest('hex');
        ok = this.challenge !== '' && getHeader(m, 'Key') === expected;
      } else {
        ok = getHeader(m, 'Secret') === user.secret;
      }
    }
    this.host.loginResult(username, ok);
    if (!ok || user === undefined) {
      // Asterisk sleeps 1 s, answers, and ends the session (login-bad-password.txt).
      this.state = 'closing';
      setTimeout(() => {
        this.error(id, 'Authentication failed');
        this.close('graceful');
      }, this.host.loginFailDelayMs).unref();
      return;
    }
    clearTimeout(this.authTimer);
    this.state = 'auth';
    this.username = username;
    this.writePerms = user.write;
    this.eventBits = user.read & (eventMaskOf(getHeader(m, 'Events')) ?? -1);
    this.send(ev.withMessage('Success', id, 'Authentication accepted'));
    if ((this.eventBits & PERM.system) !== 0) this.send(ev.fullyBooted(this.host.uptimeSeconds()).text);
  }

  /** Action: Events — changes which events this session gets (EventMask: on/off/classes). */
  private onEvents(m: AmiMessage, id: string | undefined): void {
    const mask = eventMaskOf(getHeader(m, 'EventMask'));
    if (mask === undefined) return this.error(id, 'Invalid event mask');
    this.eventBits = (this.host.findUser(this.username ?? '')?.read ?? 0) & mask;
    this.send(ev.response('Success', id, `Events: ${mask === 0 ? 'Off' : 'On'}\r\n`));
  }
}

/** astman_get_header(m, "ActionID"): the first one; an empty one is as good as none. */
export function actionIdOf(m: AmiMessage): string | undefined {
  const id = getHeader(m, 'ActionID');
  return id === undefined || id === '' ? undefined : id;
}

/** GET_HEADER_SKIP_EMPTY: the first non-empty value of `name`. */
function firstNonEmpty(m: AmiMessage, name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const [k, v] of m.pairs) if (v !== '' && k.toLowerCase() === lower) return v;
  return undefined;
}
