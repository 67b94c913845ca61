/**
 * Correlation logic fed with what a real Asterisk sent (ami-transcripts/), in the recorded order
 * and in every reordering the recordings README says happens under load.
 */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import { AmiActionTimeoutError, AmiConnectionError, AmiSerializeError } from '../../src/ami/errors.js';
import { Originator, originateAction, type OriginateOutcome } from '../../src/worker/originate.js';
import { getHeader, type AmiMessage, type AmiPair } from '../../src/ami/protocol.js';
import { serialize } from '../../src/ami/protocol.js';
import { clientActions, serverMessages } from '../helpers/transcripts.js';

const TARGET = { channel: 'Local/s@audio-convert-hold', context: 'audio-convert', exten: 'convert' };

/** A stand-in for AmiClient that records actions and lets the test deliver responses and events. */
class ScriptedClient extends EventEmitter {
  readonly sent: { pairs: AmiPair[]; actionId: string; resolve: (m: AmiMessage) => void; reject: (e: Error) => void }[] = [];
  action(pairs: AmiPair[], options?: { actionId?: string }): Promise<AmiMessage> {
    return new Promise((resolve, reject) => {
      this.sent.push({ pairs, actionId: options?.actionId ?? 'none', resolve, reject });
    });
  }
}

/** The recorded Originate of a transcript: its ActionID and ChannelId. */
function recordedOriginate(name: string, index = 0): { actionId: string; channelId: string } {
  const originates = clientActions(name)
    .flatMap((a) => a.messages)
    .filter((m) => getHeader(m, 'Action') === 'Originate');
  const action = originates[index];
  assert.ok(action, `${name} has an Originate #${index}`);
  return { actionId: getHeader(action, 'ActionID') ?? '', channelId: getHeader(action, 'ChannelId') ?? '' };
}

/** Replaces the recorded ActionID by the one the Originator chose (everything else byte-identical). */
function withActionId(message: AmiMessage, from: string, to: string): AmiMessage {
  return { pairs: message.pairs.map(([k, v]) => [k, k === 'ActionID' && v === from ? to : v] as const) };
}

/**
 * Runs one attempt against the recorded messages of `name` (optionally reordered): the Response is
 * delivered as the action's answer, every event is emitted. Resolves with the outcome.
 */
async function replay(name: string, reorder: (events: AmiMessage[]) => AmiMessage[] = (e) => e, index = 0): Promise<OriginateOutcome> {
  const { actionId: recordedId, channelId } = recordedOriginate(name, index);
  const client = new ScriptedClient();
  const originator = new Originator(client, TARGET);
  const outcome = originator.run({ gsmPath: '/g.gsm', wavPath: '/w.wav', timeoutMs: 60_000, attemptId: channelId });
  const sent = client.sent[0];
  assert.ok(sent, 'an Originate was sent');
  const messages = serverMessages(name).map((m) => withActionId(m, recordedId, sent.actionId));
  const response = messages.find(
    (m) => getHeader(m, 'Response') !== undefined && getHeader(m, 'Event') === undefined && getHeader(m, 'ActionID') === sent.actionId,
  );
  assert.ok(response, `${name}: recorded Response to the Originate`);
  const events = reorder(messages.filter((m) => getHeader(m, 'Event') !== undefined));
  sent.resolve(response);
  for (const event of events) client.emit('event', event);
  const result = await outcome;
  assert.equal(originator.inFlight, 0, 'nothing left in the maps');
  originator.dispose();
  return result;
}

describe('originateAction', () => {
  it('builds the documented Originate, one Variable header each, serialisable', () => {
    const pairs = originateAction(TARGET, 'abc', '/var/local/auditorai/gsm/a.gsm', '/var/local/auditorai/wav/a.wav');
    const wire = serialize([...pairs, ['ActionID', 'x']]);
    assert.match(
      wire,
      /^Action: Originate\r\nChannel: Local\/s@audio-convert-hold\r\nContext: audio-convert\r\nExten: convert\r\nPriority: 1\r\nChannelId: abc\r\n/,
    );
    assert.match(
      wire,
      /Variable: JOB_ID=abc\r\nVariable: GSM_PATH=\/var\/local\/auditorai\/gsm\/a.gsm\r\nVariable: WAV_PATH=\/var\/local\/auditorai\/wav\/a.wav\r\nAsync: true\r\n/,
    );
  });
});

