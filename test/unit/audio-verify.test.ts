// The verified output of docs/messages.md: a WAV's header against its size and its inputs' frames.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { audioFlags, checkHeader, measureCustody, verifyWav, wavHeader } from '../../src/audio.js';

const header = wavHeader;

const dir = mkdtempSync(path.join(tmpdir(), 'ac-verify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('verified output', () => {
  test('a mono WAV of 160 samples per frame passes; the size comes back', () => {
    assert.deepEqual(checkHeader(header(1, 320 * 150), 44 + 320 * 150, { frames: [150] }), { ok: true, bytes: 48044 });
  });

  test('a stereo WAV is as long as the longer leg', () => {
    assert.deepEqual(checkHeader(header(2, 640 * 150), 44 + 640 * 150, { frames: [150, 100] }), { ok: true, bytes: 96044 });
  });

  test('each lie of a header is named', () => {
    const cases: Array<[Buffer, number, RegExp]> = [
      [Buffer.alloc(44), 44, /not a RIFF\/WAVE file/],
      [header(1, 320 * 150), 44 + 320 * 149, /RIFF size says 48044 bytes, the file has 47724/],
      [header(2, 320 * 150), 44 + 320 * 150, /2 channel\(s\), not PCM 8000 Hz 16-bit 1/],
      [header(1, 320 * 149), 44 + 320 * 149, /has 23840 samples per channel, its input 24000/],
    ];
    const h = header(1, 320 * 150);
    h.writeUInt32LE(320 * 149, 40);
    cases.push([h, 44 + 320 * 150, /data chunk does not end the file/]);
    for (const [buf, size, problem] of cases) {
      const r = checkHeader(buf, size, { frames: [150] });
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.problem, problem);
    }
  });

  test('a file shorter than a header, or none at all', () => {
    writeFileSync(path.join(dir, 'short.wav'), 'RIFF');
    assert.match(JSON.stringify(verifyWav(path.join(dir, 'short.wav'), { frames: [1] })), /shorter than its header/);
    assert.match(JSON.stringify(verifyWav(path.join(dir, 'none.wav'), { frames: [1] })), /cannot be read: ENOENT/);
  });

  test('custody for a step that reports none: the files’ sha256 and the samples’ facts', () => {
    const gsm = Buffer.alloc(33 * 2 + 5, 0xd0);
    const samples = Buffer.alloc(640);
    writeFileSync(path.join(dir, 'in.gsm'), gsm);
    writeFileSync(path.join(dir, 'out.wav'), Buffer.concat([header(1, 640), samples]));
    const c = measureCustody([path.join(dir, 'in.gsm')], path.join(dir, 'out.wav'), { frames: [2] });
    assert.deepEqual(c.inputSha256, [createHash('sha256').update(gsm).digest('hex')]);
    assert.equal(
      c.wavSha256,
      createHash('sha256')
        .update(Buffer.concat([header(1, 640), samples]))
        .digest('hex'),
    );
    assert.equal(c.audio[0]?.duration_ms, 40);
    assert.deepEqual(audioFlags(c.audio[0]), ['silent']);
  });

  test('flags: silent at 98 % silent blocks, clipped at 0.1 % full-scale samples', () => {
    const base = { duration_ms: 1000, peak_dbfs: -3, rms_dbfs: -20, silence_ratio: 0.5, clipped_ratio: 0 };
    assert.deepEqual(audioFlags(base), []);
    assert.deepEqual(audioFlags({ ...base, silence_ratio: 0.98 }), ['silent']);
    assert.deepEqual(audioFlags({ ...base, silence_ratio: 0.979 }), []);
    assert.deepEqual(audioFlags({ ...base, clipped_ratio: 0.001 }), ['clipped']);
  });
});
