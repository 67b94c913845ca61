/**
 * A conversion step that hangs ends at the dialplan's own bound, on a real Asterisk.
 *
 * Why this test takes ~100 s: the bound is perl's `alarm 100` in config/asterisk/extensions.conf,
 * and the point is to prove THAT line works with the real SHELL(), the real perl and the real hold
 * of [audio-convert-hold] (which must outlast the step, or the UserEvent is never sent). Shortening
 * it would mean changing the shipped file, or a perl double that rewrites its program — and then
 * the test would no longer prove the shipped bound. Only `untoast` is
 * a double here (it hangs for this one input, see setup.ts), the one part that has to misbehave.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { job } from '../helpers/stack.js';
import { HANG_MARK, originateConvert, realAsterisk, type RealAsterisk, type Result } from './setup.js';

const BOUND_S = 100;

let real: RealAsterisk;
before(async () => {
  real = await realAsterisk();
});
after(() => real?.close());

describe('a hung conversion step on a real Asterisk', () => {
  it(`ends at the dialplan's bound (${BOUND_S} s), a hung decoder and a blocked open alike: CONVERSION_FAILED (APPERROR), temp file removed, WAV untouched`, async () => {
    // JobTimeout above the bound: the outcome must come from the dialplan, not from the bridge's deadline.
    const stack = await real.stack({ worker: { JobTimeout: String(BOUND_S + 30), MaxAttempts: '1' } });
    await stack.startService();
    // Beside it, straight on AMI (the bridge refuses a path that is not a regular file): a GSM path
    // that is a FIFO no one writes. perl's open of it blocks before the decoder exists; the bound
    // is armed before that open, so this step ends at the same 100 s.
    const fifo = path.join(stack.data.gsmDir, `${stack.data.prefix}fifo.gsm`);
    execFileSync('mkfifo', [fifo]);
    const fifoWav = stack.data.wav('fifo');
    const started = Date.now();
    const onFifo = originateConvert(real.asterisk, fifo, fifoWav, (BOUND_S + 30) * 1000).then((r) => ({
      ...r,
      elapsed: (Date.now() - started) / 1000,
    }));
    await stack.publish(job(stack, HANG_MARK));
    await stack.results.onCount(1);
    const elapsed = (Date.now() - started) / 1000;
    const fifoOutcome = await onFifo;
    assert.equal(fifoOutcome.event?.get('Status'), 'FAILED', 'the FIFO step');
    assert.equal(fifoOutcome.event?.get('Detail'), 'APPERROR');
    assert.ok(fifoOutcome.elapsed >= BOUND_S && fifoOutcome.elapsed < BOUND_S + 10, `the FIFO step ended after ${fifoOutcome.elapsed} s`);
    assert.equal(existsSync(fifoWav), false);
    assert.ok(!real.decoderCalls().some((c) => c.includes(fifo)), 'no decoder was started for the FIFO');

    const [result] = stack.results.bodies<Result>();
    assert.equal(result?.error?.code, 'CONVERSION_FAILED', JSON.stringify(result));
    assert.match(result?.error?.message ?? '', /APPERROR/);
    assert.ok(elapsed >= BOUND_S && elapsed < BOUND_S + 10, `ended after ${elapsed} s, not at the ${BOUND_S} s bound`);
    assert.equal(existsSync(stack.data.wav(HANG_MARK)), false);
    const base = path.basename(stack.data.wav(HANG_MARK));
    assert.deepEqual(
      readdirSync(stack.data.wavDir).filter((f) => f.startsWith(`${base}.tmp-`)),
      [],
      'priority 15 removed the temp file',
    );
    await stack.dead.onCount(1);
  });

  it('after kill -9 the hung step runs on as an orphan; stopping the instance ends it', async () => {
    const own = await realAsterisk();
    let session = 0;
    try {
      const stack = await own.stack({ worker: { JobTimeout: String(BOUND_S + 30), MaxAttempts: '1', DrainTimeout: '1' } });
      await stack.startService();
      const hung = job(stack, `${HANG_MARK}-orphan`);
      await stack.publish(hung);
      await onCondition(() => own.decoderCalls().some((c) => c.includes(hung.gsm_path)));
      session = own.asterisk.pid;
      await own.asterisk.kill9();
      assert.ok(liveInSession(session).length >= 2, 'perl and the hung decoder outlive Asterisk (its session)');
    } finally {
      await own.close();
    }
    // own.close() stopped the instance: nothing of the killed Asterisk's session may be left running.
    assert.deepEqual(liveInSession(session), [], 'instance.sh stop killed the orphans');
  });
});

/** Processes (not zombies) of session `sid`: what an instance started and has not ended. */
function liveInSession(sid: number): string[] {
  return execFileSync('ps', ['-eo', 'pid=,sid=,stat=,args='])
    .toString()
    .split('\n')
    .filter((line) => {
      const [, s, stat] = line.trim().split(/\s+/);
      return Number(s) === sid && !stat?.startsWith('Z');
    });
}

/** Resolves once `check()` holds (a file another process writes: no event to wait on). */
async function onCondition(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 20));
}