describe('correlation against the recordings', () => {
  it('final-ok: converted with the recorded WavBytes', async () => {
    assert.deepEqual(await replay('final-ok'), { kind: 'converted', wavBytes: 48044, detail: 'SUCCESS' });
  });

  it('final-input-missing: conversion failed (that dialplan said APPERROR)', async () => {
    const outcome = await replay('final-input-missing');
    assert.equal(outcome.kind, 'conversion-failed');
    assert.equal(outcome.kind === 'conversion-failed' && outcome.detail, 'APPERROR');
  });

  it('final-bad-path: conversion failed, invalid path', async () => {
    const outcome = await replay('final-bad-path');
    assert.deepEqual(outcome, { kind: 'conversion-failed', inputMissing: false, invalidPath: true, detail: 'invalid-path', reason: '' });
  });

  it('final-timeout: the bounded step reports FAILED', async () => {
    assert.equal((await replay('final-timeout')).kind, 'conversion-failed');
  });

  it('fail-unknown-extension: Response Error is a rejection (deployment), not a job failure', async () => {
    assert.deepEqual(await replay('fail-unknown-extension', undefined, 0), { kind: 'rejected', message: 'Extension does not exist.' });
  });

  it('fail-unknown-extension (3): Local channel into a missing context fails to start', async () => {
    const outcome = await replay('fail-unknown-extension', undefined, 2);
    assert.equal(outcome.kind, 'start-failed');
  });

  it('hdr-line-too-long: Asterisk could not parse it: the request is invalid, not the deployment', async () => {
    const outcome = await replay('hdr-line-too-long');
    assert.equal(outcome.kind, 'invalid-request');
  });

  it('dup-channelid: the second Originate fails to start; the first job events do not fool it', async () => {
    const outcome = await replay('dup-channelid', undefined, 1);
    assert.equal(outcome.kind, 'start-failed');
  });
});

/** Moves the element at `from` to `to`. */
function move<T>(list: T[], from: number, to: number): T[] {
  const copy = [...list];
  const [item] = copy.splice(from, 1);
  copy.splice(to, 0, item as T);
  return copy;
}

function indexOfEvent(events: AmiMessage[], name: string, uniqueidSuffix = ''): number {
  return events.findIndex((e) => getHeader(e, 'Event') === name && (getHeader(e, 'Uniqueid') ?? '').endsWith(uniqueidSuffix));
}

describe('every recorded reordering gives the same outcome', () => {
  for (const name of ['final-ok', 'final-bad-path', 'final-input-missing']) {
    it(`${name}: OriginateResponse at every position`, async () => {
      const expected = await replay(name);
      const count = serverMessages(name).filter((m) => getHeader(m, 'Event') !== undefined).length;
      for (let to = 0; to < count; to++) {
        const outcome = await replay(name, (events) => move(events, indexOfEvent(events, 'OriginateResponse'), to));
        assert.deepEqual(outcome, expected, `OriginateResponse moved to ${to}`);
      }
    });

    it(`${name}: the ;2 Hangup before the ;1`, async () => {
      const expected = await replay(name);
      const outcome = await replay(name, (events) => {
        const two = events.filter((e) => (getHeader(e, 'Uniqueid') ?? '').endsWith(';2'));
        const rest = events.filter((e) => !(getHeader(e, 'Uniqueid') ?? '').endsWith(';2'));
        return [...two, ...rest];
      });
      assert.deepEqual(outcome, expected);
    });
  }

  it('a Hangup with no UserEvent before it is a failure', async () => {
    const outcome = await replay('final-ok', (events) => events.filter((e) => getHeader(e, 'Event') !== 'UserEvent'));
    assert.equal(outcome.kind, 'hangup-without-result');
  });
});

