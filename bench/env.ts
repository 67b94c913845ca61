/**
 * The benchmark's surroundings: a data root with a real GSM file, the AMI emulator and the bridge
 * each in their own process (so /proc figures are theirs alone), the bridge's config file, and
 * cleanup of every queue and exchange a run declared.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pinnedCommand } from './affinity.js';
import { onInterrupt } from './interrupt.js';

/** The repository: bench code runs from its sources (tsx); the bridge it measures is the build in dist/. */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CLI = path.join(REPO, 'dist', 'cli.js');

export interface DataRoot {
  readonly root: string;
  /** One real 3 s GSM recording (8 kHz mono), the input of every job. */
  readonly gsm: string;
  wav(name: string): string;
  remove(): void;
}

/** A temp root laid out like /var/local/auditorai, with one GSM file made by sox. */
export function makeDataRoot(): DataRoot {
  const root = mkdtempSync(path.join(tmpdir(), 'ac-bench-'));
  mkdirSync(path.join(root, 'gsm'));
  mkdirSync(path.join(root, 'wav'));
  const gsm = path.join(root, 'gsm', 'in.gsm');
  execFileSync('sox', ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', gsm, 'synth', '3', 'sine', '440']);
  return {
    root,
    gsm,
    wav: (name) => path.join(root, 'wav', `${name}.wav`),
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** A TCP port free right now on loopback. */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface EmulatorProc {
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

/** `audio-convert simulate-asterisk` in its own process; resolves once it listens. */
export async function startEmulator(mode: 'instant' | 'real', root: string): Promise<EmulatorProc> {
  // --convert-app: the step a host with app_convert runs (the shipped default): its UserEvent carries the hashes and facts.
  const args = [CLI, 'simulate-asterisk', '--port', '0', '--root', root, '--convert-app', ...(mode === 'instant' ? ['--instant'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const match = /listening on [\d.]+:(\d+)/.exec(text);
      if (match) resolve(Number(match[1]));
    });
    child.once('exit', (code) => reject(new Error(`emulator exited (${code}) before listening: ${text}`)));
  });
  child.stdout.resume();
  return { port, pid: child.pid!, stop: () => stopChild(child) };
}

export interface BridgeOptions {
  readonly amqpUrl: string;
  readonly queue: string;
  readonly amiPort: number;
  /** A real Asterisk's address and user (default: the emulator's on loopback). */
  readonly amiHost?: string;
  readonly amiUser?: string;
  readonly amiSecret?: string;
  readonly concurrency: number;
  readonly root: string;
  readonly logLevel: string;
  readonly workDir: string;
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=…']. */
  readonly nodeFlags?: readonly string[];
  /** Start it pinned to these CPUs (`--split-cpus`, bench/affinity.ts). */
  readonly cpus?: string;
  /** Environment added to the bench's own, e.g. the unit's MALLOC_ARENA_MAX. */
  readonly env?: Readonly<Record<string, string>>;
}

export interface BridgeProc {
  readonly pid: number;
  /** Where its /metrics, /readyz listen. */
  readonly metricsPort: number;
  readonly logFile: string;
  stop(): Promise<void>;
}

/** The bench's names for one bridge instance's broker objects. */
export function queueNames(queue: string): { queue: string; results: string; dead: string } {
  return { queue, results: `${queue}.results`, dead: `${queue}.dead` };
}

/** Writes the bridge's transcoding.conf for one run. */
export function writeBridgeConfig(o: BridgeOptions, metricsPort: number): string {
  const n = queueNames(o.queue);
  const file = path.join(o.workDir, `${o.queue}.conf`);
  writeFileSync(
    file,
    [
      '[RabbitMQ]',
      `Url = ${o.amqpUrl}`,
      `QueueName = ${n.queue}`,
      `ResultsExchange = ${n.results}`,
      `DeadLetterQueue = ${n.dead}`,
      '[AsteriskAMI]',
      `Addr = ${o.amiHost ?? '127.0.0.1'}`,
      `Port = ${o.amiPort}`,
      `User = ${o.amiUser ?? 'auditorai'}`,
      `Secret = ${o.amiSecret ?? 'simulator'}`,
      '[Worker]',
      `Concurrency = ${o.concurrency}`,
      'JobTimeout = 60',
      'MaxAttempts = 3',
      'RetryDelay = 1',
      `AllowedRoots = ${o.root}`,
      '[Metrics]',
      `Listen = 127.0.0.1:${metricsPort}`,
      '[Logging]',
      `MinimumLevel = ${o.logLevel}`,
      'Format = journald',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return file;
}

/** `audio-convert run` in its own process, logging to a file; resolves once /readyz says 200. */
export async function startBridge(o: BridgeOptions): Promise<BridgeProc> {
  const metricsPort = await freePort();
  const config = writeBridgeConfig(o, metricsPort);
  const logFile = path.join(o.workDir, `${o.queue}.log`);
  const fd = openSync(logFile, 'a');
  const argv = [...(o.nodeFlags ?? []), CLI, 'run', '--config', config];
  const [command, args] = o.cpus === undefined ? [process.execPath, argv] : pinnedCommand(o.cpus, process.execPath, argv);
  const child = spawn(command, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...o.env } });
  closeSync(fd);
  // An interrupted bench must not leave a bridge consuming from its queues.
  const forget = onInterrupt(() => child.kill('SIGKILL'));
  const exited = once(child, 'exit');
  exited.then(forget, forget);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`bridge exited with ${child.exitCode}; see ${logFile}`);
    if (await ready(metricsPort)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      await exited;
      throw new Error(`bridge not ready within 20 s; see ${logFile}`);
    }
    await sleep(50);
  }
  return { pid: child.pid!, metricsPort, logFile, stop: () => stopChild(child) };
}

/** The bridge's own memory figures (prom-client default metrics), in MB: heap total/used, new space, external. */
export async function bridgeMemory(port: number): Promise<Record<string, number>> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const pick = (re: RegExp): number => Number(re.exec(text)?.[1] ?? Number.NaN) / 2 ** 20;
    return {
      heap_total: pick(/^nodejs_heap_size_total_bytes (\S+)/m),
      heap_used: pick(/^nodejs_heap_size_used_bytes (\S+)/m),
      new_space: pick(/^nodejs_heap_space_size_total_bytes\{space="new"\} (\S+)/m),
      old_space: pick(/^nodejs_heap_space_size_total_bytes\{space="old"\} (\S+)/m),
      external: pick(/^nodejs_external_memory_bytes (\S+)/m),
    };
  } catch {
    return {};
  }
}

async function ready(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`);
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** A bench-only worker (bench/<script>.ts, run by tsx) in its own process; resolves when it prints "ready". */
export async function startWorker(script: string, args: readonly string[]): Promise<{ pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'bench', script), ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`${script} exited (${code}) before it was ready`)));
  });
  child.stdout.resume();
  return { pid: child.pid!, stop: () => stopChild(child) };
}

/** SIGTERM, then SIGKILL after 10 s; resolves when the process has exited. */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
