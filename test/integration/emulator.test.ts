/**
 * The AMI emulator against the recordings of a real Asterisk 22.10.1 (test/fixtures/ami-transcripts):
 * the recorded client bytes are replayed over real TCP and the answers compared message by message
 * (header names and order, stable values). Real sox in real mode, in a temp root.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { getHeader, type AmiMessage } from '../../src/ami/protocol.js';
import { PRIORITY } from '../../src/emulator/dialplan.js';
import { AsteriskEmulator, type EmulatorOptions } from '../../src/emulator/server.js';
import { assertLikeRecording, ev, names, RawAmi, replay, replaySteps } from './emulator-client.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'audio-convert-emu-'));
mkdirSync(path.join(root, 'gsm'));
mkdirSync(path.join(root, 'wav'));
after(() => rmSync(root, { recursive: true, force: true }));

/** 3 s of 8 kHz GSM, like the recordings' inputs. */
function makeGsm(name: string): string {
  const file = path.join(root, 'gsm', name);
  execFileSync('sox', ['-n', '-r', '8000', '-c', '1', file, 'synth', '3', 'sine', '440']);
  return file;
}

/** The recordings' dialplan, paths and extension names, mapped onto ours. */
const ours = (text: string): string =>
  text.replaceAll('/var/local/auditorai', root).replace(/^Exten: (sox|slow|hang-bounded)$/gm, 'Exten: convert');

async function emulator(opts: EmulatorOptions = {}): Promise<AsteriskEmulator> {
  const emu = await AsteriskEmulator.start({ root, users: { auditorai: 'test-secret' }, ...opts });
  after(() => emu.close());
  return emu;
}

async function client(emu: AsteriskEmulator): Promise<RawAmi> {
  const c = await RawAmi.connect(emu.port);
  after(() => c.close());
  return c;
}

const userEvent = (ms: readonly AmiMessage[]): AmiMessage => {
  const found = ms.find((m) => ev(m) === 'UserEvent');
  assert.ok(found, 'a UserEvent');
  return found;
};
const body = (m: AmiMessage): string[] => m.pairs.slice(m.pairs.findIndex(([k]) => k === 'UserEvent')).map(([k, v]) => `${k}: ${v}`);

/** Replays one single-connection recording; returns our messages after each C->S block. */
async function replayFile(emu: AsteriskEmulator, name: string, skipBody = false): Promise<AmiMessage[][]> {
  const c = await client(emu);
  const groups = await replay(c, replaySteps(name, 0, ours), 8000);
  assert.equal(c.banner, 'Asterisk Call Manager/11.0.0');
  for (const [mine, recorded] of groups) assertLikeRecording(mine, recorded, { skipBody });
  return groups.map(([mine]) => mine);
}

