/**
 * Convert() — app_convert (asterisk/app_convert.c), our module inside the PBX — on a real Asterisk:
 * built in the Asterisk tree by scripts/asterisk/build.sh and loaded, picked by the shipped dialplan
 * (priority 8, IFMODULE), byte-equal to untoast, and given the hostile files a recorder, an operator or
 * an attacker can leave: each must end as a failure with its own CONVERT_DETAIL, leave no file at the
 * WAV's name and no temp file, and leave Asterisk up (a crash of the module would take every call on
 * the host down). Then the out-of-tree build operators use (asterisk/Makefile), loaded the same way.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startAsterisk, type AsteriskInstance } from './instance.js';
import { audioFacts, wavHeader } from '../../src/audio.js';
import { hostileInputs } from './hostile-inputs.js';
import { commandPath, originateConvert, type Fields } from './setup.js';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '../..');
const ROOT = '/var/local/auditorai';
const tag = `convapp-${randomBytes(4).toString('hex')}`;
const gsmOf = (name: string): string => path.join(ROOT, 'gsm', `${tag}-${name}.gsm`);
const wavOf = (name: string): string => path.join(ROOT, 'wav', `${tag}-${name}.wav`);
const mounts: string[] = [];

let asterisk: AsteriskInstance;
let sine = Buffer.alloc(0);
let untoast = '';

/** The WAV the perl step writes for `gsm`: its 44-byte header, then what `untoast -l` decodes. */
function untoastWav(gsm: Buffer): Buffer {
  const whole = gsm.subarray(0, gsm.length - (gsm.length % 33));
  const samples = execFileSync(untoast, ['-l'], { input: whole, maxBuffer: 1 << 28 });
  const h = wavHeader(1, samples.length);
  return Buffer.concat([h, samples]);
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** The UserEvent's `Audio:` value: one `k=v;…` group per channel, separated by a space. */
function audioOf(text: string | undefined): Array<Record<string, number>> {
  return (text ?? '')
    .split(' ')
    .filter(Boolean)
    .map((c) => Object.fromEntries(c.split(';').map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1])])));
}

/** One job through the shipped dialplan on `on`: the UserEvent's fields (it must have sent one). */
async function convertOn(on: AsteriskInstance, gsm: string, wav: string): Promise<Fields> {
  const { event } = await originateConvert({ port: on.port, user: on.user, secret: on.secret }, gsm, wav);
  assert.ok(event, `a UserEvent for ${gsm}`);
  return event;
}

/** Asterisk is still the same process and answers its CLI. */
async function assertAlive(on: AsteriskInstance): Promise<void> {
  assert.ok(existsSync(`/proc/${on.pid}`), 'Asterisk is still running (same pid)');
  assert.match(await on.cli('core show uptime'), /System uptime/);
}

/** Nothing but `keep` in the WAV's directory carries this run's tag and the WAV's name: no temp file left. */
function assertNoTemp(wav: string): void {
  const base = path.basename(wav);
  const left = readdirSync(path.dirname(wav)).filter((f) => f.startsWith(`${base}.tmp-`));
  assert.deepEqual(left, [], `no temp file beside ${wav}`);
}

