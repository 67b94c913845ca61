/**
 * app_convert under valgrind's memcheck, on a real Asterisk: every hostile input of
 * hostile-inputs.ts and a run of normal conversions (whole and cut-short recordings), then Asterisk
 * stopped so valgrind reports leaks. No invalid read or write, no use of uninitialised memory and no
 * definitely lost block may have a frame of app_convert.so in its stack: our module runs inside the
 * PBX, where such a bug takes every call down. (Errors of Asterisk itself, outside our frames, are
 * counted in the diagnostic but are not this module's to fix.)
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { hostileInputs } from './hostile-inputs.js';
import { startAsterisk, type AsteriskInstance } from './instance.js';
import { commandPath, originateConvert } from './setup.js';

const ROOT = '/var/local/auditorai';
const tag = `memcheck-${randomBytes(4).toString('hex')}`;
const gsmOf = (name: string): string => path.join(ROOT, 'gsm', `${tag}-${name}.gsm`);
const wavOf = (name: string): string => path.join(ROOT, 'wav', `${tag}-${name}.wav`);

let asterisk: AsteriskInstance | undefined;
let work = '';
let log = '';

before(async () => {
  const valgrind = commandPath('valgrind', 'valgrind');
  const sox = commandPath('sox', 'sox');
  work = mkdtempSync(path.join(tmpdir(), 'ac-memcheck-'));
  log = path.join(work, 'valgrind.log');
  mkdirSync(path.join(ROOT, 'gsm'), { recursive: true });
  mkdirSync(path.join(ROOT, 'wav'), { recursive: true });
  execFileSync(sox, ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', gsmOf('sine'), 'synth', '3', 'sine', '440']);
  asterisk = await startAsterisk({
    step: 'convert-app',
    env: {
      AUDIOCONVERT_ASTERISK_WRAPPER: [
        valgrind,
        `--log-file=${log}`,
        '--error-limit=no',
        '--num-callers=40',
        '--leak-check=full',
        '--show-leak-kinds=definite',
        '--errors-for-leak-kinds=definite',
        // Asterisk unloads its modules as it stops: keep app_convert's symbols for the leak stacks.
        '--keep-debuginfo=yes',
      ].join(' '),
      // valgrind slows Asterisk's start-up some 20×
      AUDIOCONVERT_ASTERISK_START_S: '300',
    },
  });
});

after(() => {
  for (const dir of ['gsm', 'wav'])
    for (const f of readdirSync(path.join(ROOT, dir)).filter((n) => n.startsWith(tag)))
      rmSync(path.join(ROOT, dir, f), { recursive: true, force: true });
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('app_convert under valgrind memcheck', () => {
  it('hostile inputs and normal conversions: no memory error and no leak in app_convert', async (t) => {
    const a = asterisk!;
    const ami = { port: a.port, user: a.user, secret: a.secret };
    const sine = readFileSync(gsmOf('sine'));
    for (const c of hostileInputs(sine, gsmOf('sine'))) {
      c.make(gsmOf(c.name));
      const { event } = await originateConvert(ami, gsmOf(c.name), wavOf(c.name), 120_000);
      assert.equal(event?.get('Detail'), c.detail, `${c.name}: ${event?.get('Reason')}`);
    }
    writeFileSync(gsmOf('cut'), sine.subarray(0, 33 * 77 + 9));
    for (let i = 0; i < 20; i++) {
      // every third a two-leg job: a 2-channel WAV, the shorter leg padded
      const legs = i % 3 === 2 ? [`GSM_PATH2=${gsmOf('cut')}`] : [];
      const { event } = await originateConvert(ami, gsmOf(i % 2 ? 'cut' : 'sine'), wavOf(`ok-${i}`), 120_000, legs);
      assert.equal(event?.get('Detail'), 'converted', event?.get('Reason'));
    }
    const { event: missingLeg } = await originateConvert(ami, gsmOf('sine'), wavOf('leg-corrupt'), 120_000, [
      `GSM_PATH2=${gsmOf('corrupt')}`,
    ]);
    assert.equal(missingLeg?.get('Detail'), 'input-corrupt', missingLeg?.get('Reason'));
    await a.stop();

    const text = readFileSync(log, 'utf8');
    assert.match(text, /ERROR SUMMARY/, 'valgrind wrote its summary (Asterisk ended under it)');
    // Each record starts with a line naming the problem; its stack follows, up to a blank `==pid==` line.
    const records = text.split(/\n==\d+== \n/);
    const problems = records.filter((r) =>
      /Invalid (read|write|free)|uninitialised|Conditional jump|Syscall param|definitely lost|Mismatched free|overlap/.test(r),
    );
    const ours = problems.filter((r) => r.includes('app_convert'));
    const summary = /ERROR SUMMARY: (\d+) errors/.exec(text)?.[1];
    assert.deepEqual(ours, [], 'no memcheck error or leak with app_convert in its stack');
    assert.ok(summary !== undefined, 'an ERROR SUMMARY line');
    t.diagnostic(`valgrind: ${summary} errors in all of Asterisk, ${ours.length} of them in app_convert`);
  });
});