describe('AMI emulator vs recordings', () => {
  test('login-ok: banner, Login + FullyBooted, Ping with Timestamp, Logoff then close', async () => {
    const emu = await emulator();
    const c = await client(emu);
    const groups = await replay(c, replaySteps('login-ok', 0));
    for (const [mine, recorded] of groups) assertLikeRecording(mine, recorded);
    assert.match(getHeader(groups[1]![0][0]!, 'Timestamp') ?? '', /^\d{10}\.\d{6}$/);
    await c.onClose();
  });

  test('final-ok: 14 events as recorded, and an 8 kHz 16-bit mono PCM WAV of 3 s', async () => {
    makeGsm('final-ok.gsm');
    const emu = await emulator();
    const [, job] = await replayFile(emu, 'final-ok');
    assert.equal(job!.length, 15); // the Response + 14 events
    const ue = userEvent(job!);
    assert.deepEqual(body(ue), [
      'UserEvent: AudioConvert',
      'JobId: 4c269776-3db1-4358-8b71-99af507947d0',
      'Status: OK',
      'Detail: SUCCESS',
      'WavBytes: 48044',
    ]);
    assert.equal(getHeader(ue, 'Priority'), String(PRIORITY.result));
    const wav = readFileSync(path.join(root, 'wav', 'final-ok.wav'));
    assert.equal(wav.length, 48044);
    assert.equal(wav.toString('ascii', 0, 4), 'RIFF');
    assert.equal(wav.toString('ascii', 8, 16), 'WAVEfmt ');
    assert.equal(wav.readUInt16LE(20), 1, 'PCM');
    assert.equal(wav.readUInt16LE(22), 1, 'mono');
    assert.equal(wav.readUInt32LE(24), 8000, 'rate');
    assert.equal(wav.readUInt16LE(34), 16, 'bits');
    assert.equal(wav.toString('ascii', 36, 40), 'data');
    assert.equal(wav.readUInt32LE(40) / (8000 * 2), 3, 'seconds');
    assert.ok(!existsSync(path.join(root, 'wav', 'final-ok.wav.tmp-4c269776-3db1-4358-8b71-99af507947d0.wav')), 'temp file renamed');
    assert.equal(emu.stats.conversionsFinished, 1);
  });

  test('final-input-missing: same events; the shipped dialplan says input-missing', async () => {
    const emu = await emulator();
    const [, job] = await replayFile(emu, 'final-input-missing', true);
    const ue = userEvent(job!);
    assert.deepEqual(body(ue), [
      'UserEvent: AudioConvert',
      'JobId: 84b710e3-db17-4249-9780-6281d6731883',
      'Status: FAILED',
      'Detail: input-missing',
    ]);
    assert.equal(getHeader(ue, 'Priority'), String(PRIORITY.inputMissing));
    assert.equal(emu.stats.conversionsStarted, 0);
  });

  test('final-bad-path: shell metacharacters → invalid-path, nothing executed', async () => {
    const emu = await emulator();
    const [, job] = await replayFile(emu, 'final-bad-path');
    assert.deepEqual(body(userEvent(job!)), [
      'UserEvent: AudioConvert',
      'JobId: 48929a92-8da7-4b8b-999d-64ff6a698b63',
      'Status: FAILED',
      'Detail: invalid-path',
    ]);
    assert.equal(emu.stats.conversionsStarted, 0);
    assert.equal(emu.stats.forbiddenBytes, 1, 'the metacharacters reached GSM_PATH');
    assert.ok(!existsSync(path.join(root, 'wav', 'final-bad.wav')));
  });

  test('final-timeout: a hung step ends FAILED / APPERROR at the timeout bound', async () => {
    makeGsm('final-to.gsm');
    const emu = await emulator({ conversionTimeoutMs: 600 });
    emu.hangConversions(true);
    const [, job] = await replayFile(emu, 'final-timeout', true);
    assert.deepEqual(body(userEvent(job!)), [
      'UserEvent: AudioConvert',
      'JobId: 68db0340-e93b-440d-8287-b2802e165915',
      'Status: FAILED',
      'Detail: APPERROR',
      'WavBytes: 0',
    ]);
  });

  test('fail-unknown-extension: the seven recorded rejections', async () => {
    const emu = await emulator();
    const groups = await replayFile(emu, 'fail-unknown-extension');
    assert.deepEqual(
      groups.slice(1).map((g) => getHeader(g[0]!, 'Message')),
      [
        'Extension does not exist.',
        'Extension does not exist.',
        'Originate successfully queued',
        'Originate successfully queued',
        'Invalid priority',
        'Channel not specified',
        'Uniqueid length exceeds maximum of 149',
      ],
    );
    assert.equal(emu.stats.originates, 2);
  });

  test('dup-channelid: a ChannelId still in use is queued, then fails with Reason 0', async () => {
    const emu = await emulator({ mode: 'instant', conversionTimeoutMs: 800 });
    emu.hangConversions(true);
    const c = await client(emu);
    const [login, first, second] = await replay(c, replaySteps('dup-channelid', 0, ours));
    assertLikeRecording(...login!);
    assertLikeRecording(...first!);
    // The second Originate: queued, refused at once; then the first job ends (30 s recorded, our timeout here).
    assertLikeRecording(second![0], second![1], { skipBody: true });
    assert.equal(getHeader(second![0][1]!, 'Response'), 'Failure');
    assert.equal(emu.stats.originates, 2);
  });

  test('hdr-line-too-long: the action is refused with its ActionID, the session stays usable', async () => {
    const emu = await emulator();
    await replayFile(emu, 'hdr-line-too-long');
    assert.equal(emu.stats.forbiddenBytes, 1);
    assert.equal(emu.stats.originates, 0);
  });

  test('ChannelId over 149 characters: the Message line ends in a bare LF, as recorded', async () => {
    const emu = await emulator();
    const c = await client(emu);
    await c.login();
    c.action({ Action: 'Originate', Channel: 'Local/s@audio-convert-hold', ChannelId: 'x'.repeat(150), ActionID: 'long-id' });
    await c.next((m) => getHeader(m, 'ActionID') === 'long-id');
    assert.ok(Buffer.concat(c.raw).toString().endsWith('Message: Uniqueid length exceeds maximum of 149\n\r\n\r\n'));
  });

  test('login-bad-password: Permission denied before Login; a bad Login answered after ~1 s, then close', async () => {
    const emu = await emulator();
    const run = async (conn: number): Promise<number> => {
      const c = await client(emu);
      const steps = replaySteps('login-bad-password', conn);
      const started = Date.now();
      for (const [mine, recorded] of await replay(c, steps)) assertLikeRecording(mine, recorded);
      const elapsed = Date.now() - started;
      await c.onClose();
      return elapsed;
    };
    const [c1, c2] = await Promise.all([run(0), run(1)]);
    assert.ok(c1 >= 950 && c2 >= 950, `answered after ${c1} / ${c2} ms`);
    assert.equal(emu.stats.loginFailures, 2);
  });
});

