/**
 * What /proc says about a process and the machine: CPU ticks (utime+stime), resident memory now
 * (VmRSS) and at its peak (VmHWM). Linux only; the benchmark measures processes it started.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/** Clock ticks per second (USER_HZ); 100 on every Linux this runs on. */
const HZ = 100;

export interface ProcSample {
  /** CPU seconds used so far (user + system), its exited children's included. */
  readonly cpuSeconds: number;
  readonly rssMb: number;
  readonly hwmMb: number;
}

/** CPU and memory of `pid` now, or undefined when it is gone. */
export function sampleProc(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces and parentheses): state is field 3.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime + stime, plus cutime + cstime: the emulator's sox children count as its own CPU.
    const ticks = Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]);
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return { cpuSeconds: ticks / HZ, rssMb: kbField(status, 'VmRSS') / 1024, hwmMb: kbField(status, 'VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

function kbField(status: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
  return match === null ? 0 : Number(match[1]);
}

/** Busy and total CPU seconds of the whole machine (all cores), from /proc/stat. */
export function sampleMachine(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: (total - idle) / HZ, total: total / HZ };
}

/**
 * The RabbitMQ server process on this machine, to account for the broker's CPU: the process that
 * listens on `port` (other Erlang nodes may run here too, e.g. a test's own broker).
 */
export function findBrokerPid(port = 5672): number | undefined {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const inodes = new Set<string>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      // local_address is "ADDR:PORT"; state 0A = LISTEN; inode is field 10.
      if (f[1]?.endsWith(`:${hexPort}`) && f[3] === '0A' && f[9] !== undefined) inodes.add(f[9]);
    }
  }
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      for (const fd of readdirSync(`/proc/${entry}/fd`)) {
        const link = readlinkSync(`/proc/${entry}/fd/${fd}`);
        const m = /^socket:\[(\d+)\]$/.exec(link);
        if (m !== null && inodes.has(m[1]!)) return Number(entry);
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return undefined;
}

/** CPU used by a set of processes between two points in time, per process name. */
export class CpuMeter {
  private start = new Map<string, number>();
  private machineStart = sampleMachine();

  constructor(private readonly pids: ReadonlyMap<string, number | undefined>) {
    this.reset();
  }

  reset(): void {
    this.start = new Map();
    for (const [name, pid] of this.pids) {
      const s = pid === undefined ? undefined : sampleProc(pid);
      if (s !== undefined) this.start.set(name, s.cpuSeconds);
    }
    this.machineStart = sampleMachine();
  }

  /** CPU seconds per process since reset(), and the machine's busy fraction (0..cores). */
  read(): { perProcess: Record<string, number>; machineBusyCores: number } {
    const perProcess: Record<string, number> = {};
    for (const [name, pid] of this.pids) {
      const s = pid === undefined ? undefined : sampleProc(pid);
      const before = this.start.get(name);
      if (s !== undefined && before !== undefined) perProcess[name] = s.cpuSeconds - before;
    }
    const m = sampleMachine();
    const wall = m.total - this.machineStart.total;
    return { perProcess, machineBusyCores: wall > 0 ? ((m.busy - this.machineStart.busy) / wall) * cores() : 0 };
  }
}

let coreCount: number | undefined;
function cores(): number {
  coreCount ??=
    readFileSync('/proc/cpuinfo', 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('processor')).length || 1;
  return coreCount;
}

/**
 * Waits until the machine is nearly idle (other work would share the 2 cores with the run):
 * busy below `maxCores` over a 500 ms sample, or `maxWaitMs` passed. Returns the last sample.
 */
export async function waitQuiet(maxCores: number, maxWaitMs: number): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const a = sampleMachine();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const b = sampleMachine();
    const busy = b.total > a.total ? ((b.busy - a.busy) / (b.total - a.total)) * cores() : 0;
    if (busy < maxCores || Date.now() >= deadline) return busy;
  }
}
