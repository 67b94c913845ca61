/**
 * The limit driver: the same Originates the bridge sends, on ONE AMI socket, `concurrency` in
 * flight, no RabbitMQ, no validation, no result messages. A job is done at the Hangup of its
 * ChannelId (the ;1 half, which comes after the UserEvent). What Asterisk (here: the emulator)
 * can do through Originate at that concurrency: the ceiling for the bridge.
 */
import { randomUUID } from 'node:crypto';
import { action, headerIn, login, MiniAmi, originatePairs } from './ami-mini.js';
import { measure, type MeasureSpec, type RunResult } from './measure.js';

export interface LimitSpec extends Omit<MeasureSpec, 'design'> {
  readonly amiPort: number;
  /** A real Asterisk's address and user (default: the emulator's on loopback). */
  readonly amiHost?: string;
  readonly amiUser?: string;
  readonly amiSecret?: string;
  readonly gsm: string;
  readonly wavFor: (seq: number) => string;
}

/** How many failed conversions per row the driver describes on stderr (the rest are only counted). */
const FAILURES_SHOWN = 5;

export async function runLimit(spec: LimitSpec): Promise<RunResult> {
  const ami = await MiniAmi.connect(spec.amiPort, () => undefined, spec.amiHost);
  await login(ami, spec.amiUser, spec.amiSecret);
  const byUid = new Map<string, number>();
  /** Failed conversions by Uniqueid: the UserEvent's Detail, printed for the first few of a row. */
  const failedUids = new Map<string, string>();
  let failuresShown = 0;
  const result = await measure({ ...spec, design: 'limit' }, (complete) => {
    ami.setHandler((text, start, end) => {
      if (text.startsWith('Event: Hangup\r\n', start)) {
        const uid = headerIn(text, start, end, 'Uniqueid: ');
        const seq = uid === undefined ? undefined : byUid.get(uid);
        if (seq === undefined || uid === undefined) return;
        byUid.delete(uid);
        const detail = failedUids.get(uid);
        failedUids.delete(uid);
        if (detail !== undefined && failuresShown++ < FAILURES_SHOWN) process.stderr.write(`limit: conversion failed: ${detail}\n`);
        complete(seq, detail === undefined);
      } else if (text.startsWith('Event: UserEvent\r\n', start)) {
        if (headerIn(text, start, end, 'Status: ') !== 'OK') {
          const uid = headerIn(text, start, end, 'Uniqueid: ');
          if (uid !== undefined) failedUids.set(uid, headerIn(text, start, end, 'Detail: ') ?? '(no Detail)');
        }
      } else if (text.startsWith('Response: Error', start)) {
        process.stderr.write(`limit: ${text.slice(start, end)}\n`);
      }
    });
    return (seq) => {
      const uid = randomUUID();
      byUid.set(uid, seq);
      ami.write(action([...originatePairs(uid, spec.gsm, spec.wavFor(seq)), ['ActionID', randomUUID()]]));
    };
  });
  ami.write(action([['Action', 'Logoff']]));
  ami.socket.end();
  return result;
}
