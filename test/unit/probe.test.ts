/** The deployment probe's lifecycle (issue #10 item 4): stop() also stops a probe already in flight. */
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { AttemptRequest, OriginateOutcome } from '../../src/worker/originate.js';
import { nullLogger } from '../../src/log.js';
import { DeploymentProbe } from '../../src/worker/probe.js';

/** An originator whose attempts resolve when the test says so. */
function fakeOriginator(): {
  run(r: AttemptRequest): Promise<OriginateOutcome>;
  calls: number;
  onCall(): Promise<void>;
  answer(o: OriginateOutcome): void;
} {
  let resolveRun: ((o: OriginateOutcome) => void) | undefined;
  let waiter: (() => void) | undefined;
  const fake = {
    calls: 0,
    run(): Promise<OriginateOutcome> {
      fake.calls++;
      waiter?.();
      return new Promise<OriginateOutcome>((resolve) => (resolveRun = resolve));
    },
    onCall: (): Promise<void> => new Promise<void>((resolve) => (waiter = resolve)),
    answer(outcome: OriginateOutcome): void {
      resolveRun?.(outcome);
    },
  };
  return fake;
}

const REFUSED: OriginateOutcome = { kind: 'rejected', message: 'Extension does not exist.' };

/** A probe stopped while its first Originate is in flight; `fixed` records any report. */
async function stoppedWhileProbing(): Promise<{ originator: ReturnType<typeof fakeOriginator>; probe: DeploymentProbe; fixed: unknown[] }> {
  const originator = fakeOriginator();
  const fixed: unknown[] = [];
  const probe = new DeploymentProbe(originator, nullLogger(), () => fixed.push(1), { baseMs: 1, capMs: 1 });
  const called = originator.onCall();
  probe.start();
  await called;
  probe.stop();
  return { originator, probe, fixed };
}

describe('DeploymentProbe', () => {
  it('stop() while a probe is in flight: no report, no rescheduling (it used to probe forever after dispose)', async () => {
    const { originator, probe, fixed } = await stoppedWhileProbing();
    originator.answer(REFUSED);
    // Let the probe's continuation run (a few event-loop turns, no timer involved).
    for (let i = 0; i < 5; i++) await turn();
    assert.equal(probe.idle, true, 'nothing scheduled after stop()');
    assert.equal(originator.calls, 1);
    assert.deepEqual(fixed, []);
  });

  it('an answer that arrives after stop() is not reported as fixed', async () => {
    const { originator, probe, fixed } = await stoppedWhileProbing();
    originator.answer({ kind: 'conversion-failed', inputMissing: false, invalidPath: true, detail: 'invalid-path', reason: '' });
    for (let i = 0; i < 5; i++) await turn();
    assert.deepEqual(fixed, []);
    assert.equal(probe.idle, true);
  });

  it('keeps probing while refused, and reports fixed once the dialplan answers', async (t) => {
    const originator = fakeOriginator();
    const { promise: fixed, resolve: onFixed } = Promise.withResolvers<void>();
    const probe = new DeploymentProbe(originator, nullLogger(), () => onFixed(), { baseMs: 1, capMs: 1 });
    // The probe's timer is unref'd (it must not hold a stopping process): hold the loop open meanwhile.
    const keepAlive = setInterval(() => undefined, 60_000);
    t.after(() => clearInterval(keepAlive));
    let called = originator.onCall();
    probe.start();
    await called;
    called = originator.onCall();
    originator.answer(REFUSED);
    await called;
    originator.answer({ kind: 'conversion-failed', inputMissing: false, invalidPath: true, detail: 'invalid-path', reason: '' });
    await fixed;
    assert.equal(originator.calls, 2);
    for (let i = 0; i < 5; i++) await turn();
    assert.equal(probe.idle, true, 'stops after fixed');
  });
});
