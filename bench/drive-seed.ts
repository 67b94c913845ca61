/**
 * The seed's design (seed/audio-convert.md, its Python sketch), re-created: for EVERY message a
 * new AMI connection, Login, a synchronous Originate (no `Async:` header — what its SimpleAction
 * sent, seed-originate-sync.txt), Logoff. Two forms:
 * - ack-immediately (as written): the message is acked once the Originate's Response arrives,
 *   before the conversion is done (nothing tells anyone whether it worked);
 * - fixed: the same per-message connection, but it waits for the call's Hangup (after the
 *   dialplan's UserEvent) before Logoff and ack.
 * The seed published no result message; a job is "done" when its message is acked. It runs in
 * the bench process (the seed was one consumer process too), `concurrency` messages at once.
 * Deviation: the shipped dialplan's variables and ChannelId instead of the seed's ARG1/ARG2
 * (its `Convert()` does not exist), so the emulator really converts and the fixed form can
 * correlate; the per-message cost — connect, login, Originate, logoff — is the seed's.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { ConsumerStatus } from 'rabbitmq-client';
import { action, headerIn, login, MiniAmi, originatePairs } from './ami-mini.js';
import { jobIdOf, seqOf, type BenchBroker, type JobBody } from './amqp.js';
import { sleep } from './env.js';
import { measure, type MeasureSpec, type RunResult } from './measure.js';

export interface SeedSpec extends Omit<MeasureSpec, 'design'> {
  readonly form: 'ack-immediately' | 'fixed';
  readonly amiPort: number;
  readonly broker: BenchBroker;
  readonly queue: string;
  readonly gsm: string;
  /** The WAV of job `seq`: unique per job here, so finished conversions can be counted. */
  readonly wavFor: (seq: number) => string;
}

export async function runSeed(spec: SeedSpec): Promise<RunResult> {
  const prefix = 's';
  await spec.broker.declareQueue(spec.queue);
  let complete: (seq: number, ok: boolean) => void = () => undefined;
  const consumer = spec.broker.connection.createConsumer(
    { queue: spec.queue, queueOptions: { durable: true }, qos: { prefetchCount: spec.concurrency }, concurrency: spec.concurrency },
    async (message) => {
      const job = message.body as JobBody;
      const seq = seqOf(prefix, job.job_id);
      const ok = await seedJob(spec.amiPort, job, spec.form === 'fixed').then(
        () => true,
        () => false,
      );
      complete(seq, ok);
      return ConsumerStatus.ACK;
    },
  );
  consumer.on('error', (error: unknown) => process.stderr.write(`seed consumer: ${String(error)}\n`));
  const started = Date.now();
  const result = await measure({ ...spec, design: `seed-${spec.form}` }, (done) => {
    complete = done;
    return (seq) => {
      spec.broker
        .publish(spec.queue, { job_id: jobIdOf(prefix, seq), gsm_path: spec.gsm, wav_path: spec.wavFor(seq) })
        .catch(() => done(seq, false));
    };
  });
  await consumer.close();
  if (spec.form === 'ack-immediately' && spec.mode === 'real') {
    // The acked conversions are still running in "Asterisk": wait for them, or they would slow the next run.
    const ackedAt = Date.now();
    const finished = await waitForWavs(spec.wavFor(0), result.submitted, 180_000);
    return {
      ...result,
      notes: {
        conversions_running_at_last_ack: result.submitted - finished.atStart,
        conversions_finished_s_after_last_ack: (Date.now() - ackedAt) / 1000,
        wall_s: (Date.now() - started) / 1000,
      },
    };
  }
  return result;
}

/** One message, the seed's way. Resolves after Logoff; rejects on any error. */
function seedJob(port: number, job: JobBody, waitForCompletion: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const uid = randomUUID();
    let step: 'login' | 'originate' | 'call' | 'logoff' = 'login';
    let ami: MiniAmi | undefined;
    const fail = (error: Error): void => {
      ami?.socket.destroy();
      reject(error);
    };
    const logoff = (): void => {
      step = 'logoff';
      ami!.write(
        action([
          ['Action', 'Logoff'],
          ['ActionID', 'logoff'],
        ]),
      );
    };
    MiniAmi.connect(port, () => undefined).then(
      (connected) => {
        ami = connected;
        connected.socket.on('error', fail);
        connected.socket.on('close', () => {
          if (step !== 'logoff') fail(new Error(`AMI closed during ${step}`));
        });
        login(connected).then(() => {
          step = 'originate';
          connected.setHandler((text, start, end) => {
            if (step === 'originate' && text.startsWith('Response: ', start)) {
              if (!text.startsWith('Response: Success', start)) return fail(new Error('Originate refused'));
              if (waitForCompletion) step = 'call';
              else logoff();
            } else if (step === 'call' && text.startsWith('Event: Hangup\r\n', start) && headerIn(text, start, end, 'Uniqueid: ') === uid) {
              logoff();
            } else if (step === 'logoff' && text.startsWith('Response: Goodbye', start)) {
              connected.socket.end();
              resolve();
            }
          });
          connected.write(
            action([...originatePairs(uid, job.gsm_path, job.wav_path, false), ['CallerID', 'AudioConverter'], ['ActionID', 'originate']]),
          );
        }, fail);
      },
      (error: unknown) => reject(error instanceof Error ? error : new Error(String(error))),
    );
  });
}

/** Polls the WAV directory until `count` files of this run exist (or the timeout passes). */
async function waitForWavs(sample: string, count: number, timeoutMs: number): Promise<{ atStart: number }> {
  const dir = path.dirname(sample);
  const stem = path.basename(sample).replace(/0\.wav$/, '');
  const counted = (): number => readdirSync(dir).filter((f) => f.startsWith(stem) && f.endsWith('.wav')).length;
  const atStart = counted();
  const deadline = Date.now() + timeoutMs;
  while (counted() < count && Date.now() < deadline) await sleep(100);
  return { atStart };
}
