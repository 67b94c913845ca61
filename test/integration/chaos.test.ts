/**
 * A small chaos run inside `npm test` (the full one is `npm run chaos`, figures in
 * docs/reliability.md): 300 jobs through the built CLI while AMI drops, "Asterisk" restarts
 * (gracefully and kill -9), goes silent, hangs its conversions, and the bridge is SIGKILLed,
 * SIGTERMed and double-signalled, each followed by a restart. RabbitMQ itself is left alone:
 * other tests share it. Every job id must end converted (a valid WAV and a result) or
 * dead-lettered with a reason; duplicates from redelivery are allowed and reported.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LOCAL_FAULTS } from '../../scripts/chaos/faults.js';
import { formatReport } from '../../scripts/chaos/report.js';
import { runChaos } from '../../scripts/chaos/run.js';
import { AMQP_URL, requireRabbit } from '../helpers/stack.js';

describe('chaos (small): faults that leave the broker alone', { timeout: 90_000 }, () => {
  it('300 jobs: every job id ends converted or dead-lettered, never missing', async (t) => {
    await requireRabbit();
    const seed = Number(process.env['AUDIOCONVERT_CHAOS_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
    const lines: string[] = [];
    const report = await runChaos({
      jobs: 300,
      seed,
      faultPhaseMs: 40_000,
      minRounds: 1,
      publishOverMs: 8000,
      faultEveryMs: 600,
      settleMs: 30_000,
      kinds: LOCAL_FAULTS,
      timing: {
        asteriskDownMs: [100, 800],
        silenceMs: [300, 1500],
        hangMs: [500, 2000],
        bridgeDownMs: [0, 300],
        brokerDownMs: [0, 0],
        termExitMs: 10_000,
      },
      mode: 'real',
      latencyMs: 30,
      amqpUrl: AMQP_URL,
      rabbitNode: undefined,
      worker: { Concurrency: '8', JobTimeout: '1.5', MaxAttempts: '8', RetryDelay: '100ms', RetryMaxDelay: '1', DrainTimeout: '2' },
      conversionTimeoutMs: 3000,
      log: (line) => lines.push(line),
    });
    t.diagnostic(`seed ${seed} (AUDIOCONVERT_CHAOS_SEED=${seed} repeats the fault sequence)`);
    for (const line of formatReport(report).split('\n')) t.diagnostic(line);
    const { tally } = report;
    assert.equal(tally.published, 300);
    assert.equal(tally.missing, 0, `missing: ${tally.missingIds.join(', ')}`);
    assert.equal(tally.wrongOutcomes, 0, tally.wrongOutcomeExamples.join('; '));
    assert.equal(tally.converted + Object.values(tally.deadLettered).reduce((a, b) => a + b, 0), 300);
    assert.deepEqual(report.badWavs, [], 'every converted WAV is complete');
    assert.equal(report.wavsChecked, tally.converted);
    assert.deepEqual(report.tempFilesLeft, [], 'no attempt left a temp file');
    assert.deepEqual(report.anomalies, [], 'SIGTERM always exits 0, the bridge never exits by itself, nothing odd on stderr');
    for (const kind of LOCAL_FAULTS) assert.ok((report.faults[kind] ?? 0) >= 1, `fault ${kind} was injected`);
    assert.ok(report.ok);
  });
});
