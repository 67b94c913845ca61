/**
 * `npm run bench -- --asterisk`: the direct driver (`limit`: Originates on one AMI socket, no
 * RabbitMQ) and the bridge against a REAL Asterisk, at each concurrency, on the same files, in one
 * run, repeated and interleaved (limit then bridge at each C, every repetition) so the ratios
 * compare rows measured minutes apart at most. Asterisk's CPU per conversion is its process and
 * every child it reaped (sh, perl, sox …). With `--dialplans a.conf,b.conf` the direct
 * driver also measures each variant dialplan, reloaded into the same instance, in the same rounds.
 */
import path from 'node:path';
import { affinityOf, pin, type CpuSplit } from './affinity.js';
import { onInterrupt } from './interrupt.js';
import type { BenchBroker } from './amqp.js';
import type { AsteriskData, AsteriskTarget } from './asterisk.js';
import { runBridge } from './drive-amqp.js';
import { runLimit, type LimitSpec } from './drive-limit.js';
import type { RunResult } from './measure.js';
import { waitQuiet } from './procstat.js';
import { fmt, median } from './stats.js';

export interface AsteriskBenchOptions {
  readonly target: AsteriskTarget;
  readonly data: AsteriskData;
  readonly concurrencies: readonly number[];
  readonly repeat: number;
  readonly warmupMs: number;
  /** Jobs completed before a row is measured (at least C): the same for both designs. */
  readonly warmupJobs: number;
  readonly measureMs: number;
  /** Variant dialplan files measured with the direct driver besides the shipped one (throwaway instance only). */
  readonly dialplans: readonly string[];
  /** The shipped dialplan's file (reloaded before its rows when variants are measured). */
  readonly shipped: string;
  readonly bridge: boolean;
  /** Steady rate of the latency rows; default half the bridge's saturated rate at C=16. */
  readonly rate: number | undefined;
  readonly broker: BenchBroker;
  readonly brokerPid: number | undefined;
  readonly amqpUrl: string;
  readonly runId: string;
  readonly logLevel: string;
  readonly workDir: string;
  /** Extra node flags for each bridge process (`--bridge-node-flags`, e.g. `--cpu-prof --cpu-prof-dir=…`). */
  readonly bridgeNodeFlags: readonly string[];
  /** The bridge's saturated rows keep this many jobs per slot waiting in its queue (a backlog). */
  readonly queuedPerSlot: number;
  readonly quietWaitMs: number;
  /**
   * `--split-cpus`: Asterisk and the driver being measured (the bridge, or the direct driver in
   * this process) on the first CPU; RabbitMQ and the producer on the others, as if on another host.
   */
  readonly split: CpuSplit | undefined;
  readonly log: (line: string) => void;
}

/** The mode column of a row: `asterisk` for the shipped dialplan, `asterisk:<file>` for a variant. */
export const modeOf = (variant: string | undefined): string =>
  variant === undefined ? 'asterisk' : `asterisk:${path.basename(variant, '.conf')}`;

/**
 * `--dialplans` names files, or `perl`: the shipped dialplan with app_convert unloaded, so its
 * priority 8 takes the perl step. Every row but the shipped one runs without app_convert.
 */
export const PERL_STEP = 'perl';
const variantFile = (o: Pick<AsteriskBenchOptions, 'shipped'>, variant: string | undefined): string =>
  variant === undefined || variant === PERL_STEP ? o.shipped : variant;

type Base = Pick<
  LimitSpec,
  'mode' | 'concurrency' | 'warmupMs' | 'measureMs' | 'gsm' | 'wavFor' | 'ratePerS' | 'warmupCompletions' | 'drainTimeoutMs'
>;
type Ami = Pick<LimitSpec, 'amiHost' | 'amiPort' | 'amiUser' | 'amiSecret'>;
type Pids = ReadonlyMap<string, number | undefined>;

export async function runAsteriskBench(o: AsteriskBenchOptions): Promise<RunResult[]> {
  if (o.split === undefined) return await runRows(o);
  const { split } = o;
  const asterisk = o.target.pid;
  const broker = o.brokerPid;
  if (asterisk === undefined || broker === undefined)
    throw new Error('--split-cpus needs the pids of a local Asterisk and RabbitMQ (the throwaway instance, or --asterisk-pid)');
  const before = new Map([asterisk, broker, process.pid].map((pid) => [pid, affinityOf(pid)]));
  const restore = (): void => {
    for (const [pid, cpus] of before) {
      try {
        pin(pid, cpus);
      } catch (error) {
        o.log(`could not restore pid ${pid}'s CPUs to ${cpus}: ${String(error)}`);
      }
    }
  };
  // The machine's RabbitMQ must not stay on one CPU after an interrupted run.
  const forget = onInterrupt(restore);
  try {
    pin(asterisk, split.asteriskHost);
    pin(broker, split.elsewhere);
    pin(process.pid, split.elsewhere);
    o.log(`CPU split: Asterisk and the driver measured on CPU ${split.asteriskHost}; RabbitMQ and the producer on CPU ${split.elsewhere}`);
    return await runRows(o);
  } finally {
    forget();
    restore();
  }
}

