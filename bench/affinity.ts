/**
 * CPU affinity for `--split-cpus`: the Asterisk host's share of this machine on one side (Asterisk
 * with the children it forks, and the bridge or the direct driver, whichever runs), RabbitMQ and
 * the job producer on the other, as if the broker and the producers were on another host (the
 * usual layout of a telephony platform). Through util-linux's `taskset`: `-a` sets every thread a
 * process has now; threads and children created later inherit their creator's set.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

/** The two sides of the split: the first CPU for the Asterisk host, the rest for everything else. */
export interface CpuSplit {
  readonly asteriskHost: string;
  readonly elsewhere: string;
}

/** The split of this machine, or an error saying why there is none. */
export function cpuSplit(): CpuSplit {
  const n = os.availableParallelism();
  if (n < 2) throw new Error(`--split-cpus needs at least 2 CPUs; this machine has ${n}`);
  return { asteriskHost: '0', elsewhere: n === 2 ? '1' : `1-${n - 1}` };
}

/** A process's CPU list now (`0,1`, `0-3`), as taskset prints it. */
export function affinityOf(pid: number): string {
  const text = execFileSync('taskset', ['-c', '-p', String(pid)], { encoding: 'utf8' });
  const list = /affinity list:\s*(\S+)/.exec(text)?.[1];
  if (list === undefined) throw new Error(`taskset printed no affinity for pid ${pid}: ${text.trim()}`);
  return list;
}

/** Pins every thread of `pid` to `cpus`. */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-c', '-p', cpus, String(pid)], { stdio: 'ignore' });
}

/** The command prefix that starts a program already pinned to `cpus`: taskset execs it (same pid). */
export function pinnedCommand(cpus: string, command: string, args: readonly string[]): [string, string[]] {
  return ['taskset', ['-c', cpus, command, ...args]];
}
