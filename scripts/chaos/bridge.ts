/**
 * The bridge as a separate process, the way systemd runs it: `node dist/cli.js run --config F`.
 * Used by the chaos run and by the integration tests that need real signals (SIGTERM drain,
 * SIGKILL, a second signal). The config file is written here from plain values.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createWriteStream, existsSync, writeFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the nearest directory above this file that holds package.json. */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
  return dir;
}

/** The built CLI (`npm run build`); fails with a hint when it is missing. */
export function builtCli(): string {
  const cli = path.join(repoRoot(), 'dist', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run 'npm run build' first`);
  return cli;
}

/** Names of the broker objects one bridge (or several on one queue) uses. */
export interface QueueNames {
  readonly queueName: string;
  readonly resultsExchange: string;
  readonly deadLetterQueue: string;
}

/** Unique names for one run or test: `<prefix>.<8 hex>`. */
export function uniqueNames(prefix: string): QueueNames {
  const id = `${prefix}.${randomUUID().slice(0, 8)}`;
  return { queueName: id, resultsExchange: `${id}.results`, deadLetterQueue: `${id}.dead` };
}

export interface BridgeConfig {
  readonly amqpUrl: string;
  readonly names: QueueNames;
  readonly amiPort: number;
  readonly root: string;
  /** [Worker] values, as written in the file (e.g. JobTimeout: '2'). */
  readonly worker?: Record<string, string>;
  readonly ami?: Record<string, string>;
  readonly rabbitmq?: Record<string, string>;
  /** [Logging] MinimumLevel; default WARNING. */
  readonly logLevel?: string;
  /** [Metrics] Listen; default off. `127.0.0.1:0`: the port is in the `http listening` log line. */
  readonly listen?: string;
  /** Run the process as this user and group (e.g. nobody, to meet EACCES as root cannot). */
  readonly runAs?: { readonly uid: number; readonly gid: number };
  /** The dist/cli.js to run; default the repository's (builtCli()). */
  readonly cli?: string;
}

/** The INI text of a transcoding.conf for `config`. */
export function configText(config: BridgeConfig): string {
  const section = (name: string, values: Record<string, string>): string =>
    `[${name}]\n${Object.entries(values)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n')}\n`;
  // A HostName (the nodes of a cluster) replaces the Url; the credentials are the Url's.
  const url = new URL(config.amqpUrl);
  const broker =
    config.rabbitmq?.['HostName'] === undefined
      ? { Url: config.amqpUrl }
      : { UserName: decodeURIComponent(url.username || 'guest'), Password: decodeURIComponent(url.password || 'guest') };
  return [
    section('RabbitMQ', {
      ...broker,
      QueueName: config.names.queueName,
      ResultsExchange: config.names.resultsExchange,
      DeadLetterQueue: config.names.deadLetterQueue,
      ...config.rabbitmq,
    }),
    section('AsteriskAMI', {
      Addr: '127.0.0.1',
      Port: String(config.amiPort),
      User: 'auditorai',
      Secret: 'simulator',
      PingInterval: '1',
      ActionTimeout: '2',
      ...config.ami,
    }),
    section('Worker', {
      Concurrency: '8',
      JobTimeout: '5',
      MaxAttempts: '5',
      RetryDelay: '100ms',
      RetryMaxDelay: '1',
      DrainTimeout: '5',
      // The chaos run writes each recording whole just before its job.
      SettleTime: '0',
      AllowedRoots: config.root,
      ...config.worker,
    }),
    section('Metrics', { Listen: config.listen ?? 'off' }),
    section('Logging', { MinimumLevel: config.logLevel ?? 'WARNING', Format: 'json' }),
  ].join('\n');
}

/** How one process of the bridge ended. */
export interface BridgeExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** Milliseconds from the signal we sent (if any) to the exit. */
  readonly afterSignalMs: number | undefined;
}

/**
 * One bridge: a config file and, at any time, at most one running process of the built CLI.
 * Emits 'exit' (BridgeExit) whenever a process ends, 'log' (parsed JSON line) for each log line and
 * 'stray' (string) for a stderr line that is not a log line (a warning or crash trace from node).
 */
export class BridgeProcess extends EventEmitter {
  readonly configFile: string;
  private child: ChildProcess | undefined;
  private exited: Promise<BridgeExit> | undefined;
  private signalledAt: number | undefined;
  /** Every stderr line that is not JSON (a crash trace), for the report. */
  readonly stray: string[] = [];
  starts = 0;
  /** The current process has logged 'started': its signal handlers are installed. */
  private startedSeen = false;
  private readonly logStream: WriteStream | undefined;
  private readonly runAs: BridgeConfig['runAs'];
  private readonly cli: string | undefined;

  /** `logFile`: every stderr line of every process is appended there too. */
  constructor(
    config: BridgeConfig,
    dir: string,
    private readonly label = 'bridge',
    logFile?: string,
  ) {
    super();
    this.configFile = path.join(dir, `${label}-${randomUUID().slice(0, 8)}.conf`);
    // Another user must be able to read it (a test config: the broker's guest password only).
    writeFileSync(this.configFile, configText(config), { mode: config.runAs === undefined ? 0o600 : 0o644 });
    this.runAs = config.runAs;
    this.cli = config.cli;
    this.logStream = logFile === undefined ? undefined : createWriteStream(logFile, { flags: 'a' });
  }

  /** Whether the current process has logged 'started'. */
  get hasStarted(): boolean {
    return this.startedSeen;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Starts a process (the previous one must have exited). */
  start(): void {
    if (this.child !== undefined) throw new Error(`${this.label}: already running (pid ${this.child.pid})`);
    const child = spawn(process.execPath, [this.cli ?? builtCli(), 'run', '--config', this.configFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
      ...this.runAs,
    });
    this.child = child;
    this.signalledAt = undefined;
    this.startedSeen = false;
    this.starts++;
    let buffered = '';
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        this.line(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
      }
    });
    this.exited = new Promise((resolve) => {
      // 'close', not 'exit': stderr is drained by then, so no line of this process can arrive
      // after a new one started (and be taken for the new one's).
      child.once('close', (code, signal) => {
        if (buffered !== '') this.line(buffered);
        const exit = { code, signal, afterSignalMs: this.signalledAt === undefined ? undefined : Date.now() - this.signalledAt };
        this.child = undefined;
        this.emit('exit', exit);
        resolve(exit);
      });
    });
  }

  private line(text: string): void {
    if (text.trim() === '') return;
    this.logStream?.write(`${text}\n`);
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(text) as Record<string, unknown>;
    } catch {
      if (this.stray.length < 50) this.stray.push(text);
      this.emit('stray', text);
      return;
    }
    if (parsed['message'] === 'started') this.startedSeen = true;
    this.emit('log', parsed);
  }

  /** Sends a signal to the running process (no-op when none). */
  signal(signal: NodeJS.Signals): void {
    if (this.child === undefined) return;
    this.signalledAt ??= Date.now();
    this.child.kill(signal);
  }

  /** Resolves when the current process exits (at once, with undefined, when none runs). */
  onExit(): Promise<BridgeExit | undefined> {
    return this.child === undefined ? Promise.resolve(undefined) : (this.exited ?? Promise.resolve(undefined));
  }

  /** Resolves on the first log line for which `match` is true (from now on). */
  onLog(match: (line: Record<string, unknown>) => boolean): Promise<Record<string, unknown>> {
    return new Promise((resolve) => {
      const listener = (line: Record<string, unknown>): void => {
        if (!match(line)) return;
        this.off('log', listener);
        resolve(line);
      };
      this.on('log', listener);
    });
  }

  /**
   * Resolves once the current process has started (logged 'started'; cli.ts installs its signal
   * handlers before it starts anything), or has exited. While node is still loading modules a
   * SIGTERM kills it by the default action (exit by signal): nothing is lost then (nothing was
   * consumed yet), but it does not exercise the drain.
   */
  onStarted(): Promise<void> {
    if (this.startedSeen || this.child === undefined) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.off('log', onLine);
        this.off('exit', done);
        resolve();
      };
      const onLine = (line: Record<string, unknown>): void => {
        if (line['message'] === 'started') done();
      };
      this.on('log', onLine);
      this.on('exit', done);
    });
  }

  /** Resolves when the process logs that it consumes (AMQP and AMI up). */
  onConsuming(): Promise<unknown> {
    return this.onLog((line) => line['message'] === 'consuming');
  }

  /** SIGKILL and wait: for cleanup paths. */
  async kill(): Promise<void> {
    const exit = this.onExit();
    this.signal('SIGKILL');
    await exit;
  }

  /** Kills any process and closes the log file. */
  async dispose(): Promise<void> {
    await this.kill();
    this.logStream?.end();
  }
}