/** The direct driver runs in this process: on the Asterisk host's CPUs for its rows only. */
async function direct(o: AsteriskBenchOptions, spec: LimitSpec): Promise<RunResult> {
  if (o.split === undefined) return await runLimit(spec);
  pin(process.pid, o.split.asteriskHost);
  try {
    return await runLimit(spec);
  } finally {
    pin(process.pid, o.split.elsewhere);
  }
}

async function runRows(o: AsteriskBenchOptions): Promise<RunResult[]> {
  const runs: RunResult[] = [];
  const t = o.target;
  const ami: Ami = { amiHost: t.host, amiPort: t.port, amiUser: t.user, amiSecret: t.secret };
  const peer = new Map<string, number | undefined>([
    ['emulator', t.pid],
    ['bench', process.pid],
  ]);
  const all = new Map<string, number | undefined>([...peer, ['broker', o.brokerPid]]);
  let seq = 0;
  const base = (mode: string, c: number, ratePerS?: number): Base => {
    const tag = seq++;
    // A WAV name per job slot: at most C jobs write the same name, never at once (each attempt has its own temp file).
    // Warm up until C jobs (and --warmup-jobs) completed: the pipeline turned over, the bridge's code is compiled.
    return {
      mode: mode as Base['mode'],
      concurrency: c,
      warmupMs: o.warmupMs,
      measureMs: o.measureMs,
      gsm: o.data.gsm,
      wavFor: (s: number) => o.data.wav(`${tag}-${s % 256}`),
      ratePerS,
      warmupCompletions: ratePerS === undefined ? Math.max(c, o.warmupJobs) : o.warmupJobs,
      drainTimeoutMs: 120_000,
    };
  };
  const quiet = async (what: string): Promise<void> => {
    if (o.quietWaitMs <= 0) return;
    const busy = await waitQuiet(0.25, o.quietWaitMs);
    if (busy >= 0.25) o.log(`${what}: the machine is still busy (${busy.toFixed(2)} cores used by others); measuring anyway`);
  };
  const variants: Array<string | undefined> = [undefined, ...o.dialplans];
  for (let rep = 1; rep <= o.repeat; rep++) {
    for (const variant of variants) {
      if (o.dialplans.length > 0) t.useDialplan(variantFile(o, variant), variant === undefined);
      const mode = modeOf(variant);
      for (const c of o.concurrencies) {
        const limitRow = async (): Promise<RunResult> => {
          await quiet(`limit ${mode} C=${c}`);
          const l = await direct(o, { ...base(mode, c), ...ami, pids: peer });
          o.log(
            `#${rep} limit  ${mode} C=${c}: ${fmt(l.jobsPerS)} conv/s, Asterisk ${fmt(l.cpuMsPerJob['emulator'], 2)} ms CPU/conv, p99 ${fmt(l.p99Ms, 1)} ms, failures ${l.failures}, other cores ${fmt(l.otherCores, 2)}`,
          );
          return l;
        };
        if (!o.bridge || variant !== undefined) {
          runs.push(await limitRow());
          continue;
        }
        const bridgeRow = async (): Promise<RunResult> => {
          await quiet(`bridge ${mode} C=${c}`);
          const b = await runBridge({
            ...base(mode, c),
            ...bridgeSide(o, ami, all, `${o.runId}.ast.c${c}.r${rep}`),
            backlog: Math.ceil(o.queuedPerSlot * c),
          });
          if (b.logProblems.length > 0) o.log(`bridge C=${c} logged problems:\n  ${b.logProblems.join('\n  ')}`);
          return b;
        };
        // Limit first on odd repetitions, the bridge first on even ones: a machine that drifts
        // during a run (this VM's speed does) does not favour one design.
        let l: RunResult;
        let b: RunResult;
        if (rep % 2 === 1) {
          l = await limitRow();
          b = await bridgeRow();
        } else {
          b = await bridgeRow();
          l = await limitRow();
        }
        runs.push(l, b);
        o.log(
          `#${rep} bridge ${mode} C=${c}: ${fmt(b.jobsPerS)} conv/s (${fmt(b.jobsPerS / l.jobsPerS, 3)} of limit), Asterisk ${fmt(b.cpuMsPerJob['emulator'], 2)}, bridge ${fmt(b.cpuMsPerJob['bridge'], 2)}, RabbitMQ ${fmt(b.cpuMsPerJob['broker'], 2)} ms CPU/conv, failures ${b.failures}`,
        );
      }
    }
  }
  if (o.dialplans.length > 0) t.useDialplan(o.shipped, true);
  if (o.bridge) runs.push(...(await pacedRows(o, runs, ami, peer, all, base, quiet)));
  return runs;
}