describe('Originator lifecycle', () => {
  it('ignores other attempts events and leaks nothing over thousands of attempts', async () => {
    const client = new ScriptedClient();
    const originator = new Originator(client, TARGET);
    const runs: Promise<OriginateOutcome>[] = [];
    for (let i = 0; i < 5000; i++) runs.push(originator.run({ gsmPath: '/g', wavPath: '/w', timeoutMs: 60_000, attemptId: `id-${i}` }));
    assert.equal(originator.inFlight, 5000);
    // Events for unknown ids change nothing.
    client.emit('event', {
      pairs: [
        ['Event', 'Hangup'],
        ['Uniqueid', 'someone-else'],
      ],
    });
    assert.equal(originator.inFlight, 5000);
    client.sent.forEach((s, i) => {
      s.resolve({
        pairs: [
          ['Response', 'Success'],
          ['ActionID', s.actionId],
        ],
      });
      client.emit('event', {
        pairs: [
          ['Event', 'UserEvent'],
          ['UserEvent', 'AudioConvert'],
          ['Uniqueid', `id-${i}`],
          ['Status', 'OK'],
          ['WavBytes', String(i)],
        ],
      });
      client.emit('event', {
        pairs: [
          ['Event', 'Hangup'],
          ['Uniqueid', `id-${i}`],
        ],
      });
    });
    const outcomes = await Promise.all(runs);
    outcomes.forEach((o, i) => assert.deepEqual(o, { kind: 'converted', wavBytes: i, detail: '' }));
    assert.equal(originator.inFlight, 0);
    assert.equal(client.listenerCount('event'), 1, 'one shared listener, not one per attempt');
    originator.dispose();
    assert.equal(client.listenerCount('event'), 0);
  });

  it('a disconnect ends every attempt at once; a result already reported stands', async () => {
    const client = new ScriptedClient();
    const originator = new Originator(client, TARGET);
    const a = originator.run({ gsmPath: '/g', wavPath: '/w', timeoutMs: 60_000, attemptId: 'a' });
    const b = originator.run({ gsmPath: '/g', wavPath: '/w', timeoutMs: 60_000, attemptId: 'b' });
    client.emit('event', {
      pairs: [
        ['Event', 'UserEvent'],
        ['UserEvent', 'AudioConvert'],
        ['Uniqueid', 'b'],
        ['Status', 'OK'],
        ['WavBytes', '7'],
      ],
    });
    client.emit('disconnected', { reason: 'socket closed' });
    assert.deepEqual(await a, { kind: 'disconnected', message: 'socket closed' });
    assert.deepEqual(await b, { kind: 'converted', wavBytes: 7, detail: '' });
    assert.equal(originator.inFlight, 0);
  });

  it('times out at the deadline and forgets the attempt', async () => {
    const client = new ScriptedClient();
    const originator = new Originator(client, TARGET);
    const outcome = await originator.run({ gsmPath: '/g', wavPath: '/w', timeoutMs: 20 });
    assert.deepEqual(outcome, { kind: 'timeout', afterMs: 20 });
    assert.equal(originator.inFlight, 0);
  });

  it('a value the serializer refuses is an invalid request', async () => {
    const client = new ScriptedClient();
    const originator = new Originator(client, TARGET);
    const run = originator.run({ gsmPath: '/g', wavPath: '/w', timeoutMs: 60_000 });
    client.sent[0]?.reject(new AmiSerializeError('CR in value'));
    assert.equal((await run).kind, 'invalid-request');
  });

  it('errors are classified by class, not by message: a "timeout" in a disconnect text is still a disconnect', async () => {
    const client = new ScriptedClient();
    const originator = new Originator(client, TARGET);
    const lost = originator.run({ gsmPath: '/g', wavPath: '/w', timeoutMs: 60_000 });
    client.sent[0]?.reject(new AmiConnectionError('AMI connection lost (login-timeout)'));
    assert.equal((await lost).kind, 'disconnected');
    const slow = originator.run({ gsmPath: '/g', wavPath: '/w', timeoutMs: 60_000 });
    client.sent[1]?.reject(new AmiActionTimeoutError('Originate', 60_000));
    assert.deepEqual(await slow, { kind: 'timeout', afterMs: 60_000 });
  });
});
