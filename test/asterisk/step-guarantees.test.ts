/**
 * The conversion step of config/asterisk/extensions.conf keeps its guarantees on a real Asterisk:
 * the WAV appears only by a rename of a finished temp file, a failed step leaves the target
 * untouched and no temp file, nothing from a job reaches the shell unchecked, and the outcome
 * arrives in the UserEvent, and the step's processes (started by SHELL(), i.e. popen(), which
 * hands them every descriptor Asterisk has open) hold none of Asterisk's descriptors. The time bound
 * (perl's `alarm 100`, then `kill 9` of sox) is checked as loaded by Asterisk; hung-step.test.ts
 * proves it ends a hung step (it takes the full 100 s).
 *
 * `sox` is a double that logs its arguments and runs the real sox, except for inputs whose name
 * holds `partial-fail`: it then writes half a file to its output and exits 2.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startAsterisk, type AsteriskInstance } from './instance.js';

const ROOT = '/var/local/auditorai';
const tag = `stepg-${randomBytes(4).toString('hex')}`;
const gsmOf = (name: string): string => path.join(ROOT, 'gsm', `${tag}-${name}.gsm`);
const wavOf = (name: string): string => path.join(ROOT, 'wav', `${tag}-${name}.wav`);

let asterisk: AsteriskInstance | undefined;
let doubles = '';
let ami: { port: number; user: string; secret: string } = { port: 0, user: '', secret: '' };

before(async () => {
  doubles = mkdtempSync(path.join(tmpdir(), 'ac-stepg-bin-'));
  const realSox = execFileSync('sh', ['-c', 'command -v sox'], { encoding: 'utf8' }).trim();
  writeFileSync(
    path.join(doubles, 'sox'),
    `#!/bin/sh\nprintf '%s\\n' "$*" >> '${doubles}/calls.log'\nls -l /proc/$$/fd/ >> '${doubles}/fds.log'\n` +
      `case "$*" in *partial-fail*) for out; do :; done; head -c 1000 /dev/zero > "$out"; exit 2 ;; esac\n` +
      `exec '${realSox}' "$@"\n`,
  );
  chmodSync(path.join(doubles, 'sox'), 0o755);
  mkdirSync(path.join(ROOT, 'gsm'), { recursive: true });
  mkdirSync(path.join(ROOT, 'wav'), { recursive: true });
  for (const name of ['ok', 'partial-fail'])
    execFileSync(realSox, ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', gsmOf(name), 'synth', '3', 'sine', '440']);
  asterisk = await startAsterisk({ pathPrepend: [doubles] });
  ami = { port: asterisk.port, user: asterisk.user, secret: asterisk.secret };
});

after(async () => {
  await asterisk?.stop();
  for (const sub of ['gsm', 'wav'])
    for (const f of readdirSync(path.join(ROOT, sub))) if (f.startsWith(tag)) rmSync(path.join(ROOT, sub, f), { force: true });
  if (doubles !== '') rmSync(doubles, { recursive: true, force: true });
});

type Fields = Map<string, string>;

/** One Originate as the bridge sends it; resolves with the UserEvent of its ChannelId (after the Hangup). */
function convert(gsmPath: string, wavPath: string): Promise<{ jobId: string; event: Fields | undefined }> {
  const jobId = randomUUID();
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: ami.port });
    const timer = setTimeout(() => reject(new Error('no Hangup within 30 s')), 30_000);
    let text = '';
    let event: Fields | undefined;
    const send = (pairs: Array<[string, string]>): boolean => socket.write(`${pairs.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      for (let end = text.indexOf('\r\n\r\n'); end >= 0; end = text.indexOf('\r\n\r\n')) {
        const lines = text.slice(0, end).split('\r\n');
        text = text.slice(end + 4);
        const m: Fields = new Map(
          lines.filter((l) => l.includes(': ')).map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]),
        );
        if (m.get('Response') === 'Success' && m.get('ActionID') === 'login') {
          send([
            ['Action', 'Originate'],
            ['Channel', 'Local/s@audio-convert-hold'],
            ['Context', 'audio-convert'],
            ['Exten', 'convert'],
            ['Priority', '1'],
            ['ChannelId', jobId],
            ['Variable', `JOB_ID=${jobId}`],
            ['Variable', `GSM_PATH=${gsmPath}`],
            ['Variable', `WAV_PATH=${wavPath}`],
            ['Async', 'true'],
            ['ActionID', jobId],
          ]);
        } else if (m.get('Response') === 'Error') {
          reject(new Error(`AMI error: ${lines.join(' / ')}`));
        } else if (m.get('Event') === 'UserEvent' && m.get('Uniqueid') === jobId) {
          event = m;
        } else if (m.get('Event') === 'Hangup' && m.get('Uniqueid') === jobId) {
          clearTimeout(timer);
          socket.end();
          resolve({ jobId, event });
        }
      }
    });
    send([
      ['Action', 'Login'],
      ['Username', ami.user],
      ['Secret', ami.secret],
      ['ActionID', 'login'],
    ]);
  });
}

const soxCalls = (): string[] =>
  existsSync(path.join(doubles, 'calls.log')) ? readFileSync(path.join(doubles, 'calls.log'), 'utf8').trim().split('\n') : [];
const tempsOf = (wav: string): string[] => readdirSync(path.dirname(wav)).filter((f) => f.startsWith(`${path.basename(wav)}.tmp-`));

describe('the conversion step on a real Asterisk', () => {
  it('is bounded: the step Asterisk loaded waits 100 s at most for sox, then kills it, and renames only after sox succeeded', async () => {
    const out = await asterisk!.cli('dialplan show convert@audio-convert');
    const step = out.split('\n').find((l) => l.includes('SHELL(') && l.includes('"sox"'));
    assert.ok(step !== undefined, out);
    assert.match(
      step,
      /\$SIG\{ALRM\} = sub \{ kill 9, \$sox \}; alarm 100; waitpid \$sox, 0; \$\? == 0 && rename\(\$tmp, \$wav\) && print "OK\\n"/,
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
    // sox never wrote the target itself: its output was the attempt's own temp name in the same directory.
    const call = soxCalls().find((l) => l.includes(gsmOf('ok')));
    assert.ok(call?.endsWith(` ${wav}.tmp-${jobId}.wav`), call);
    assert.deepEqual(tempsOf(wav), []);
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

  it('shell syntax in a path never reaches the shell: invalid-path, nothing runs', async () => {
    const marker = path.join(tmpdir(), `${tag}-pwned`);
    const before = soxCalls().length;
    const { event } = await convert(`${gsmOf('ok')};touch ${marker};#.gsm`, wavOf('inj'));
    assert.equal(event?.get('Status'), 'FAILED');
    assert.equal(event?.get('Detail'), 'invalid-path');
    assert.equal(existsSync(marker), false);
    assert.equal(soxCalls().length, before, 'sox was not started');
  });
});
