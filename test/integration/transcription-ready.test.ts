/**
 * Ready for the transcription stage (docs/messages.md): through the real bridge, RabbitMQ and the
 * AMI emulator converting with sox — settled inputs (a recording still being written waits, without
 * using an attempt), INPUT_EMPTY, the WAV proven before `converted` (a step that lies is caught), the
 * files' hashes and the audio facts with their flags, and two legs as one 2-channel WAV — with both
 * conversion steps (Convert(): the facts come in its UserEvent; the perl step: the bridge measures them).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { audioFacts } from '../../src/audio.js';
import { makeStack, type Stack } from '../helpers/stack.js';

type Audio = { duration_ms: number; peak_dbfs: number; rms_dbfs: number; silence_ratio: number; clipped_ratio: number; flags: string[] };
type Result = {
  job_id: string;
  status: string;
  attempts: number;
  wav_bytes?: number;
  input_sha256?: string;
  wav_sha256?: string;
  audio?: Audio;
  channels?: Array<{ index: number; role: string; gsm_path: string; duration_ms: number; input_sha256: string; audio: Audio }>;
  error?: { code: string; message: string };
};

const sha256 = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** A GSM file of `seconds` of a tone (`vol` 0: digital silence) at `file`. */
function synth(file: string, seconds: number, vol = 0.5): string {
  execFileSync('sox', ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', file, 'synth', String(seconds), 'sine', '440', 'vol', String(vol)]);
  return file;
}

async function stackWith(step: 'perl' | 'convert-app', worker: Record<string, string> = {}): Promise<Stack> {
  const stack = await makeStack({ emulator: { step }, config: { worker } });
  after(() => stack.close());
  await stack.startService();
  return stack;
}

/** Publishes `body` and resolves with its result. */
async function run(stack: Stack, body: Record<string, unknown>): Promise<Result> {
  const before = stack.results.messages.length;
  await stack.publish(body);
  await stack.results.onCount(before + 1);
  return stack.results.bodies<Result>()[before]!;
}

for (const step of ['convert-app', 'perl'] as const) {
  describe(`ready for transcription, ${step} step`, () => {
    it('a converted result carries the sha256 of both files and the audio facts; a tone is not silent, silence is', async () => {
      const stack = await stackWith(step);
      const tone = synth(path.join(stack.data.gsmDir, 'tone.gsm'), 2);
      const quiet = synth(path.join(stack.data.gsmDir, 'quiet.gsm'), 2, 0);
      const a = await run(stack, { job_id: 'tone', gsm_path: tone, wav_path: stack.data.wav('tone') });
      const b = await run(stack, { job_id: 'quiet', gsm_path: quiet, wav_path: stack.data.wav('quiet') });
      assert.equal(a.status, 'converted', JSON.stringify(a.error));
      assert.equal(a.input_sha256, sha256(tone), 'sha256sum of the GSM');
      assert.equal(a.wav_sha256, sha256(stack.data.wav('tone')), 'sha256sum of the WAV');
      const wav = readFileSync(stack.data.wav('tone'));
      const { flags, ...facts } = a.audio!;
      assert.deepEqual(facts, audioFacts(wav.subarray(44), 1, [16000])[0], 'the facts of the samples');
      assert.equal(a.audio?.duration_ms, 2000);
      assert.deepEqual(flags, []);
      assert.deepEqual(b.audio?.flags, ['silent']);
      assert.equal(b.audio?.silence_ratio, 1);
      const metrics = await stack.service!.metrics.registry.getSingleMetricAsString('audioconvert_audio_flags_total');
      assert.match(metrics, /audioconvert_audio_flags_total\{flag="silent"\} 1$/m);
      const durations = await stack.service!.metrics.registry.getSingleMetricAsString('audioconvert_audio_duration_seconds');
      assert.match(durations, /audioconvert_audio_duration_seconds_count 2$/m);
    });

    it('an empty or one-byte input ends INPUT_EMPTY at once: dead-lettered, not retried, nothing sent to Asterisk', async () => {
      const stack = await stackWith(step);
      writeFileSync(path.join(stack.data.gsmDir, 'empty.gsm'), '');
      writeFileSync(path.join(stack.data.gsmDir, 'one.gsm'), Buffer.from([0xd8]));
      for (const name of ['empty', 'one']) {
        const r = await run(stack, { job_id: name, gsm_path: path.join(stack.data.gsmDir, `${name}.gsm`), wav_path: stack.data.wav(name) });
        assert.equal(r.status, 'failed');
        assert.equal(r.error?.code, 'INPUT_EMPTY');
        assert.match(r.error?.message ?? '', /holds no whole GSM frame \((0|1) bytes\)/);
        assert.equal(r.attempts, 0);
      }
      assert.equal(stack.emulator.stats.originates, 0, 'no Originate');
      await stack.dead.onCount(2);
      assert.equal(stack.dead.messages.length, 2);
    });

    it('a step that writes a short WAV and says OK ends failed OUTPUT_INVALID, never converted', async () => {
      const stack = await stackWith(step, { MaxAttempts: '2' });
      stack.emulator.setOutcomeOverride(() => 'short-ok');
      const r = await run(stack, { job_id: 'liar', gsm_path: stack.data.gsm('liar'), wav_path: stack.data.wav('liar') });
      assert.equal(r.status, 'failed');
      assert.equal(r.error?.code, 'OUTPUT_INVALID');
      assert.match(r.error?.message ?? '', /RIFF size says 16044 bytes, the file has 144/);
      assert.equal(r.attempts, 2, 'retried, then dead-lettered');
    });

    it('a recording still being written waits (no attempt used) and converts whole once it settled', async () => {
      const stack = await stackWith(step, { SettleTime: '0.6', RetryDelay: '0.2' });
      const src = readFileSync(synth(path.join(stack.data.gsmDir, 'src.gsm'), 3));
      const growing = path.join(stack.data.gsmDir, 'growing.gsm');
      writeFileSync(growing, src.subarray(0, 33 * 25));
      const done = run(stack, { job_id: 'grow', gsm_path: growing, wav_path: stack.data.wav('grow') });
      for (let i = 1; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 150)); // the recorder's pace, not a wait for the bridge
        appendFileSync(growing, src.subarray(33 * 25 * i, 33 * 25 * (i + 1)));
      }
      const r = await done;
      assert.equal(r.status, 'converted', JSON.stringify(r.error));
      assert.equal(r.attempts, 1, 'the waits used no attempt');
      assert.equal(r.audio?.duration_ms, 3000, 'all 150 frames');
      assert.deepEqual(r.audio?.flags, []);
      const deferred = await stack.service!.metrics.registry.getSingleMetricAsString('audioconvert_inputs_unsettled_total');
      assert.match(deferred, /outcome="deferred"\} [1-9]/);
    });

    it('an input still unsettled after SettleMax converts as it is, flagged unsettled', async () => {
      const stack = await stackWith(step, { SettleTime: '3600', SettleMax: '0.3', RetryDelay: '0.1' });
      const gsm = stack.data.gsm('stuck');
      utimesSync(gsm, new Date(), new Date());
      const r = await run(stack, { job_id: 'stuck', gsm_path: gsm, wav_path: stack.data.wav('stuck') });
      assert.equal(r.status, 'converted', JSON.stringify(r.error));
      assert.deepEqual(r.audio?.flags.includes('unsettled'), true);
      const m = await stack.service!.metrics.registry.getSingleMetricAsString('audioconvert_inputs_unsettled_total');
      assert.match(m, /outcome="converted"\} 1$/m);
    });

    it('two legs → one 2-channel WAV, channel i = legs[i], the shorter padded; the result names the channels', async () => {
      const stack = await stackWith(step);
      const caller = synth(path.join(stack.data.gsmDir, 'in.gsm'), 3);
      const agent = synth(path.join(stack.data.gsmDir, 'out.gsm'), 2, 0);
      const r = await run(stack, {
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
      assert.equal(r.wav_bytes, 44 + 150 * 640);
      assert.equal(r.wav_sha256, sha256(stack.data.wav('legs')));
      assert.deepEqual(
        r.channels?.map((c) => [c.index, c.role, c.gsm_path, c.duration_ms, c.input_sha256, c.audio.flags]),
        [
          [0, 'caller', caller, 3000, sha256(caller), []],
          [1, 'agent', agent, 2000, sha256(agent), ['silent']],
        ],
      );
      assert.equal(r.audio, undefined, 'per channel, not for the whole');
    });

    it('a two-leg job whose leg is missing fails naming the leg; legs that break the rules are invalid', async () => {
      const stack = await stackWith(step);
      const caller = stack.data.gsm('c');
      const gone = await run(stack, {
        job_id: 'gone',
        legs: [
          { gsm_path: caller, role: 'caller' },
          { gsm_path: path.join(stack.data.gsmDir, 'nope.gsm'), role: 'agent' },
        ],
        wav_path: stack.data.wav('gone'),
      });
      assert.equal(gone.error?.code, 'INPUT_MISSING');
      assert.match(gone.error?.message ?? '', /leg 2 \(agent\) does not exist/);
      const bad = [
        [{ legs: [{ gsm_path: caller, role: 'caller' }], wav_path: stack.data.wav('x') }, /exactly two legs/],
        [{ gsm_path: caller, legs: [], wav_path: stack.data.wav('x') }, /gsm_path or legs, not both/],
        [
          {
            legs: [
              { gsm_path: caller, role: 'a b' },
              { gsm_path: caller, role: 'b' },
            ],
            wav_path: stack.data.wav('x'),
          },
          /legs\[0\]\.role must be 1-32 characters/,
        ],
      ] as const;
      for (const [body, message] of bad) {
        const r = await run(stack, body);
        assert.equal(r.error?.code, 'INVALID_MESSAGE');
        assert.match(r.error?.message ?? '', message);
      }
    });
  });
}
