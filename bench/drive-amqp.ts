/**
 * The two designs driven through RabbitMQ by the same producer and results observer: the bridge
 * (`audio-convert run` in its own process) and the broker-only baseline (broker-worker.js).
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '../src/config.js';
import { brokerNames } from '../src/queue/broker.js';
import { serviceQueues } from '../src/worker/lanes.js';
import { jobIdOf, seqOf, type BenchBroker } from './amqp.js';
import { bridgeMemory, queueNames, startBridge, startWorker, writeBridgeConfig, type BridgeOptions } from './env.js';
import { measure, type MeasureSpec, type RunResult } from './measure.js';
import { sampleProc } from './procstat.js';

export interface AmqpRunSpec extends Omit<MeasureSpec, 'design' | 'pids'> {
  readonly broker: BenchBroker;
  readonly gsm: string;
  readonly wavFor: (seq: number) => string;
  /** Other processes to account (emulator, broker). */
  readonly pids: ReadonlyMap<string, number | undefined>;
}

const PREFIX = 'j';

/** Producer → queue → design → results exchange → observer, closed loop. */
async function driveThroughBroker(
  spec: AmqpRunSpec,
  design: 'bridge' | 'broker',
  queue: string,
  pids: ReadonlyMap<string, number | undefined>,
): Promise<RunResult> {
  let complete: (seq: number, ok: boolean) => void = () => undefined;
  await spec.broker.observeResults(queueNames(queue).results, (jobId, status) => complete(seqOf(PREFIX, jobId), status === 'converted'));
  try {
    return await measure({ ...spec, design, pids }, (done) => {
      complete = done;
      return (seq) => {
        spec.broker
          .publish(queue, { job_id: jobIdOf(PREFIX, seq), gsm_path: spec.gsm, wav_path: spec.wavFor(seq) })
          .catch(() => done(seq, false));
      };
    });
  } finally {
    await spec.broker.stopObservers();
  }
}

export interface BridgeRunSpec extends AmqpRunSpec, Omit<BridgeOptions, 'queue' | 'concurrency'> {
  readonly queue: string;
}

/** The bridge, started for this run with Concurrency = spec.concurrency. */
export async function runBridge(spec: BridgeRunSpec): Promise<RunResult & { logProblems: string[] }> {
  const bridge = await startBridge({ ...spec, queue: spec.queue });
  let result: RunResult;
  let hwm: number | undefined;
  let memory: Record<string, number> = {};
  try {
    result = await driveThroughBroker(spec, 'bridge', spec.queue, new Map([['bridge', bridge.pid], ...spec.pids]));
    hwm = sampleProc(bridge.pid)?.hwmMb;
    memory = await bridgeMemory(bridge.metricsPort);
  } finally {
    await bridge.stop();
    await removeBridgeObjects(spec);
  }
  return { ...result, ...(hwm === undefined ? {} : { rssPeakMb: hwm }), memoryMb: memory, logProblems: logProblems(bridge.logFile) };
}

/** The broker-only baseline at spec.concurrency. */
export async function runBrokerBaseline(spec: AmqpRunSpec & { readonly amqpUrl: string; readonly queue: string }): Promise<RunResult> {
  const names = queueNames(spec.queue);
  const worker = await startWorker('broker-worker.ts', [spec.amqpUrl, names.queue, names.results, String(spec.concurrency)]);
  let result: RunResult;
  let hwm: number | undefined;
  try {
    result = await driveThroughBroker(spec, 'broker', names.queue, new Map([['worker', worker.pid], ...spec.pids]));
    hwm = sampleProc(worker.pid)?.hwmMb;
  } finally {
    await worker.stop();
    await spec.broker.remove([names.queue], [names.results]);
  }
  return { ...result, mode: '-', ...(hwm === undefined ? {} : { rssPeakMb: hwm }) };
}

/** Every queue and exchange a bridge instance declares (input, DLQ, delay queues, results). */
export async function removeBridgeObjects(
  spec: Pick<BridgeRunSpec, 'broker' | 'queue' | 'workDir' | 'amqpUrl' | 'amiPort' | 'root' | 'logLevel'>,
): Promise<void> {
  const file = writeBridgeConfig({ ...spec, concurrency: 1 }, 9);
  const names = brokerNames(loadConfig(file, {}));
  await spec.broker.remove(serviceQueues(names), [names.resultsExchange]);
}

/** Lines the bridge logged at WARNING or worse (journald `<0>`…`<4>` prefixes), first 5. */
export function logProblems(logFile: string): string[] {
  let text = '';
  try {
    text = readFileSync(logFile, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => /^<[0-4]>/.test(line))
    .slice(0, 5);
}
