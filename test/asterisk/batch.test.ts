/**
 * Batches end to end on a real Asterisk: 200 jobs, then Asterisk restarted (`core restart now`)
 * and killed (`kill -9`, then started again) in the middle of a batch — with nothing lost. Once
 * with each conversion step of the shipped dialplan: Convert() (app_convert loaded) and the perl step.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { job, onServiceEvent, type ExternalStack } from '../helpers/stack.js';
import { readWav } from '../helpers/wav.js';
import { realAsterisk, type RealAsterisk, type Result } from './setup.js';

/** Every job converted exactly as asked, each WAV valid, nothing dead-lettered or left in the queue. */
async function assertNothingLost(stack: ExternalStack, names: readonly string[]): Promise<void> {
  await stack.service?.close();
  assert.equal(await stack.queueDepth(), 0, 'nothing left in the queue');
  const results = stack.results.bodies<Result>();
  assert.equal(results.length, names.length, 'one result per job');
  const failed = results.filter((r) => r.status !== 'converted');
  assert.deepEqual(failed, [], 'every result is converted');
  assert.deepEqual(new Set(results.map((r) => r.job_id)), new Set(names), 'a result for every job');
  for (const name of names) {
    const wav = readWav(stack.data.wav(name));
    assert.deepEqual([wav.format, wav.channels, wav.sampleRate, wav.bitsPerSample], [1, 1, 8000, 16], name);
    assert.ok(Math.abs(wav.seconds - 1) < 0.05, `${name}: ${wav.seconds} s`);
  }
  assert.equal(stack.dead.messages.length, 0, 'nothing dead-lettered');
}

/**
 * Takes Asterisk away in the middle of a batch and waits for the bridge to see it go and log in
 * again; resolves with the names of every job published. Jobs keep being published, two slots'
 * worth ahead of the results, until the bridge sees the loss: so the outage lands mid-batch however
 * fast the host converts or however long `outage` takes to act (the CLI call can take seconds),
 * and the test checks that it did — a restart after the last job would prove nothing.
 */
async function outageMidBatch(stack: ExternalStack, tag: string, outage: () => Promise<void>): Promise<string[]> {
  const names: string[] = [];
  const publishOne = async (): Promise<void> => {
    const name = `${tag}-${names.length}`;
    names.push(name);
    await stack.publish(job(stack, name));
  };
  while (names.length < 20) await publishOne();
  await stack.results.onCount(10);
  let doneAtLoss: number | undefined;
  const lost = onServiceEvent(stack, 'ami', false).then(() => (doneAtLoss = stack.results.messages.length));
  const back = lost.then(() => onServiceEvent(stack, 'ami', true));
  const outageDone = outage();
  const ahead = 16;
  while (doneAtLoss === undefined && names.length < 2000) {
    const done = stack.results.messages.length;
    if (names.length - done < ahead) await publishOne();
    else await Promise.race([lost, stack.results.onCount(done + 1)]);
  }
  await outageDone;
  assert.ok(doneAtLoss !== undefined, `the bridge saw Asterisk go away within ${names.length} jobs`);
  assert.ok(doneAtLoss < names.length, `Asterisk went away mid-batch (${doneAtLoss} of ${names.length} results in)`);
  await back;
  await stack.results.onCount(names.length);
  const reconnects = await stack.service!.metrics.registry.getSingleMetricAsString('audioconvert_ami_reconnects_total');
  assert.match(reconnects, / [1-9]\d*$/m, 'the bridge counted the reconnect');
  return names;
}

/** Publishes `n` jobs named `<tag>-<i>`; resolves with their names. */
async function publishBatch(stack: ExternalStack, tag: string, n: number): Promise<string[]> {
  const names = Array.from({ length: n }, (_, i) => `${tag}-${i}`);
  for (const name of names) await stack.publish(job(stack, name));
  return names;
}

for (const step of ['convert-app', 'perl'] as const)
  describe(`batches on a real Asterisk, ${step} step`, () => {
    let real: RealAsterisk;
    before(async () => {
      real = await realAsterisk({ step });
    });
    after(() => real?.close());

    it('200 jobs → 200 valid WAVs and 200 converted results, all acked', async () => {
      const stack = await real.stack({ worker: { Concurrency: '8' } });
      await stack.startService();
      const names = await publishBatch(stack, 'batch', 200);
      await stack.results.onCount(200);
      await assertNothingLost(stack, names);
    });

    it('`core restart now` mid-batch: the bridge reconnects, every job is converted, nothing lost', async () => {
      const stack = await real.stack({ worker: { Concurrency: '8', MaxAttempts: '5' } });
      await stack.startService();
      // Asterisk closes the console connection as it restarts: the CLI call may report an error.
      const names = await outageMidBatch(stack, 'restart', () =>
        real.asterisk.cli('core restart now').then(
          () => undefined,
          () => undefined,
        ),
      );
      await assertNothingLost(stack, names);
    });

    it('`kill -9` mid-batch, then started again: every job is converted, nothing lost', async () => {
      const stack = await real.stack({ worker: { Concurrency: '8', MaxAttempts: '5' } });
      await stack.startService();
      const names = await outageMidBatch(stack, 'kill9', async () => {
        await real.asterisk.kill9();
        await real.asterisk.startAgain();
      });
      await assertNothingLost(stack, names);
    });
  });
