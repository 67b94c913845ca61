/**
 * The AMI emulator's Convert() step (`step: 'convert-app'`: an Asterisk with app_convert loaded), in
 * real mode over TCP: its outcomes are the module's (test/asterisk/parity.test.ts holds both to the
 * real thing), one input or two legs, with the hashes and audio facts the module reports.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { audioFacts, parseAudio } from '../../src/audio.js';
import { getHeader, type AmiMessage } from '../../src/ami/protocol.js';
import { AsteriskEmulator, type EmulatorOptions } from '../../src/emulator/server.js';
import { ev, jobEnd, RawAmi } from './emulator-client.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'audio-convert-emuapp-'));
mkdirSync(path.join(root, 'gsm'));
mkdirSync(path.join(root, 'wav'));
after(() => rmSync(root, { recursive: true, force: true }));
const gsm = (name: string): string => path.join(root, 'gsm', `${name}.gsm`);
const wav = (name: string): string => path.join(root, 'wav', `${name}.wav`);
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
execFileSync('sox', ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', gsm('tone'), 'synth', '3', 'sine', '440']);
execFileSync('sox', ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', gsm('short'), 'synth', '2', 'sine', '300']);

async function emulator(opts: EmulatorOptions = {}): Promise<RawAmi> {
  const emu = await AsteriskEmulator.start({ root, mode: 'real', step: 'convert-app', users: { auditorai: 'test-secret' }, ...opts });
  after(() => emu.close());
  const c = await RawAmi.connect(emu.port);
  after(() => c.close());
  await c.login();
  return c;
}

let seq = 0;
/** One job; resolves with its UserEvent. */
async function convert(c: RawAmi, gsmPath: string, wavPath: string, gsmPath2?: string): Promise<AmiMessage> {
  const id = `app-${++seq}`;
  c.action([
    ['Action', 'Originate'],
    ['Channel', 'Local/s@audio-convert-hold'],
    ['Context', 'audio-convert'],
    ['Exten', 'convert'],
    ['Priority', '1'],
    ['ChannelId', id],
    ['Variable', `JOB_ID=${id}`],
    ['Variable', `GSM_PATH=${gsmPath}`],
    ...(gsmPath2 === undefined ? [] : ([['Variable', `GSM_PATH2=${gsmPath2}`]] as [string, string][])),
    ['Variable', `WAV_PATH=${wavPath}`],
    ['Async', 'true'],
    ['ActionID', `a-${id}`],
  ]);
  const event = (await jobEnd(c, id)).find((m) => ev(m) === 'UserEvent');
  assert.ok(event, 'a UserEvent');
  return event;
}

describe('AMI emulator: the Convert() step', () => {
  test('one input: converted at priority 23 with the size, the hashes and the audio facts of the samples', async () => {
    const c = await emulator();
    const e = await convert(c, gsm('tone'), wav('tone'));
    assert.deepEqual(
      [getHeader(e, 'Priority'), getHeader(e, 'Status'), getHeader(e, 'Detail'), getHeader(e, 'Reason')],
      ['23', 'OK', 'converted', 'converted'],
    );
    const out = readFileSync(wav('tone'));
    assert.equal(Number(getHeader(e, 'WavBytes')), out.length);
    assert.equal(getHeader(e, 'InputSha256'), sha256(readFileSync(gsm('tone'))));
    assert.equal(getHeader(e, 'WavSha256'), sha256(out));
    assert.deepEqual(parseAudio(getHeader(e, 'Audio')), audioFacts(out.subarray(44), 1, [24000]));
  });

  test('two legs: a 2-channel WAV as long as the longer leg, a hash and facts per leg', async () => {
    const c = await emulator();
    const e = await convert(c, gsm('tone'), wav('stereo'), gsm('short'));
    assert.equal(getHeader(e, 'Detail'), 'converted', getHeader(e, 'Reason'));
    const out = readFileSync(wav('stereo'));
    assert.equal(out.readUInt16LE(22), 2);
    assert.equal(out.length, 44 + 150 * 320 * 2);
    assert.equal(getHeader(e, 'InputSha256'), `${sha256(readFileSync(gsm('tone')))} ${sha256(readFileSync(gsm('short')))}`);
    const facts = parseAudio(getHeader(e, 'Audio'));
    assert.deepEqual(
      facts?.map((f) => f.duration_ms),
      [3000, 2000],
    );
    // the shorter leg is padded with digital silence
    for (let i = 100 * 160; i < 150 * 160; i++) assert.equal(out.readInt16LE(44 + 4 * i + 2), 0);
  });

  test('the module’s failures: empty, a corrupt frame, a FIFO, a directory; a new dated directory is created 2775', async () => {
    const c = await emulator();
    writeFileSync(gsm('empty'), '');
    const corrupt = readFileSync(gsm('tone'));
    corrupt[33 * 7] = 0;
    writeFileSync(gsm('corrupt'), corrupt);
    execFileSync('mkfifo', [gsm('fifo')]);
    mkdirSync(gsm('dir'));
    const detailOf = async (g: string): Promise<[string | undefined, string | undefined]> => {
      const e = await convert(c, g, wav('x'));
      return [getHeader(e, 'Detail'), getHeader(e, 'Reason')];
    };
    assert.deepEqual(await detailOf(gsm('empty')), ['input-empty', `the input holds no whole GSM frame (0 bytes): ${gsm('empty')}`]);
    assert.deepEqual(await detailOf(gsm('corrupt')), ['input-corrupt', 'GSM frame 8 of 150 cannot be decoded']);
    assert.deepEqual(await detailOf(gsm('fifo')), ['input-not-regular', `the input is not a regular file but a FIFO: ${gsm('fifo')}`]);
    assert.deepEqual(await detailOf(gsm('dir')), ['input-not-regular', `the input is not a regular file but a directory: ${gsm('dir')}`]);
    const dated = path.join(root, 'wav', '2026', '12', '07', 'call.wav');
    assert.equal(getHeader(await convert(c, gsm('tone'), dated), 'Detail'), 'converted');
    assert.equal(statSync(path.dirname(dated)).mode & 0o7777, 0o2775);
  });

  test('without app_convert, the perl step’s two-leg program (priority 26) writes the same 2-channel WAV', async () => {
    const c = await emulator({ step: 'perl' });
    const e = await convert(c, gsm('tone'), wav('perl-legs'), gsm('short'));
    assert.deepEqual([getHeader(e, 'Priority'), getHeader(e, 'Detail')], ['16', 'SUCCESS']);
    const app = await emulator();
    assert.equal(getHeader(await convert(app, gsm('tone'), wav('app-legs'), gsm('short')), 'Detail'), 'converted');
    assert.ok(readFileSync(wav('perl-legs')).equals(readFileSync(wav('app-legs'))), 'the same bytes from both steps');
  });
});
