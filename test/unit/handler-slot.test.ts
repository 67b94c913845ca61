// The handler holds a Concurrency slot from the checks to the attempt's outcome only: the result's
// publish, its confirm and the ack happen outside it. And a job still waiting for a slot when the
// service stops goes back untouched.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { ConsumerStatus, type AsyncMessage } from 'rabbitmq-client';
import type { OriginateOutcome } from '../../src/worker/originate.js';
import { wavHeader } from '../../src/audio.js';
import { createLogger } from '../../src/log.js';
import { ClassGate } from '../../src/worker/lanes.js';
import { createJobHandler, type HandlerDeps, type JobCounters } from '../../src/worker/handler.js';

/** A real directory: the handler resolves the roots on disk. */
const ROOT = mkdtempSync(path.join(os.tmpdir(), 'ac-slot-'));
after(() => rmSync(ROOT, { recursive: true, force: true }));
const noCounters: JobCounters = {
  received: () => undefined,
  inFlight: () => undefined,
  completed: () => undefined,
  retried: () => undefined,
  deadLettered: () => undefined,
  requeued: () => undefined,
  unexpected: () => undefined,
  audio: () => undefined,
  unsettled: () => undefined,
};
const quiet = createLogger({
  level: 'emerg',
  format: 'json',
  stream: new Writable({ write: (_c, _e, cb) => cb() }),
});

function message(n: number): AsyncMessage {
  const body = { job_id: `j${n}`, gsm_path: `${ROOT}/gsm/missing-${n}.gsm`, wav_path: `${ROOT}/wav/out-${n}.wav` };
  return { body, messageId: `j${n}`, headers: {}, redelivered: false } as unknown as AsyncMessage;
}

interface Rig {
  readonly handler: (m: AsyncMessage) => Promise<ConsumerStatus>;
  readonly gate: ClassGate;
  /** Jobs that reached Asterisk, in order. */
  readonly originated: string[];
  /** Resolve the attempt of a job. */
  readonly outcomes: Map<string, (o: OriginateOutcome) => void>;
  /** Resolve the result's publish (the confirm) of a job. */
  readonly confirms: Map<string, () => void>;
}

function rig(slots: number, abandon = new AbortController().signal, logger = quiet): Rig {
  const gate = new ClassGate(slots);
  const originated: string[] = [];
  const outcomes = new Map<string, (o: OriginateOutcome) => void>();
  const confirms = new Map<string, () => void>();
  const deps: HandlerDeps = {
    queueName: 'Q',
    rules: { allowedRoots: [ROOT], inputExtension: '.gsm', outputExtension: '.wav' },
    jobTimeoutMs: 60_000,
    maxAttempts: 3,
    settleTimeMs: 0,
    settleMaxMs: 600_000,
    originator: {
      run: ({ wavPath }) => {
        const id = /out-(\d+)/.exec(wavPath)![1]!;
        // The WAV the step would leave (its input does not exist here: no frames), for the handler's proof.
        mkdirSync(path.dirname(wavPath), { recursive: true });
        writeFileSync(wavPath, emptyWav());
        originated.push(`j${id}`);
        const d = Promise.withResolvers<OriginateOutcome>();
        outcomes.set(`j${id}`, d.resolve);
        return d.promise;
      },
    },
    publisher: {
      publishResult: (_status, result) => {
        const d = Promise.withResolvers<void>();
        confirms.set((result as { job_id: string }).job_id, () => d.resolve());
        return d.promise;
      },
      publishRetry: () => Promise.resolve(),
      publishDeadLetter: () => Promise.resolve(),
    },
    counters: noCounters,
    logger,
    amiConnected: () => true,
    pauseIntake: () => undefined,
    abandon,
    tempFiles: { schedule: () => undefined },
    acquireSlot: () => gate.acquire('live'),
  };
  return { handler: createJobHandler(deps), gate, originated, outcomes, confirms };
}

/** A valid WAV with no samples: what a converter writes for an input of no frames. */
const emptyWav = (): Buffer => wavHeader(1, 0);

/** Convert()'s report for that WAV: sizes, hashes and facts, so the handler measures nothing itself. */
const CONVERTED: OriginateOutcome = {
  kind: 'converted',
  wavBytes: 44,
  detail: 'converted',
  facts: {
    inputSha256: 'a'.repeat(64),
    wavSha256: 'b'.repeat(64),
    audio: 'duration_ms=0;peak_dbfs=-120.00;rms_dbfs=-120.00;silence_ratio=0.0000;clipped_ratio=0.000000',
  },
};

/** Lets promise callbacks (and the handler's awaits) run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('the Concurrency slot', () => {
  it('is freed when the attempt ends: the next job reaches Asterisk while the previous result still waits for its confirm', async () => {
    const r = rig(1);
    const first = r.handler(message(1));
    const second = r.handler(message(2));
    await settle();
    assert.deepEqual(r.originated, ['j1'], 'one slot: the second job waits');
    r.outcomes.get('j1')!(CONVERTED);
    await settle();
    assert.ok(r.confirms.has('j1'), "the first job's result is being published");
    assert.deepEqual(r.originated, ['j1', 'j2'], 'the second job started before that publish was confirmed');
    assert.equal(r.gate.busy, 1);
    r.confirms.get('j1')!();
    assert.equal(await first, ConsumerStatus.ACK);
    r.outcomes.get('j2')!(CONVERTED);
    await settle();
    r.confirms.get('j2')!();
    assert.equal(await second, ConsumerStatus.ACK);
    assert.equal(r.gate.busy, 0);
  });

  it('an invalid message takes no slot: it is dead-lettered at once while every slot is busy with a job on Asterisk', async () => {
    const r = rig(1);
    const running = r.handler(message(1));
    await settle();
    assert.equal(r.gate.busy, 1);
    const invalid = { body: { gsm_path: 'relative.gsm' }, messageId: 'bad', headers: {}, redelivered: false } as unknown as AsyncMessage;
    const ended = r.handler(invalid);
    await settle();
    assert.ok(r.confirms.has('bad'), 'its failed result is being published while the only slot is still held');
    r.confirms.get('bad')!();
    assert.equal(await ended, ConsumerStatus.ACK);
    r.outcomes.get('j1')!(CONVERTED);
    await settle();
    r.confirms.get('j1')!();
    assert.equal(await running, ConsumerStatus.ACK);
  });

  it('a job still waiting for a slot when the service stops (the gate closes) goes back untouched; the running one finishes', async () => {
    const lines: Record<string, unknown>[] = [];
    const capture = createLogger({
      level: 'info',
      format: 'json',
      stream: new Writable({
        write: (chunk: Buffer, _e, cb) => (lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>), cb()),
      }),
    });
    const r = rig(1, undefined, capture);
    const running = r.handler(message(1));
    const waiting = r.handler(message(2));
    await settle();
    r.gate.close();
    assert.equal(await waiting, ConsumerStatus.REQUEUE);
    const back = lines.find((l) => l['message'] === 'job returned to the queue');
    assert.equal(back?.['job_id'], 'j2');
    assert.equal(back['reason'], 'the service is stopping: handed back before it started', 'it never started: it was not stopped mid-way');
    assert.deepEqual(r.originated, ['j1']);
    r.outcomes.get('j1')!(CONVERTED);
    await settle();
    r.confirms.get('j1')!();
    assert.equal(await running, ConsumerStatus.ACK);
  });
});
