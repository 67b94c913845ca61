/** One measured run: the closed loop plus the CPU of the processes involved, as one record. */
import { ClosedLoop, type LoopOptions, type LoopResult } from './loop.js';
import { CpuMeter } from './procstat.js';

export type Design = 'bridge' | 'limit' | 'seed-ack-immediately' | 'seed-fixed' | 'broker';
/** `asterisk` = a real Asterisk with the shipped dialplan; `asterisk:<variant>` = with a variant dialplan. */
export type Mode = 'instant' | 'real' | '-' | 'asterisk' | `asterisk:${string}`;

export interface RunResult extends LoopResult {
  readonly design: Design;
  readonly mode: Mode;
  readonly concurrency: number;
  /** 'saturated' (closed loop, window = concurrency) or the steady offered rate, e.g. '800/s'. */
  readonly load: string;
  /** CPU milliseconds per completed job, per process role (bridge, emulator, broker, bench, worker). */
  readonly cpuMsPerJob: Record<string, number>;
  /** Cores busy on the whole machine during the window (0..2 here). */
  readonly machineBusyCores: number;
  /** Of those, cores used by processes outside the run (other work on this machine). */
  readonly otherCores: number;
  /** VmHWM of the design's own process, when it has one. */
  rssPeakMb?: number;
  /** The bridge's heap figures at the end of the window (MB), from its /metrics. */
  memoryMb?: Record<string, number>;
  /** Free-form notes (e.g. the seed's conversions still running when it acked). */
  readonly notes?: Record<string, number | string>;
}

export interface MeasureSpec {
  readonly design: Design;
  readonly mode: Mode;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  /** Open loop at this rate instead of the closed loop (latency below capacity). */
  readonly ratePerS?: number | undefined;
  /** See LoopOptions: warm up until this many jobs completed; and the drain's limit. */
  readonly warmupCompletions?: number | undefined;
  readonly drainTimeoutMs?: number | undefined;
  /** See LoopOptions: jobs kept waiting beyond the window (queue-fed designs, saturated rows). */
  readonly backlog?: number | undefined;
  /** Processes whose CPU is accounted, by role. */
  readonly pids: ReadonlyMap<string, number | undefined>;
}

/**
 * Runs a closed loop with `window = concurrency`. `wire(loop)` connects the design: it returns
 * the submit function and arranges for completions to reach `loop.complete`.
 */
export async function measure(
  spec: MeasureSpec,
  wire: (complete: (seq: number, ok: boolean) => void) => LoopOptions['submit'],
): Promise<RunResult> {
  const meter = new CpuMeter(spec.pids);
  let cpu: ReturnType<CpuMeter['read']> | undefined;
  // Completions can only arrive once run() submitted jobs, by which time `loop` is set.
  const submit = wire((seq, ok) => loop.complete(seq, ok));
  const loop: ClosedLoop = new ClosedLoop({
    window: spec.concurrency,
    backlog: spec.backlog,
    warmupMs: spec.warmupMs,
    measureMs: spec.measureMs,
    submit,
    ratePerS: spec.ratePerS,
    warmupCompletions: spec.warmupCompletions,
    drainTimeoutMs: spec.drainTimeoutMs,
    onMeasureStart: () => meter.reset(),
    onMeasureEnd: () => {
      cpu = meter.read();
    },
  });
  const result = await loop.run();
  const jobs = Math.max(1, result.completedInWindow);
  const cpuMsPerJob: Record<string, number> = {};
  for (const [role, seconds] of Object.entries(cpu?.perProcess ?? {})) cpuMsPerJob[role] = (seconds * 1000) / jobs;
  const accounted = Object.values(cpu?.perProcess ?? {}).reduce((a, b) => a + b, 0) / result.measuredSeconds;
  const otherCores = Math.max(0, (cpu?.machineBusyCores ?? 0) - accounted);
  const load = spec.ratePerS === undefined ? 'saturated' : `${Math.round(spec.ratePerS)}/s`;
  return {
    ...result,
    design: spec.design,
    mode: spec.mode,
    concurrency: spec.concurrency,
    load,
    cpuMsPerJob,
    machineBusyCores: cpu?.machineBusyCores ?? 0,
    otherCores,
  };
}
