/** Which attempts may leave a temp file, and the reaper never touching one before its time. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { nullLogger } from '../../src/log.js';
import { tempPathOf } from '../../src/characters.js';
import { mayLeaveTempFile, TempFileReaper } from '../../src/worker/tempfiles.js';

describe('temp files', () => {
  it('only attempts that ended without the dialplan saying so may leave one', () => {
    assert.equal(mayLeaveTempFile({ kind: 'converted', wavBytes: 1, detail: 'SUCCESS' }), false);
    assert.equal(
      mayLeaveTempFile({ kind: 'conversion-failed', inputMissing: false, invalidPath: false, detail: 'APPERROR', reason: '' }),
      false,
    );
    assert.equal(mayLeaveTempFile({ kind: 'rejected', message: 'Extension does not exist.' }), false);
    assert.equal(mayLeaveTempFile({ kind: 'start-failed', reason: 'x' }), false);
    assert.equal(mayLeaveTempFile({ kind: 'disconnected', message: 'x' }), true);
    assert.equal(mayLeaveTempFile({ kind: 'timeout', afterMs: 1 }), true);
    assert.equal(mayLeaveTempFile({ kind: 'hangup-without-result', cause: 'x' }), true);
    assert.equal(mayLeaveTempFile('abandoned'), true);
  });

  it("removes exactly the attempt's file once its time has come; one not due yet stays, and close() cancels it", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ac-tmpfiles-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const wav = path.join(dir, 'call.wav');
    const due = tempPathOf(wav, '11111111-1111-4111-8111-111111111111');
    const inFlight = tempPathOf(wav, '22222222-2222-4222-8222-222222222222');
    for (const f of [wav, due, inFlight]) writeFileSync(f, 'x');

    let now = 1_000_000;
    const { promise: removed, resolve: onRemoved } = Promise.withResolvers<string>();
    const reaper = new TempFileReaper(nullLogger(), { removeAfterMs: 120_000, now: () => now, onRemoved });
    reaper.schedule(wav, '22222222-2222-4222-8222-222222222222', now); // started now: due in 120 s
    now += 120_000;
    reaper.schedule(wav, '11111111-1111-4111-8111-111111111111', now - 120_000); // started 120 s ago: due now
    assert.equal(await removed, due);
    assert.equal(existsSync(inFlight), true, 'not due yet: untouched');
    assert.equal(existsSync(wav), true, 'the WAV itself is never touched');
    assert.equal(reaper.pending, 1);
    reaper.close();
    assert.equal(reaper.pending, 0);
  });
});
