/**
 * After an AMI reconnect the bridge retries a job with a fresh attempt UUID, while the first
 * attempt's conversion may still be running in Asterisk (an orphan: its events are never replayed).
 * Two attempts then write the same WAV. That is harmless because each attempt converts into its
 * own temp file (`<wav>.tmp-<attempt uuid>.wav`) and renames it onto the WAV: the WAV is always a
 * complete file from one attempt, whichever finishes last, and no temp file is left behind.
 *
 * The first attempt is held in its step by a sox wrapper the test drives: it writes only after the
 * retry has converted, stops half way, then finishes; later attempts run sox at once.
 */
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { tempPathOf } from '../../src/characters.js';
import type { AsteriskEmulator } from '../../src/emulator/server.js';
import type { JobResultInfo, OriginateInfo } from '../../src/emulator/types.js';
import { repoRoot } from '../../scripts/chaos/bridge.js';
import { job, makeStack, type Stack } from '../helpers/stack.js';
import { readWav } from '../helpers/wav.js';

type Result = { job_id: string; status: string; attempts: number };

/**
 * A sox stand-in. Its first run (the first attempt) waits for `go`, writes a partial output file,
 * waits for `finish`, then runs sox; later runs are plain sox. The test drives the two steps.
 */
function slowFirstSox(): { soxPath: string; go(): void; finish(): void; remove(): void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'ac-slow-sox-'));
  const soxPath = path.join(dir, 'sox');
  writeFileSync(
    soxPath,
    [
      '#!/bin/sh',
      'dir=$(dirname "$0")',
      'for out; do :; done # the last argument: where sox is told to write',
      'if mkdir "$dir/first" 2>/dev/null; then',
      '  while [ ! -e "$dir/go" ]; do sleep 0.02; done',
      '  printf "RIFF partial, still converting" > "$out"',
      '  while [ ! -e "$dir/finish" ]; do sleep 0.02; done',
      'fi',
      'exec sox "$@"',
      '',
    ].join('\n'),
  );
  chmodSync(soxPath, 0o755);
  const touch = (name: string) => (): void => writeFileSync(path.join(dir, name), '');
  return { soxPath, go: touch('go'), finish: touch('finish'), remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Resolves when a file named `name` appears in `dir` (fs.watch: no polling in the test). */
function onFileCreated(dir: string, name: string): Promise<void> {
  return new Promise((resolve) => {
    const watcher = watch(dir, (_event, file) => {
      if (file !== name || !existsSync(path.join(dir, name))) return;
      watcher.close();
      resolve();
    });
  });
}

function onEvent<T extends OriginateInfo | JobResultInfo>(
  emulator: AsteriskEmulator,
  name: 'originate' | 'conversionStart' | 'jobEnd',
  match: (info: T) => boolean,
): Promise<T> {
  return new Promise((resolve) => {
    const listener = (info: T): void => {
      if (!match(info)) return;
      emulator.off(name, listener as never);
      resolve(info);
    };
    emulator.on(name, listener as never);
  });
}

async function overlap(interrupt: (stack: Stack) => Promise<void> | void): Promise<void> {
  const sox = slowFirstSox();
  after(() => sox.remove());
  const stack = await makeStack({
    emulator: { mode: 'real', soxPath: sox.soxPath },
    config: { worker: { JobTimeout: '20', MaxAttempts: '3' } },
  });
  after(() => stack.close());
  await stack.startService();
  const first = onEvent<OriginateInfo>(stack.emulator, 'originate', () => true);
  const second = first.then((a) => onEvent<OriginateInfo>(stack.emulator, 'originate', (b) => b.channelId !== a.channelId));
  const firstStarted = onEvent(stack.emulator, 'conversionStart', () => true);
  const body = job(stack, 'overlap');
  await stack.publish(body);

  const attempt1 = (await first).channelId;
  await firstStarted;
  await interrupt(stack);
  const attempt1Ended = onEvent<JobResultInfo>(stack.emulator, 'jobEnd', (info) => info.channelId === attempt1);
  const attempt2 = (await second).channelId;
  assert.notEqual(attempt2.toLowerCase(), attempt1.toLowerCase(), 'the retry is a fresh attempt UUID');
  assert.equal((await second).variables.get('WAV_PATH'), body.wav_path, 'same output file');

  // The retry converted while the first attempt is still running (blocked in its step).
  await stack.results.onCount(1);
  const [result] = stack.results.bodies<Result>();
  assert.equal(result?.status, 'converted');
  assert.equal(result?.attempts, 2);
  assert.ok(Math.abs(readWav(body.wav_path).seconds - 1) < 0.05, 'the WAV is the retry’s complete file');

  // The orphan now writes, half way: into its own temp file, so the WAV stays the complete one.
  const temp1 = tempPathOf(body.wav_path, attempt1);
  const writing = onFileCreated(stack.data.wavDir, path.basename(temp1));
  sox.go();
  await writing;
  assert.ok(Math.abs(readWav(body.wav_path).seconds - 1) < 0.05, 'while an orphan writes, the WAV is still complete');

  // The orphan finishes and renames its own complete file over the WAV.
  sox.finish();
  const orphan = await attempt1Ended;
  assert.equal(orphan.status, 'OK', 'the orphaned conversion ran to the end');
  const wav = readWav(body.wav_path);
  assert.deepEqual([wav.format, wav.channels, wav.sampleRate, wav.bitsPerSample], [1, 1, 8000, 16]);
  assert.ok(Math.abs(wav.seconds - 1) < 0.05, `complete: ${wav.seconds} s`);
  assert.deepEqual(readdirSync(stack.data.wavDir), ['overlap.wav'], 'no temp file left behind');
  assert.equal(stack.results.messages.length, 1, 'the orphan’s late events produced no second result');
  assert.equal(stack.dead.messages.length, 0);
}

describe('overlapping attempts on one WAV (orphaned conversion + retry)', { timeout: 30_000 }, () => {
  it('the shipped dialplan converts into a per-attempt temp file and renames it (as the emulator does)', () => {
    const dialplan = readFileSync(path.join(repoRoot(), 'config', 'asterisk', 'extensions.conf'), 'utf8');
    assert.match(dialplan, /Set\(TMP_PATH=\$\{WAV_PATH\}\.tmp-\$\{JOB_ID\}\.wav\)/);
    // perl: untoast writes $tmp (opened as O); only after it exited 0 with the whole output is $tmp renamed onto $wav
    // and OK printed ($tmp, $wav: perl's arguments).
    assert.match(dialplan, /open\(O, ">", \$tmp\).* \$s == 0 && -s \$tmp == 44 \+ \$n && rename\(\$tmp, \$wav\) && print "OK\\n"' -- /);
    assert.match(dialplan, /' -- \$\{GSM_PATH\} \$\{TMP_PATH\} \$\{WAV_PATH\}\)\}\)/);
    assert.equal(tempPathOf('/d/wav/a.wav', 'U'), '/d/wav/a.wav.tmp-U.wav');
  });

  it('AMI dropped mid-conversion: the orphan keeps running in Asterisk, the retry converts first; the WAV stays complete', async () => {
    await overlap((stack) => stack.emulator.dropConnections());
  });

  it('Asterisk restarted mid-conversion: the orphan finishes after the retry; the WAV stays complete', async () => {
    await overlap((stack) => stack.emulator.restart({ downMs: 200 }));
  });
});
