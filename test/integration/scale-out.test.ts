/**
 * Scale-out: two bridges (child processes of the built CLI), each with its own "Asterisk", on ONE
 * queue. RabbitMQ shares the work; when one bridge is SIGKILLed mid-run its unacked jobs go back
 * to the queue and the other finishes them. Every job id ends converted.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AsteriskEmulator } from '../../src/emulator/server.js';
import { cliBridge } from '../helpers/cli-bridge.js';
import { job, makeStack, type Collector } from '../helpers/stack.js';
import { readWav } from '../helpers/wav.js';

type Result = { job_id: string; status: string };

/** Resolves once results for every id in `ids` have arrived (duplicates from redelivery allowed). */
async function onAllIds(results: Collector, ids: ReadonlySet<string>): Promise<void> {
  let want = ids.size;
  for (;;) {
    await results.onCount(want);
    const seen = new Set(results.bodies<Result>().map((r) => r.job_id));
    const missing = [...ids].filter((id) => !seen.has(id)).length;
    if (missing === 0) return;
    want = results.messages.length + missing;
  }
}

/** What one emulator was asked to convert, and which of those calls are still running. */
function track(emulator: AsteriskEmulator): { wavs: Set<string>; running: () => string[] } {
  const wavs = new Set<string>();
  const live = new Map<string, string>();
  emulator.on('originate', (info) => {
    const wav = info.variables.get('WAV_PATH') ?? '';
    wavs.add(wav);
    live.set(info.channelId, wav);
  });
  emulator.on('jobEnd', (info) => live.delete(info.channelId));
  return { wavs, running: () => [...live.values()] };
}

describe('scale-out: two bridges, two Asterisks, one queue', { timeout: 60_000 }, () => {
  it('work is shared; a SIGKILLed bridge’s unacked jobs finish on the other; all converted', async () => {
    const stack = await makeStack({ emulator: { mode: 'real', latencyMs: 100 }, config: { worker: { Concurrency: '4' } } });
    after(() => stack.close());
    const emulatorB = await AsteriskEmulator.start({ root: stack.data.root, mode: 'real', latencyMs: 100 });
    after(() => emulatorB.close());
    const onA = track(stack.emulator);
    const onB = track(emulatorB);
    const bridgeA = cliBridge(stack, stack.emulator.port, 'bridge-a');
    const bridgeB = cliBridge(stack, emulatorB.port, 'bridge-b');
    after(() => bridgeA.remove());
    after(() => bridgeB.remove());
    const ready = [bridgeA.onConsuming(), bridgeB.onConsuming()];
    bridgeA.start();
    bridgeB.start();
    await Promise.all(ready);

    const names = Array.from({ length: 200 }, (_, i) => `scale-${i}`);
    const wavToId = new Map(names.map((name) => [stack.data.wav(name), name]));
    // Kill A on its 30th Originate: that job (and any other whose call is still running: A cannot
    // have published its result yet) is certainly unacked on A.
    let inFlightOnA: string[] = [];
    const killed = new Promise<void>((resolve) => {
      let n = 0;
      const onOriginate = (): void => {
        if (++n !== 30) return;
        stack.emulator.off('originate', onOriginate);
        inFlightOnA = onA.running().map((w) => wavToId.get(w) ?? w);
        bridgeA.signal('SIGKILL');
        resolve();
      };
      stack.emulator.on('originate', onOriginate);
    });
    for (const name of names) await stack.publish(job(stack, name), { messageId: name });
    await killed;
    await onAllIds(stack.results, new Set(names));

    const results = stack.results.bodies<Result>();
    assert.ok(
      results.every((r) => r.status === 'converted'),
      JSON.stringify(results.filter((r) => r.status !== 'converted')),
    );
    assert.ok(onA.wavs.size >= 30 && onB.wavs.size >= 30, `work shared: A originated ${onA.wavs.size}, B ${onB.wavs.size}`);
    assert.ok(inFlightOnA.length >= 1, 'A had jobs in flight when it was killed');
    for (const id of inFlightOnA) assert.ok(onB.wavs.has(stack.data.wav(id)), `${id}, unacked on A when it died, was converted by B`);
    for (const name of names) {
      const wav = readWav(stack.data.wav(name));
      assert.deepEqual([wav.format, wav.channels, wav.sampleRate, wav.bitsPerSample], [1, 1, 8000, 16], name);
    }
    assert.equal(stack.dead.messages.length, 0);
    const exit = bridgeB.onExit();
    bridgeB.signal('SIGTERM');
    assert.equal((await exit)?.code, 0);
    assert.equal(await stack.queueDepth(), 0, 'nothing left in the queue');
  });
});
