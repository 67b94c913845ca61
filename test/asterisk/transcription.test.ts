/**
 * Ready for the transcription stage, end to end on a real Asterisk through the bridge (issue 23's
 * checks), with each conversion step of the shipped dialplan: a file still growing when its job
 * arrives (25 frames every 250 ms, 150 in all) converts only once it settled, all 150 frames; a step
 * that says OK over a short WAV ends failed; a silent recording is flagged silent and a tone is not;
 * the hashes equal sha256sum of the files; an empty input ends INPUT_EMPTY; two legs give a 2-channel
 * WAV whose channels equal the two mono conversions (the shorter padded with zeros).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ExternalStack } from '../helpers/stack.js';
import { commandPath, realAsterisk, type RealAsterisk } from './setup.js';

const REPO = path.resolve(import.meta.dirname, '../..');

type Audio = { duration_ms: number; flags: string[]; silence_ratio: number };
type Result = {
  status: string;
  attempts: number;
  wav_bytes?: number;
  input_sha256?: string;
  wav_sha256?: string;
  audio?: Audio;
  channels?: Array<{ role: string; duration_ms: number; input_sha256: string; audio: Audio }>;
  error?: { code: string; message: string };
};

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

for (const step of ['convert-app', 'perl'] as const) {
  describe(`ready for transcription on a real Asterisk, ${step} step`, () => {
    let real: RealAsterisk;
    let stack: ExternalStack;
    let sox = '';
    const synth = (name: string, seconds: number, vol: number): string => {
      const file = path.join(stack.data.gsmDir, `${stack.data.prefix}${name}.gsm`);
      execFileSync(sox, ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', file, 'synth', String(seconds), 'sine', '440', 'vol', String(vol)]);
      return file;
    };
    const run = async (body: Record<string, unknown>): Promise<Result> => {
      const n = stack.results.messages.length;
      await stack.publish(body);
      await stack.results.onCount(n + 1);
      return stack.results.bodies<Result>()[n]!;
    };

    before(async () => {
      sox = commandPath('sox', 'sox');
      real = await realAsterisk({ step });
      stack = await real.stack({ worker: { SettleTime: '1', RetryDelay: '0.3', RetryMaxDelay: '1', MaxAttempts: '2' } });
      await stack.startService();
    });
    after(() => real?.close());

    it('a file still growing when its job arrives converts once settled, all 150 frames, no attempt used by the waits', async () => {
      const src = readFileSync(synth('grow-src', 3, 0.5));
      const growing = path.join(stack.data.gsmDir, `${stack.data.prefix}growing.gsm`);
      writeFileSync(growing, src.subarray(0, 33 * 25));
      const done = run({ job_id: 'grow', gsm_path: growing, wav_path: stack.data.wav('grow') });
      for (let i = 1; i < 6; i++) {
        await sleep(250); // the recorder's pace: 25 frames every 250 ms
        appendFileSync(growing, src.subarray(33 * 25 * i, 33 * 25 * (i + 1)));
      }
      const r = await done;
      assert.equal(r.status, 'converted', JSON.stringify(r.error));
      assert.equal(r.attempts, 1);
      assert.equal(r.audio?.duration_ms, 3000, 'all 150 frames');
      assert.equal(r.wav_bytes, 44 + 150 * 320);
    });

    it('a tone is not flagged, a silent recording is flagged silent; the hashes are sha256sum of the files', async () => {
      const tone = synth('tone', 2, 0.5);
      const quiet = synth('quiet', 2, 0);
      const a = await run({ job_id: 'tone', gsm_path: tone, wav_path: stack.data.wav('tone') });
      const b = await run({ job_id: 'quiet', gsm_path: quiet, wav_path: stack.data.wav('quiet') });
      assert.deepEqual([a.status, a.audio?.flags], ['converted', []], JSON.stringify(a.error));
      assert.deepEqual([b.status, b.audio?.flags], ['converted', ['silent']]);
      assert.equal(a.input_sha256, execFileSync('sha256sum', [tone], { encoding: 'utf8' }).split(' ')[0]);
      assert.equal(a.wav_sha256, execFileSync('sha256sum', [stack.data.wav('tone')], { encoding: 'utf8' }).split(' ')[0]);
    });

    it('an empty input ends INPUT_EMPTY, not retried', async () => {
      const empty = path.join(stack.data.gsmDir, `${stack.data.prefix}empty.gsm`);
      writeFileSync(empty, '');
      const r = await run({ job_id: 'empty', gsm_path: empty, wav_path: stack.data.wav('empty') });
      assert.deepEqual([r.status, r.error?.code], ['failed', 'INPUT_EMPTY']);
    });

    it('two legs: a 2-channel WAV whose channels are the two mono conversions, the shorter padded with zeros', async () => {
      const caller = synth('caller', 3, 0.5);
      const agent = synth('agent', 2, 0.3);
      const monoA = await run({ job_id: 'mono-a', gsm_path: caller, wav_path: stack.data.wav('mono-a') });
      const monoB = await run({ job_id: 'mono-b', gsm_path: agent, wav_path: stack.data.wav('mono-b') });
      assert.equal(monoA.status, 'converted');
      assert.equal(monoB.status, 'converted');
      const r = await run({
        job_id: 'legs',
        legs: [
          { gsm_path: caller, role: 'caller' },
          { gsm_path: agent, role: 'agent' },
        ],
        wav_path: stack.data.wav('legs'),
      });
      assert.equal(r.status, 'converted', JSON.stringify(r.error));
      const wav = readFileSync(stack.data.wav('legs'));
      assert.equal(wav.readUInt16LE(22), 2);
      const a = readFileSync(stack.data.wav('mono-a')).subarray(44);
      const b = readFileSync(stack.data.wav('mono-b')).subarray(44);
      for (let i = 0; i < a.length / 2; i++) {
        assert.equal(wav.readInt16LE(44 + 4 * i), a.readInt16LE(2 * i));
        assert.equal(wav.readInt16LE(46 + 4 * i), i < b.length / 2 ? b.readInt16LE(2 * i) : 0);
      }
      assert.deepEqual(
        r.channels?.map((c) => [c.role, c.duration_ms, c.input_sha256]),
        [
          ['caller', 3000, sha256(caller)],
          ['agent', 2000, sha256(agent)],
        ],
      );
    });

    it('a step that says OK over a short WAV ends failed OUTPUT_INVALID, never converted', async () => {
      // The floor dialplan: priority 12 says OK and writes nothing; the WAV there is 100 bytes.
      const wav = stack.data.wav('liar');
      writeFileSync(wav, Buffer.alloc(100));
      const floor = path.join(REPO, 'bench/dialplans/floor-no-spawn.conf');
      const conf = path.join(real.asterisk.dir, 'etc', 'extensions.conf');
      const shipped = readFileSync(conf, 'utf8');
      await real.asterisk.cli('module unload app_convert.so');
      writeFileSync(conf, shipped.replace(/#include ".*extensions\.conf"/, `#include "${floor}"`));
      await real.asterisk.cli('dialplan reload');
      try {
        const r = await run({ job_id: 'liar', gsm_path: stack.data.gsm('liar'), wav_path: wav });
        assert.deepEqual([r.status, r.error?.code], ['failed', 'OUTPUT_INVALID']);
        assert.match(r.error?.message ?? '', /the step said converted, but/);
      } finally {
        writeFileSync(conf, shipped);
        await real.asterisk.cli('dialplan reload');
        if (step === 'convert-app') await real.asterisk.cli('module load app_convert.so');
      }
    });
  });
}
