/**
 * The conversion step of config/asterisk/extensions.conf keeps its guarantees on a real Asterisk:
 * the WAV appears only by a rename of a finished temp file, a failed step leaves the target
 * untouched and no temp file, nothing from a job reaches the shell unchecked, and the outcome
 * arrives in the UserEvent, and the step's processes (started by SHELL(), i.e. popen(), which
 * hands them every descriptor Asterisk has open) hold none of Asterisk's descriptors. The time bound
 * (perl's `alarm 100`, then `kill 9` of the decoder) is checked as loaded by Asterisk; hung-step.test.ts
 * proves it ends a hung step (it takes the full 100 s).
 *
 * `untoast` is a double that logs what its stdin and stdout are (the step opens both: the GSM and the
 * temp file) and runs the real untoast, except for inputs whose name holds `partial-fail` (it writes
 * 1,000 bytes and exits 2) or `short-ok` (it writes 1,000 bytes and exits 0: what the real untoast
 * does when a read or write fails, so only the size check can catch it).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startAsterisk, type AsteriskInstance } from './instance.js';
import { commandPath, originateConvert } from './setup.js';

const ROOT = '/var/local/auditorai';
const tag = `stepg-${randomBytes(4).toString('hex')}`;
const gsmOf = (name: string): string => path.join(ROOT, 'gsm', `${tag}-${name}.gsm`);
const wavOf = (name: string): string => path.join(ROOT, 'wav', `${tag}-${name}.wav`);

let asterisk: AsteriskInstance | undefined;
let doubles = '';
let realSox = '';
let ami: { port: number; user: string; secret: string } = { port: 0, user: '', secret: '' };

before(async () => {
  doubles = mkdtempSync(path.join(tmpdir(), 'ac-stepg-bin-'));
  realSox = commandPath('sox', 'sox');
  const realUntoast = commandPath('untoast', 'libgsm-tools');
  writeFileSync(
    path.join(doubles, 'untoast'),
    `#!/bin/sh\nin=$(readlink /proc/$$/fd/0); out=$(readlink /proc/$$/fd/1)\n` +
      `printf '%s\\n' "$in > $out $*" >> '${doubles}/calls.log'\nls -l /proc/$$/fd/ >> '${doubles}/fds.log'\n` +
      `case "$in" in *partial-fail*) head -c 1000 /dev/zero; exit 2 ;; *short-ok*) head -c 1000 /dev/zero; exit 0 ;; esac\n` +
      `exec '${realUntoast}' "$@"\n`,
  );
  chmodSync(path.join(doubles, 'untoast'), 0o755);
  mkdirSync(path.join(ROOT, 'gsm'), { recursive: true });
  mkdirSync(path.join(ROOT, 'wav'), { recursive: true });
  for (const name of ['ok', 'partial-fail', 'short-ok'])
    execFileSync(realSox, ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', gsmOf(name), 'synth', '3', 'sine', '440']);
  // A GSM file whose last frame is cut short: sox and the step both drop the partial frame.
  writeFileSync(gsmOf('truncated'), readFileSync(gsmOf('ok')).subarray(0, 33 * 100 + 17));
  // A corrupt recording: frame 50 of 150 lacks GSM's signature nibble (sox writes an empty WAV and exits 0).
  const corrupt = readFileSync(gsmOf('ok'));
  corrupt[33 * 50] = 0;
  writeFileSync(gsmOf('corrupt'), corrupt);
  // A "recording" that is a directory: it exists (priority 8 lets it through), but no read succeeds.
  mkdirSync(gsmOf('is-a-dir'));
  asterisk = await startAsterisk({ pathPrepend: [doubles] });
  ami = { port: asterisk.port, user: asterisk.user, secret: asterisk.secret };
});

after(async () => {
  await asterisk?.stop();
  for (const sub of ['gsm', 'wav'])
    for (const f of readdirSync(path.join(ROOT, sub)))
      if (f.startsWith(tag)) rmSync(path.join(ROOT, sub, f), { recursive: true, force: true });
  if (doubles !== '') rmSync(doubles, { recursive: true, force: true });
});

const convert = (gsmPath: string, wavPath: string): ReturnType<typeof originateConvert> => originateConvert(ami, gsmPath, wavPath);

const decoderCalls = (): string[] =>
  existsSync(path.join(doubles, 'calls.log')) ? readFileSync(path.join(doubles, 'calls.log'), 'utf8').trim().split('\n') : [];
const tempsOf = (wav: string): string[] => readdirSync(path.dirname(wav)).filter((f) => f.startsWith(`${path.basename(wav)}.tmp-`));

describe('the conversion step on a real Asterisk', () => {
  it('is bounded: the step Asterisk loaded waits 100 s at most for the decoder, then kills it, and renames only after it succeeded with the whole output', async () => {
    const out = await asterisk!.cli('dialplan show convert@audio-convert');
    const step = out.split('\n').find((l) => l.includes('SHELL(') && l.includes('"untoast"'));
    assert.ok(step !== undefined, out);
    assert.match(
      step,
      // The bound is armed before perl opens anything (an open can block too: a FIFO, a hung NFS mount).
      /close H \} \$SIG\{ALRM\} = sub \{ \$dec && kill 9, \$dec; exit 1 \}; alarm 100; .* waitpid \$dec, 0; \$s = \$\?; \$dec = 0; \$s == 0 && -s \$tmp == 44 \+ \$n && rename\(\$tmp, \$wav\) && print "OK\\n"/,
    );
  });

  it('converts into a temp file beside the target and renames it: UserEvent OK with the size', async () => {
    const wav = wavOf('ok');
    const { jobId, event } = await convert(gsmOf('ok'), wav);
    assert.equal(event?.get('Status'), 'OK', JSON.stringify([...(event ?? [])]));
    assert.equal(event?.get('Detail'), 'SUCCESS');
    assert.equal(Number(event?.get('WavBytes')), statSync(wav).size);
    const bytes = readFileSync(wav);
    assert.equal(bytes.toString('latin1', 0, 4), 'RIFF');
    assert.equal(bytes.readUInt32LE(24), 8000, 'sample rate');
    assert.equal(bytes.readUInt16LE(34), 16, 'bits per sample');
    // The decoder never wrote the target itself: its output was the attempt's own temp name in the same directory.
    const call = decoderCalls().find((l) => l.startsWith(`${gsmOf('ok')} > `));
    assert.equal(call, `${gsmOf('ok')} > ${wav}.tmp-${jobId}.wav -l`);
    assert.deepEqual(tempsOf(wav), []);
  });

  it('writes the same WAV as sox, byte for byte, also for a file whose last frame is cut short', async () => {
    for (const name of ['ok', 'truncated']) {
      const wav = wavOf(name);
      const { event } = await convert(gsmOf(name), wav);
      assert.equal(event?.get('Status'), 'OK', name);
      const bySox = wavOf(`${name}-by-sox`);
      execFileSync(realSox, ['-t', 'gsm', gsmOf(name), '-r', '8000', '-c', '1', '-e', 'signed-integer', '-b', '16', '-t', 'wav', bySox]);
      assert.ok(readFileSync(wav).equals(readFileSync(bySox)), `${name}: the step's WAV differs from sox's`);
    }
    assert.equal(statSync(wavOf('truncated')).size, 44 + 100 * 320, 'the partial frame is dropped');
  });

  it("the step's processes hold none of Asterisk's descriptors (an orphan must not keep its AMI port)", () => {
    const fds = readFileSync(path.join(doubles, 'fds.log'), 'utf8');
    assert.ok(fds.includes('/proc/') || fds.includes('->'), fds);
    assert.doesNotMatch(fds, /socket:|timerfd|eventfd|astdb/, fds);
  });

  it('a step that fails half-way leaves the target untouched and no temp file: UserEvent FAILED APPERROR', async () => {
    const wav = wavOf('partial-fail');
    writeFileSync(wav, 'the previous WAV');
    const { event } = await convert(gsmOf('partial-fail'), wav);
    assert.equal(event?.get('Status'), 'FAILED');
    assert.equal(event?.get('Detail'), 'APPERROR');
    assert.equal(readFileSync(wav, 'utf8'), 'the previous WAV');
    assert.deepEqual(tempsOf(wav), []);
  });

  it('a decoder that exits 0 with a short output (a failed read or write) is a failure: the size is checked', async () => {
    const wav = wavOf('short-ok');
    writeFileSync(wav, 'the previous WAV');
    const { event } = await convert(gsmOf('short-ok'), wav);
    assert.ok(
      decoderCalls().some((l) => l.startsWith(`${gsmOf('short-ok')} > `)),
      'the double ran',
    );
    assert.equal(event?.get('Status'), 'FAILED');
    assert.equal(event?.get('Detail'), 'APPERROR');
    assert.equal(readFileSync(wav, 'utf8'), 'the previous WAV');
    assert.deepEqual(tempsOf(wav), []);
  });

  it('a corrupt recording (a bad frame) is a failure, not a short WAV: untoast stops there, the size check sees it', async () => {
    const { event } = await convert(gsmOf('corrupt'), wavOf('corrupt'));
    assert.ok(
      decoderCalls().some((l) => l.startsWith(`${gsmOf('corrupt')} > `)),
      'the real untoast ran',
    );
    assert.equal(event?.get('Status'), 'FAILED');
    assert.equal(event?.get('Detail'), 'APPERROR');
    assert.equal(existsSync(wavOf('corrupt')), false);
    assert.deepEqual(tempsOf(wavOf('corrupt')), []);
  });

  it('an input that exists but cannot be read (a directory named .gsm) is a failure, nothing is renamed', async () => {
    const { event } = await convert(gsmOf('is-a-dir'), wavOf('is-a-dir'));
    assert.equal(event?.get('Status'), 'FAILED');
    assert.equal(event?.get('Detail'), 'APPERROR');
    assert.equal(existsSync(wavOf('is-a-dir')), false);
    assert.deepEqual(tempsOf(wavOf('is-a-dir')), []);
  });

  it('shell syntax in a path never reaches the shell: invalid-path, nothing runs', async () => {
    const marker = path.join(tmpdir(), `${tag}-pwned`);
    const before = decoderCalls().length;
    const { event } = await convert(`${gsmOf('ok')};touch ${marker};#.gsm`, wavOf('inj'));
    assert.equal(event?.get('Status'), 'FAILED');
    assert.equal(event?.get('Detail'), 'invalid-path');
    assert.equal(existsSync(marker), false);
    assert.equal(decoderCalls().length, before, 'the decoder was not started');
  });
});