/** What every bridge row shares: its AMI target, the processes accounted, broker, queue and process settings. */
function bridgeSide(o: AsteriskBenchOptions, ami: Ami, pids: Pids, queue: string) {
  return {
    ...ami,
    pids,
    broker: o.broker,
    amqpUrl: o.amqpUrl,
    queue,
    root: '/var/local/auditorai',
    logLevel: o.logLevel,
    workDir: o.workDir,
    nodeFlags: o.bridgeNodeFlags,
    ...(o.split === undefined ? {} : { cpus: o.split.asteriskHost }),
  };
}

/** Latency below capacity: the direct driver and the bridge at one steady rate, C=16. */
async function pacedRows(
  o: AsteriskBenchOptions,
  runs: readonly RunResult[],
  ami: Ami,
  peer: Pids,
  all: Pids,
  base: (mode: string, c: number, rate?: number) => Base,
  quiet: (what: string) => Promise<void>,
): Promise<RunResult[]> {
  const at = 16;
  const sat = runs.filter((r) => r.design === 'bridge' && r.concurrency === at && r.load === 'saturated').map((r) => r.jobsPerS);
  if (sat.length === 0 && o.rate === undefined) return [];
  // Half the saturated rate, rounded down to 0.5/s (a busy VM may saturate at a few per second).
  const rate = o.rate ?? Math.max(0.5, Math.floor(median(sat) / 2 / 0.5) * 0.5);
  const out: RunResult[] = [];
  for (let rep = 1; rep <= o.repeat; rep++) {
    await quiet(`paced limit ${rate}/s`);
    const l = await direct(o, { ...base('asterisk', at, rate), ...ami, pids: peer });
    await quiet(`paced bridge ${rate}/s`);
    const b = await runBridge({ ...base('asterisk', at, rate), ...bridgeSide(o, ami, all, `${o.runId}.ast.paced.r${rep}`) });
    o.log(
      `#${rep} paced ${rate}/s: limit p50 ${fmt(l.p50Ms, 1)} p99 ${fmt(l.p99Ms, 1)} ms; bridge p50 ${fmt(b.p50Ms, 1)} p99 ${fmt(b.p99Ms, 1)} ms`,
    );
    out.push(l, b);
  }
  return out;
}

const spread = (xs: readonly number[]): { min: number; median: number; max: number; n: number } => ({
  min: Math.min(...xs),
  median: median(xs),
  max: Math.max(...xs),
  n: xs.length,
});
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Per mode and C: conversions/s and Asterisk CPU per conversion (spread), bridge/limit ratio per repetition (spread). */
export function asteriskSummary(runs: readonly RunResult[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const sat = runs.filter((r) => r.load === 'saturated');
  const keys = [...new Set(sat.map((r) => `${r.mode}|${r.concurrency}`))];
  for (const key of keys) {
    const [mode, c] = key.split('|') as [string, string];
    const of = (design: string): RunResult[] => sat.filter((r) => r.mode === mode && String(r.concurrency) === c && r.design === design);
    const limit = of('limit');
    const bridge = of('bridge');
    const entry: Record<string, unknown> = {
      limit_conv_per_s: spread(limit.map((r) => r.jobsPerS)),
      asterisk_cpu_ms_per_conv: spread(limit.map((r) => r.cpuMsPerJob['emulator'] ?? Number.NaN)),
    };
    if (bridge.length > 0) {
      entry['bridge_conv_per_s'] = spread(bridge.map((r) => r.jobsPerS));
      const ratios = bridge.map((b, i) => (limit[i] === undefined ? Number.NaN : b.jobsPerS / limit[i].jobsPerS)).filter(Number.isFinite);
      entry['bridge_over_limit'] = spread(ratios.map(r3));
      entry['bridge_cpu_ms_per_conv'] = spread(bridge.map((r) => r.cpuMsPerJob['bridge'] ?? Number.NaN));
      entry['rabbitmq_cpu_ms_per_conv'] = spread(bridge.map((r) => r.cpuMsPerJob['broker'] ?? Number.NaN));
      entry['asterisk_cpu_ms_per_conv_bridge'] = spread(bridge.map((r) => r.cpuMsPerJob['emulator'] ?? Number.NaN));
    }
    out[`${mode} C=${c}`] = entry;
  }
  const paced = runs.filter((r) => r.load !== 'saturated');
  if (paced.length > 0) {
    const l = paced.filter((r) => r.design === 'limit');
    const b = paced.filter((r) => r.design === 'bridge');
    out['paced'] = {
      load: paced[0]!.load,
      concurrency: paced[0]!.concurrency,
      limit_p99_ms: spread(l.map((r) => r.p99Ms)),
      bridge_p99_ms: spread(b.map((r) => r.p99Ms)),
      added_p99_ms: spread(b.map((r, i) => r.p99Ms - (l[i]?.p99Ms ?? Number.NaN)).filter(Number.isFinite)),
      added_p50_ms: spread(b.map((r, i) => r.p50Ms - (l[i]?.p50Ms ?? Number.NaN)).filter(Number.isFinite)),
    };
  }
  return out;
}