before(async () => {
  untoast = commandPath('untoast', 'libgsm-tools');
  const sox = commandPath('sox', 'sox');
  mkdirSync(path.join(ROOT, 'gsm'), { recursive: true });
  mkdirSync(path.join(ROOT, 'wav'), { recursive: true });
  execFileSync(sox, ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', gsmOf('sine'), 'synth', '3', 'sine', '440']);
  sine = readFileSync(gsmOf('sine'));
  asterisk = await startAsterisk({ step: 'convert-app' });
});

after(async () => {
  for (const m of mounts.reverse()) await run('umount', ['-l', m]).catch(() => undefined);
  await asterisk?.stop();
  for (const dir of ['gsm', 'wav'])
    for (const f of readdirSync(path.join(ROOT, dir)).filter((n) => n.startsWith(tag)))
      rmSync(path.join(ROOT, dir, f), { recursive: true, force: true });
});

describe('Convert() on a real Asterisk', () => {
  it('is loaded, with its documentation', async () => {
    assert.match(await asterisk.cli('module show like app_convert'), /app_convert\.so\s+Convert\(\): GSM recordings to WAV/);
    assert.match(await asterisk.cli('core show application Convert'), /Convert a raw GSM recording into a WAV file/);
  });

  it('converts: the WAV is byte-equal to untoast’s, the UserEvent says converted with the size', async () => {
    const ev = await convertOn(asterisk, gsmOf('sine'), wavOf('sine'));
    assert.equal(ev.get('Status'), 'OK');
    assert.equal(ev.get('Detail'), 'converted');
    const wav = readFileSync(wavOf('sine'));
    assert.equal(Number(ev.get('WavBytes')), wav.length);
    assert.equal(wav.length, 44 + 320 * (sine.length / 33));
    assert.ok(wav.equals(untoastWav(sine)), 'the same bytes as the perl step’s untoast');
    assertNoTemp(wavOf('sine'));
  });

  it('a truncated last frame: the whole frames convert, byte-equal to untoast’s', async () => {
    const cut = sine.subarray(0, 33 * 100 + 17);
    writeFileSync(gsmOf('cut'), cut);
    const ev = await convertOn(asterisk, gsmOf('cut'), wavOf('cut'));
    assert.equal(ev.get('Detail'), 'converted');
    const wav = readFileSync(wavOf('cut'));
    assert.equal(wav.length, 44 + 320 * 100);
    assert.ok(wav.equals(untoastWav(cut)));
  });

  it('replaces an existing WAV atomically (rename over it)', async () => {
    writeFileSync(wavOf('again'), 'old');
    writeFileSync(gsmOf('again'), sine);
    const ev = await convertOn(asterisk, gsmOf('again'), wavOf('again'));
    assert.equal(ev.get('Detail'), 'converted');
    assert.ok(readFileSync(wavOf('again')).equals(untoastWav(sine)));
  });

  it('creates a missing dated directory tree, each directory 2775, without any process', async () => {
    const dir = path.join(ROOT, 'wav', `${tag}-tree`, '2026', '12', '07');
    const wav = path.join(dir, 'call.wav');
    const ev = await convertOn(asterisk, gsmOf('sine'), wav);
    assert.equal(ev.get('Detail'), 'converted', ev.get('Reason'));
    for (const d of [dir, path.dirname(dir), path.dirname(path.dirname(dir))])
      assert.equal(statSync(d).mode & 0o7777, 0o2775, `${d} is 2775`);
    assert.ok(readFileSync(wav).equals(untoastWav(sine)));
  });

  it('reports the SHA-256 of the input (all of it, a cut-short last frame too) and of the WAV', async () => {
    const cut = sine.subarray(0, 33 * 120 + 11);
    writeFileSync(gsmOf('hash'), cut);
    const ev = await convertOn(asterisk, gsmOf('hash'), wavOf('hash'));
    assert.equal(ev.get('Detail'), 'converted');
    assert.equal(ev.get('InputSha256'), sha256(cut), 'sha256sum of the GSM file');
    assert.equal(ev.get('WavSha256'), sha256(readFileSync(wavOf('hash'))), 'sha256sum of the WAV file');
  });

  it('reports audio facts: a tone is loud and not silent, digital silence is all silent', async () => {
    const sox = commandPath('sox', 'sox');
    execFileSync(sox, ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', gsmOf('quiet'), 'synth', '2', 'sine', '440', 'vol', '0']);
    const tone = audioOf((await convertOn(asterisk, gsmOf('sine'), wavOf('tone'))).get('Audio'));
    const quiet = audioOf((await convertOn(asterisk, gsmOf('quiet'), wavOf('quiet'))).get('Audio'));
    assert.equal(tone.length, 1);
    assert.equal(tone[0]!['duration_ms'], 3000);
    assert.ok(tone[0]!['peak_dbfs']! > -3 && tone[0]!['rms_dbfs']! > -7, JSON.stringify(tone));
    assert.equal(tone[0]!['silence_ratio'], 0);
    assert.equal(quiet[0]!['duration_ms'], 2000);
    assert.equal(quiet[0]!['silence_ratio'], 1, JSON.stringify(quiet));
    assert.ok(quiet[0]!['rms_dbfs']! < -50);
    // the facts are the samples' own: recompute them from the WAV
    assert.deepEqual(tone, audioFacts(readFileSync(wavOf('tone')).subarray(44), 1, [24000]));
  });

  it('two legs → one 2-channel WAV: channel i is leg i, the shorter padded with silence, a hash and facts per leg', async () => {
    const short = sine.subarray(0, 33 * 100);
    writeFileSync(gsmOf('leg-a'), sine);
    writeFileSync(gsmOf('leg-b'), short);
    const { event } = await originateConvert(
      { port: asterisk.port, user: asterisk.user, secret: asterisk.secret },
      gsmOf('leg-a'),
      wavOf('stereo'),
      30_000,
      [`GSM_PATH2=${gsmOf('leg-b')}`],
    );
    assert.equal(event?.get('Detail'), 'converted', event?.get('Reason'));
    const wav = readFileSync(wavOf('stereo'));
    assert.equal(wav.readUInt16LE(22), 2, 'two channels');
    assert.equal(wav.readUInt32LE(28), 32000, 'byte rate of 8 kHz 16-bit stereo');
    assert.equal(wav.length, 44 + 150 * 320 * 2);
    const a = untoastWav(sine).subarray(44);
    const b = Buffer.concat([untoastWav(short).subarray(44), Buffer.alloc(50 * 320)]);
    const left = Buffer.alloc(a.length);
    const right = Buffer.alloc(a.length);
    for (let i = 0; i < a.length / 2; i++) {
      left.writeInt16LE(wav.readInt16LE(44 + 4 * i), 2 * i);
      right.writeInt16LE(wav.readInt16LE(46 + 4 * i), 2 * i);
    }
    assert.ok(left.equals(a), 'channel 0 is leg 1, byte for byte its mono conversion');
    assert.ok(right.equals(b), 'channel 1 is leg 2, then zeros');
    assert.equal(event?.get('InputSha256'), `${sha256(sine)} ${sha256(short)}`);
    assert.equal(event?.get('WavSha256'), sha256(wav));
    assert.deepEqual(
      audioOf(event?.get('Audio')).map((c) => c['duration_ms']),
      [3000, 2000],
    );
    assert.deepEqual(audioOf(event?.get('Audio')), audioFacts(wav.subarray(44), 2, [24000, 16000]), 'the facts are each leg’s own');
  });

  it('a two-leg job whose second leg is missing fails input-missing; without app_convert the perl step writes the same stereo WAV', async () => {
    const ami = { port: asterisk.port, user: asterisk.user, secret: asterisk.secret };
    const gone = await originateConvert(ami, gsmOf('sine'), wavOf('gone-leg'), 30_000, [`GSM_PATH2=${gsmOf('no-such-leg')}`]);
    assert.equal(gone.event?.get('Detail'), 'input-missing');
    const cut = sine.subarray(0, 33 * 90 + 20);
    writeFileSync(gsmOf('leg-cut'), cut);
    const app = await originateConvert(ami, gsmOf('sine'), wavOf('app-legs'), 30_000, [`GSM_PATH2=${gsmOf('leg-cut')}`]);
    assert.equal(app.event?.get('Detail'), 'converted');
    await asterisk.cli('module unload app_convert.so');
    try {
      const perl = await originateConvert(ami, gsmOf('sine'), wavOf('perl-legs'), 30_000, [`GSM_PATH2=${gsmOf('leg-cut')}`]);
      assert.equal(perl.event?.get('Detail'), 'SUCCESS', 'the perl step’s two-leg program (priority 26)');
      assert.equal(perl.event?.get('Priority'), '16');
    } finally {
      await asterisk.cli('module load app_convert.so');
    }
    assert.ok(readFileSync(wavOf('perl-legs')).equals(readFileSync(wavOf('app-legs'))), 'byte-equal 2-channel WAVs from both steps');
  });

  describe('hostile inputs: a failure each, with its detail; no WAV, no temp file; Asterisk stays up', () => {
    const cases = hostileInputs(sine, gsmOf('sine'));
    for (const c of cases) {
      it(`${c.name} → ${c.detail}`, async () => {
        const gsm = gsmOf(c.name);
        const wav = wavOf(c.name);
        c.make(gsm);
        const started = Date.now();
        const ev = await convertOn(asterisk, gsm, wav);
        assert.equal(ev.get('Status'), 'FAILED');
        assert.equal(ev.get('Detail'), c.detail, ev.get('Reason'));
        assert.match(ev.get('Reason') ?? '', c.reason);
        assert.equal(ev.get('WavBytes'), '0');
        assert.ok(Date.now() - started < 10_000, 'answered at once (nothing blocked the channel thread)');
        assert.ok(!existsSync(wav), 'nothing at the WAV’s name');
        assertNoTemp(wav);
        await assertAlive(asterisk);
      });
    }

    it('an output directory that cannot be written (read-only mount) → output-failed', async () => {
      const dir = path.join(ROOT, 'wav', `${tag}-ro`);
      mkdirSync(dir);
      await run('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', dir]);
      mounts.push(dir);
      const ev = await convertOn(asterisk, gsmOf('sine'), path.join(dir, 'x.wav'));
      assert.equal(ev.get('Detail'), 'output-failed');
      assert.match(ev.get('Reason') ?? '', /Read-only file system/);
      await assertAlive(asterisk);
    });

    it('a full disk (a 16 KiB tmpfs, a 48 KB WAV) → output-failed, the partial temp file removed', async () => {
      const dir = path.join(ROOT, 'wav', `${tag}-full`);
      mkdirSync(dir);
      await run('mount', ['-t', 'tmpfs', '-o', 'size=16k', 'tmpfs', dir]);
      mounts.push(dir);
      const ev = await convertOn(asterisk, gsmOf('sine'), path.join(dir, 'x.wav'));
      assert.equal(ev.get('Detail'), 'output-failed');
      assert.match(ev.get('Reason') ?? '', /No space left on device/);
      assert.deepEqual(readdirSync(dir), [], 'neither the WAV nor the temp file');
      await assertAlive(asterisk);
    });

    it('an output directory that cannot be created (a file in its way) → output-dir-failed', async () => {
      writeFileSync(path.join(ROOT, 'wav', `${tag}-file`), 'x');
      const ev = await convertOn(asterisk, gsmOf('sine'), path.join(ROOT, 'wav', `${tag}-file`, 'sub', 'x.wav'));
      assert.equal(ev.get('Detail'), 'output-dir-failed');
      assert.match(ev.get('Reason') ?? '', /cannot create the output directory/);
      await assertAlive(asterisk);
    });

    it('after all of them a normal job still converts', async () => {
      const ev = await convertOn(asterisk, gsmOf('sine'), wavOf('after'));
      assert.equal(ev.get('Detail'), 'converted');
      assert.ok(readFileSync(wavOf('after')).equals(untoastWav(sine)));
    });
  });

  it('an unreadable input (mode 000, another owner; Asterisk as a root that obeys file modes) → input-unreadable', async () => {
    const gsm = gsmOf('unreadable');
    writeFileSync(gsm, sine);
    chownSync(gsm, 65534, 65534);
    chmodSync(gsm, 0o000);
    const drop = '-dac_override,-dac_read_search';
    const strict = await startAsterisk({
      step: 'convert-app',
      env: { AUDIOCONVERT_ASTERISK_WRAPPER: `setpriv --inh-caps=${drop} --bounding-set=${drop}` },
    });
    try {
      const ev = await convertOn(strict, gsm, wavOf('unreadable'));
      assert.equal(ev.get('Detail'), 'input-unreadable');
      assert.match(ev.get('Reason') ?? '', /Permission denied/);
      await assertAlive(strict);
    } finally {
      await strict.stop();
    }
  });

  it('module unload / load at run time: the dialplan falls back to the perl step and comes back', async () => {
    await asterisk.cli('module unload app_convert.so');
    try {
      const perl = await convertOn(asterisk, gsmOf('sine'), wavOf('unloaded'));
      assert.equal(perl.get('Detail'), 'SUCCESS', 'the perl step answered (Detail SUCCESS, not converted)');
    } finally {
      await asterisk.cli('module load app_convert.so');
    }
    const back = await convertOn(asterisk, gsmOf('sine'), wavOf('reloaded'));
    assert.equal(back.get('Detail'), 'converted');
    assert.ok(readFileSync(wavOf('unloaded')).equals(readFileSync(wavOf('reloaded'))), 'both steps wrote the same bytes');
  });
});

describe('the out-of-tree build (asterisk/Makefile), as an operator makes it', () => {
  it('compiles with warnings as errors against the installed headers, loads, and converts', async () => {
    const prefix = (await run('bash', [path.join(REPO, 'scripts/asterisk/prefix.sh')])).stdout.trim();
    const out = mkdtempSync(path.join(tmpdir(), 'ac-oot-'));
    const moddir = path.join(out, 'modules');
    mkdirSync(moddir);
    try {
      await run('make', ['-C', path.join(REPO, 'asterisk'), `ASTERISK_PREFIX=${prefix}`, `O=${out}`]);
      // Every module of the prefix but the in-tree app_convert, and this build in its place.
      const shipped = path.join(prefix, 'lib/asterisk/modules');
      for (const m of readdirSync(shipped).filter((n) => n !== 'app_convert.so')) symlinkSync(path.join(shipped, m), path.join(moddir, m));
      symlinkSync(path.join(out, 'app_convert.so'), path.join(moddir, 'app_convert.so'));
      const oot = await startAsterisk({ step: 'convert-app', env: { AUDIOCONVERT_ASTERISK_MODDIR: moddir } });
      try {
        assert.match(await oot.cli('module show like app_convert'), /app_convert\.so/);
        const ev = await convertOn(oot, gsmOf('sine'), wavOf('oot'));
        assert.equal(ev.get('Detail'), 'converted');
        assert.ok(readFileSync(wavOf('oot')).equals(untoastWav(sine)));
      } finally {
        await oot.stop();
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
