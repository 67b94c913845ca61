/**
 * Issue #10 item 3: temp files left behind when Asterisk dies mid-step. The bridge knows each
 * attempt's temp path (`${WAV_PATH}.tmp-${attempt UUID}.wav`, extensions.conf priority 11); an
 * attempt that ends without a result gets exactly that file removed once the dialplan's step bound
 * has passed since it started (here shortened for the test). After the crash and the retry, no
 * temp file remains; the retry's own attempt is never touched.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { nullLogger } from '../../src/log.js';
import { start } from '../../src/main.js';
import { tempPathOf } from '../../src/characters.js';
import { TEMP_FILE_REMOVE_AFTER_MS } from '../../src/worker/tempfiles.js';
import { job, makeStack } from '../helpers/stack.js';

describe('temp files of attempts that died with Asterisk', { timeout: 60_000 }, () => {
  it("the default wait is derived from the dialplan's 100 s bound (+5 s for the step-timeout variant) plus a margin", () => {
    assert.equal(TEMP_FILE_REMOVE_AFTER_MS, 120_000);
  });

  it('after a kill -9 of Asterisk mid-step and a retry, no temp file remains', async () => {
    const stack = await makeStack({ emulator: { mode: 'instant', latencyMs: 60_000 }, config: { worker: { JobTimeout: '60' } } });
    after(() => stack.close());
    const service = await start(stack.config, { logger: nullLogger(), version: 'test', tempFileRemoveAfterMs: 300 });
    stack.service = service;
    if (!service.readiness().ready) await once(service.events, 'consuming');

    const body = job(stack, 'crash-1');
    // The first attempt: Asterisk has started writing its temp file when it is killed.
    const [first] = (await Promise.all([once(stack.emulator, 'originate'), stack.publish(body)]))[0] as [{ channelId: string }];
    const orphan = tempPathOf(body.wav_path, first.channelId);
    writeFileSync(orphan, 'RIFF partial');
    const removed = once(service.events, 'tempFileRemoved');
    const retried = once(stack.emulator, 'originate');
    stack.emulator.setLatency(0);
    await stack.emulator.restart({ graceful: false, downMs: 100 });

    const [second] = (await retried) as [{ channelId: string }];
    assert.notEqual(second.channelId, first.channelId, 'the retry is a new attempt with its own temp file');
    await stack.results.onCount(1);
    assert.equal(stack.results.bodies<{ status: string }>()[0]?.status, 'converted');
    assert.deepEqual(await removed, [orphan]);
    assert.equal(existsSync(orphan), false);
    assert.deepEqual(
      readdirSync(stack.data.wavDir).filter((f) => f.includes('.tmp-')),
      [],
      'no temp file remains',
    );
  });
});
