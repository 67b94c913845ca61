/**
 * Recordings in dated trees (gsm/2026/12/02/call-1.gsm → wav/2026/12/02/call-1.wav): the bridge and
 * the shipped dialplan (as the emulator runs it, with real sox) accept any depth, create the missing
 * output directory with the data directory's group and setgid, and still refuse `..`, hidden and
 * option-like names — the bridge before anything reaches Asterisk, the dialplan before anything runs.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { chmodSync, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { AmiClient } from '../../src/ami/client.js';
import { Originator, type OriginateOutcome } from '../../src/worker/originate.js';
import type { AsteriskEmulator } from '../../src/emulator/server.js';
import { makeStack, type Stack } from '../helpers/stack.js';
import { readWav } from '../helpers/wav.js';

type Result = { job_id: string; status: string; attempts: number; error?: { code: string; message: string } };

/** A 1 s GSM at `rel` below the stack's gsm/ (directories created): gsm() writes in gsm/, then it moves. */
function gsmAt(stack: Stack, rel: string): string {
  const file = path.join(stack.data.gsmDir, rel);
  mkdirSync(path.dirname(file), { recursive: true });
  renameSync(stack.data.gsm(`tmp-${path.basename(rel, '.gsm')}`), file);
  return file;
}

/** Originates straight into the emulated dialplan, past the bridge's own checks. */
async function originate(emu: AsteriskEmulator, gsmPath: string, wavPath: string): Promise<OriginateOutcome> {
  const client = new AmiClient({ host: '127.0.0.1', port: emu.port, username: 'auditorai', secret: 'simulator', pingIntervalMs: 0 });
  const connected = once(client, 'connected');
  client.start();
  await connected;
  const originator = new Originator(client, { channel: 'Local/s@audio-convert-hold', context: 'audio-convert', exten: 'convert' });
  try {
    return await originator.run({ gsmPath, wavPath, timeoutMs: 10_000 });
  } finally {
    originator.dispose();
    await client.close();
  }
}

describe('dated trees', () => {
  it('a job in gsm/2026/12/02/ converts into wav/2026/12/02/, created with the data directory group and setgid', async () => {
    const stack = await makeStack();
    after(() => stack.close());
    chmodSync(stack.data.wavDir, 0o2775);
    const gsm = gsmAt(stack, '2026/12/02/call-1.gsm');
    const wav = path.join(stack.data.wavDir, '2026/12/02/call-1.wav');
    assert.equal(existsSync(path.join(stack.data.wavDir, '2026')), false, 'the output tree does not exist yet');
    await stack.startService();
    await stack.publish({ job_id: 'dated-1', gsm_path: gsm, wav_path: wav });
    await stack.results.onCount(1);
    const [result] = stack.results.bodies<Result>();
    assert.equal(result?.status, 'converted', JSON.stringify(result?.error));
    assert.ok(Math.abs(readWav(wav).seconds - 1) < 0.05);
    const parent = statSync(stack.data.wavDir);
    for (const dir of ['2026', '2026/12', '2026/12/02']) {
      const st = statSync(path.join(stack.data.wavDir, dir));
      assert.ok(st.isDirectory());
      assert.equal(st.gid, parent.gid, `${dir}: the data directory's group`);
      assert.equal(st.mode & 0o2000, 0o2000, `${dir}: setgid`);
    }
    assert.equal(statSync(path.join(stack.data.wavDir, '2026/12/02')).mode & 0o7777, 0o2775, 'the leaf: mkdir -m 2775');

    // A second recording of the same day: the directory is there, the job converts as well.
    const gsm2 = gsmAt(stack, '2026/12/02/call-2.gsm');
    await stack.publish({ job_id: 'dated-2', gsm_path: gsm2, wav_path: path.join(stack.data.wavDir, '2026/12/02/call-2.wav') });
    await stack.results.onCount(2);
    assert.equal(stack.results.bodies<Result>()[1]?.status, 'converted');
  });

  it('a .. or hidden or option-like segment is refused by the bridge before any Originate', async () => {
    const stack = await makeStack();
    after(() => stack.close());
    await stack.startService();
    const g = stack.data.gsmDir;
    const w = stack.data.wavDir;
    const bad = [
      { job_id: 'dotdot', gsm_path: `${g}/2026/../../../etc/a.gsm`, wav_path: `${w}/2026/a.wav` },
      { job_id: 'hidden-in', gsm_path: `${g}/2026/.cache/a.gsm`, wav_path: `${w}/2026/a.wav` },
      { job_id: 'hidden-out', gsm_path: `${g}/2026/a.gsm`, wav_path: `${w}/.2026/a.wav` },
      { job_id: 'dot', gsm_path: `${g}/2026/./a.gsm`, wav_path: `${w}/2026/a.wav` },
      { job_id: 'option', gsm_path: `${g}/2026/a.gsm`, wav_path: `${w}/-rf/a.wav` },
    ];
    for (const body of bad) await stack.publish(body);
    await stack.results.onCount(bad.length);
    for (const r of stack.results.bodies<Result>()) assert.equal(r.error?.code, 'PATH_NOT_ALLOWED', r.job_id);
    assert.equal(stack.emulator.stats.originates, 0, 'nothing reached Asterisk');
    assert.equal(existsSync(path.join(w, '2026')), false);
  });

  it('the dialplan itself refuses .., hidden, option-like and out-of-root paths, and runs nothing', async () => {
    const stack = await makeStack();
    after(() => stack.close());
    const gsm = gsmAt(stack, '2026/12/a.gsm');
    const g = stack.data.gsmDir;
    const w = stack.data.wavDir;
    const refused: [string, string][] = [
      [`${g}/2026/../12/a.gsm`, `${w}/2026/a.wav`],
      [`${g}/2026/.x/a.gsm`, `${w}/2026/a.wav`],
      [gsm, `${w}/2026/../../x/a.wav`],
      [gsm, `${w}/.hidden/a.wav`],
      [gsm, `${w}/2026/./a.wav`],
      [gsm, `${w}/-p/a.wav`],
      [gsm, `${w}/2026/.wav`],
      [gsm, `${g}/2026/a.wav`],
      [gsm, `${w}a.wav`],
    ];
    for (const [gsmPath, wavPath] of refused) {
      const outcome = await originate(stack.emulator, gsmPath, wavPath);
      assert.equal(
        outcome.kind === 'conversion-failed' && outcome.invalidPath,
        true,
        `${gsmPath} → ${wavPath}: ${JSON.stringify(outcome)}`,
      );
    }
    assert.equal(stack.emulator.stats.conversionsStarted, 0);
    assert.equal(existsSync(path.join(w, '2026')), false, 'no directory was created');
    const ok = await originate(stack.emulator, gsm, `${w}/2026/12/a.wav`);
    assert.equal(ok.kind, 'converted', JSON.stringify(ok));
  });
});
