// The audio facts of docs/messages.md ("audio"), as app_convert computes them and as src/audio/facts.ts does for the rest.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { audioFacts, FLOOR_DBFS, formatAudio, parseAudio } from '../../src/audio.js';

/** 16-bit little-endian PCM of the given samples. */
const pcm = (samples: readonly number[]): Buffer => {
  const b = Buffer.alloc(samples.length * 2);
  samples.forEach((s, i) => b.writeInt16LE(s, 2 * i));
  return b;
};

describe('audio facts', () => {
  test('digital silence: the floor level, every block silent, nothing clipped', () => {
    const [f] = audioFacts(pcm(new Array<number>(1600).fill(0)), 1, [1600]);
    assert.deepEqual(f, { duration_ms: 200, peak_dbfs: FLOOR_DBFS, rms_dbfs: FLOOR_DBFS, silence_ratio: 1, clipped_ratio: 0 });
  });

  test('a full-scale square wave: 0 dBFS peak and RMS, every sample clipped, no block silent', () => {
    const [f] = audioFacts(pcm(Array.from({ length: 320 }, (_, i) => (i % 2 ? 32767 : -32768))), 1, [320]);
    assert.deepEqual(f, { duration_ms: 40, peak_dbfs: 0, rms_dbfs: 0, silence_ratio: 0, clipped_ratio: 1 });
  });

  test('the silence level is -50 dBFS per 20 ms block: a block just under it is silent, one just over is not', () => {
    const under = Math.floor(32768 * 10 ** (-50 / 20)) - 1; // constant amplitude: RMS = amplitude
    const over = Math.ceil(32768 * 10 ** (-50 / 20)) + 1;
    const [f] = audioFacts(pcm([...new Array<number>(160).fill(under), ...new Array<number>(160).fill(over)]), 1, [320]);
    assert.equal(f?.silence_ratio, 0.5);
  });

  test('interleaved channels are separate, and a leg counts only its own samples (not the padding)', () => {
    const stereo: number[] = [];
    for (let i = 0; i < 320; i++) stereo.push(1000, i < 160 ? 20000 : 0);
    const [a, b] = audioFacts(pcm(stereo), 2, [320, 160]);
    assert.equal(a?.duration_ms, 40);
    assert.equal(b?.duration_ms, 20);
    assert.equal(b?.silence_ratio, 0, 'the padded half is not counted');
    assert.equal(a?.peak_dbfs, Number((20 * Math.log10(1000 / 32768)).toFixed(2)));
  });

  test('the module’s text round-trips; anything else is not facts', () => {
    const facts = audioFacts(pcm(Array.from({ length: 480 }, (_, i) => Math.round(8000 * Math.sin(i / 5)))), 1, [480]);
    const text = formatAudio(facts);
    assert.match(text, /^duration_ms=60;peak_dbfs=-\d+\.\d{2};rms_dbfs=-\d+\.\d{2};silence_ratio=0\.0000;clipped_ratio=0\.000000$/);
    assert.deepEqual(parseAudio(text), facts);
    assert.deepEqual(parseAudio(`${text} ${text}`), [...facts, ...facts]);
    assert.equal(parseAudio(''), undefined);
    assert.equal(parseAudio('duration_ms=60;peak_dbfs=oops'), undefined);
  });
});