describe('AMI emulator restarts', () => {
  const connectRefused = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(false)));
      s.once('error', () => resolve(true));
    });

  async function threeJobsInFlight(emu: AsteriskEmulator): Promise<RawAmi> {
    const c = await client(emu);
    await c.login();
    await c.next((m) => ev(m) === 'FullyBooted');
    for (const id of ['09c01029', '26f822a1', '765a0a0c']) {
      c.action([
        ['Action', 'Originate'],
        ['Channel', 'Local/s@audio-convert-hold'],
        ['Context', 'audio-convert'],
        ['Exten', 'convert'],
        ['Priority', '1'],
        ['ChannelId', `${id}-x`],
        ['Variable', `JOB_ID=${id}-x`],
        ['Variable', `GSM_PATH=${root}/gsm/a.gsm`],
        ['Variable', `WAV_PATH=${root}/wav/a.wav`],
        ['Async', 'true'],
        ['ActionID', id],
      ]);
      await c.next((m) => ev(m) === 'OriginateResponse' && getHeader(m, 'ActionID') === id);
    }
    return c;
  }

  test('core restart now: teardown of the live channels, Event: Shutdown, close; port refused, then Uptime 0', async () => {
    const emu = await emulator({ mode: 'instant' });
    emu.hangConversions(true);
    const c = await threeJobsInFlight(emu);
    const down = new Promise((resolve) => emu.once('restart', resolve));
    const restarted = emu.restart({ downMs: 300 });
    const teardown = await c.upTo((m) => ev(m) === 'Shutdown');
    await c.onClose();
    assert.deepEqual(
      names(teardown).sort(),
      [
        ...Array<string>(9).fill('SoftHangupRequest'),
        ...Array<string>(3).fill('HangupRequest'),
        ...Array<string>(3).fill('Hangup'),
        'Shutdown',
      ].sort(),
    );
    assert.ok(
      teardown.every((m) => ev(m) !== 'Hangup' || getHeader(m, 'Uniqueid')!.endsWith(';2')),
      'only the ;2 halves hang up',
    );
    assert.deepEqual(
      teardown.at(-1)!.pairs.map(([k, v]) => `${k}: ${v}`),
      ['Event: Shutdown', 'Privilege: system,all', 'Shutdown: Uncleanly', 'Restart: True'],
    );
    await down;
    assert.equal(await connectRefused(emu.port), true);
    await restarted;
    const again = await client(emu);
    await again.login();
    assert.equal(getHeader(await again.next((m) => ev(m) === 'FullyBooted'), 'Uptime'), '0');
    assert.equal(emu.stats.conversionsStarted, 3);
  });

  test('shutdown window: every action gets "Asterisk is shutting down" until Shutdown and the close', async () => {
    const emu = await emulator({ mode: 'instant' });
    const restarted = emu.restart({ shuttingDownMs: 400, downMs: 50 });
    const late = await client(emu);
    assert.equal(getHeader(await late.login(), 'Message'), 'Asterisk is shutting down');
    await late.onClose();
    await restarted;
    assert.equal(getHeader(await (await client(emu)).login(), 'Message'), 'Authentication accepted');
  });

  test('kill -9: the socket just closes, no Shutdown; orphaned steps are never reported', async () => {
    const emu = await emulator({ mode: 'instant', conversionTimeoutMs: 400 });
    emu.hangConversions(true);
    const c = await threeJobsInFlight(emu);
    const orphan = new Promise<boolean>((resolve) => emu.once('conversionEnd', (r) => resolve(r.orphaned)));
    await emu.restart({ graceful: false, downMs: 50 });
    await c.onClose();
    assert.ok(!c.messages.slice(-3).some((m) => ev(m) === 'Shutdown'));
    const after = await client(emu);
    await after.login();
    assert.equal(await orphan, true);
    after.action({ Action: 'Ping', ActionID: 'p' });
    const seen = await after.upTo((m) => getHeader(m, 'ActionID') === 'p');
    assert.ok(!seen.some((m) => ev(m) === 'UserEvent'), "the orphan's result is never delivered");
  });
});
