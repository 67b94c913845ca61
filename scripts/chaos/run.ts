/**
 * One chaos run: the emulator in this process, the bridge as a child process of the built CLI,
 * jobs published at a steady pace while faults land at random (seeded) moments until every job
 * has ended; then the bridge is stopped with SIGTERM and everything is checked.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config.js';
import { AsteriskEmulator } from '../../src/emulator/server.js';
import { brokerNames, mainQueueDeclare, publisherQueues } from '../../src/queue/broker.js';
import { serviceQueues } from '../../src/worker/lanes.js';
import { BridgeProcess, configText, uniqueNames, type BridgeConfig, type BridgeExit } from './bridge.js';
import { inject, rabbitmqctl, type FaultKind } from './faults.js';
import { makeDataRoot, tempFiles, wavProblem, type DataRoot } from './files.js';
import { Ledger, tallyClean } from './ledger.js';
import { Observer } from './observer.js';
import type { ChaosOptions, ChaosReport } from './options.js';
import { drained, faultLoop, publishAll, within } from './phases.js';
import { Prng } from './prng.js';
import { AsteriskWatch } from './watch.js';

export type { ChaosOptions, ChaosReport } from './options.js';

/** Runs it; everything it created (files, queues, exchange, processes) is gone afterwards. */
export async function runChaos(opts: ChaosOptions): Promise<ChaosReport> {
  const run = await ChaosRun.create(opts);
  try {
    return await run.execute();
  } finally {
    await run.cleanup();
  }
}

class ChaosRun {
  private readonly started = Date.now();
  private readonly prng: Prng;
  private readonly ledger = new Ledger();
  private readonly observer: Observer;
  private readonly bridge: BridgeProcess;
  private readonly watch: AsteriskWatch;
  private readonly names = uniqueNames('chaos');
  private readonly delayQueues: string[];
  private readonly anomalies: string[] = [];
  private readonly faults: Record<string, number> = {};
  private readonly logCounts = new Map<string, number>();
  private stopping = false;
  private brokerStopped = false;

  private constructor(
    private readonly opts: ChaosOptions,
    private readonly data: DataRoot,
    private readonly workDir: string,
    private readonly emulator: AsteriskEmulator,
  ) {
    this.prng = new Prng(opts.seed);
    this.watch = new AsteriskWatch(emulator);
    const config: BridgeConfig = {
      amqpUrl: opts.amqpUrl,
      names: this.names,
      amiPort: emulator.port,
      root: data.root,
      worker: opts.worker,
      rabbitmq: {
        QueueType: opts.queueType ?? 'classic',
        ...(opts.deliveryLimit === undefined ? {} : { DeliveryLimit: String(opts.deliveryLimit) }),
      },
      logLevel: 'INFO',
    };
    const broker = brokerNames(parseConfig(configText(config), 'chaos', {}));
    // Both lanes' delay queues and the (empty) bulk queue: the run's own, deleted at the end.
    this.delayQueues = serviceQueues(broker).filter((q) => q !== this.names.deadLetterQueue && q !== this.names.queueName);
    const deadLetterArguments = publisherQueues(broker)[0]?.arguments;
    this.observer = new Observer(
      opts.amqpUrl,
      this.names,
      this.ledger,
      mainQueueDeclare(broker).arguments,
      deadLetterArguments === undefined ? undefined : { deadLetterArguments },
    );
    this.bridge = new BridgeProcess(config, workDir, 'bridge', opts.bridgeLog);
    this.superviseBridge();
  }

  static async create(opts: ChaosOptions): Promise<ChaosRun> {
    const data = makeDataRoot();
    const workDir = mkdtempSync(path.join(tmpdir(), 'ac-chaos-run-'));
    const emulator = await AsteriskEmulator.start({
      root: data.root,
      mode: opts.mode,
      latencyMs: opts.latencyMs,
      conversionTimeoutMs: opts.conversionTimeoutMs,
    });
    return new ChaosRun(opts, data, workDir, emulator);
  }

  private anomaly(text: string): void {
    this.anomalies.push(`${((Date.now() - this.started) / 1000).toFixed(1)} s: ${text}`);
    this.opts.log(`ANOMALY ${text}`);
  }

  /** Like systemd's Restart=always: an exit we did not cause is an anomaly, and the bridge comes back. */
  private superviseBridge(): void {
    const { bridge } = this;
    bridge.on('exit', (exit: BridgeExit) => {
      if (exit.afterSignalMs !== undefined || this.stopping) return;
      this.anomaly(`the bridge exited by itself (code ${String(exit.code)}, signal ${String(exit.signal)})`);
      setTimeout(() => bridge.running || this.stopping || bridge.start(), 200);
    });
    bridge.on('stray', (line: string) => this.anomaly(`bridge stderr: ${line}`));
    bridge.on('log', (line: Record<string, unknown>) => {
      if (line['level'] !== 'crit' && line['level'] !== 'error') return;
      const detail = line['code'] ?? line['error'];
      const text = typeof detail === 'string' ? detail : JSON.stringify(detail);
      const key = `${String(line['level'])}: ${String(line['message'])}${detail === undefined ? '' : ` (${text.slice(0, 160)})`}`;
      this.logCounts.set(key, (this.logCounts.get(key) ?? 0) + 1);
    });
  }

  async execute(): Promise<ChaosReport> {
    const { opts, ledger } = this;
    await this.observer.start();
    this.bridge.start();
    opts.log(
      `chaos: ${opts.jobs} jobs, seed ${opts.seed}, mode ${opts.mode}, ${opts.queueType ?? 'classic'} queue ${this.names.queueName}, faults: ${opts.kinds.join(', ')}`,
    );
    const progress = setInterval(
      () => opts.log(`… ${ledger.ended}/${ledger.publishedCount} ended, faults ${JSON.stringify(this.faults)}`),
      10_000,
    );
    try {
      const allEnded = (): boolean => ledger.publishedCount === opts.jobs && ledger.ended === opts.jobs;
      await Promise.all([publishAll(opts, this.data, this.observer), faultLoop(opts, this.prng, allEnded, (kind) => this.fire(kind))]);
      if (!this.bridge.running) this.bridge.start();
      opts.log(`faults over after ${this.seconds()} s; waiting for every job to end`);
      await within(ledger.onAllEnded(), opts.settleMs);
      // Copies still waiting in a delay queue (duplicates of jobs that already ended) are let through.
      await drained(this.observer, [this.names.queueName, ...this.delayQueues], opts.settleMs);
    } finally {
      clearInterval(progress);
    }
    await this.stopBridge();
    return this.report();
  }

  private seconds(): string {
    return ((Date.now() - this.started) / 1000).toFixed(1);
  }

  private async fire(kind: FaultKind): Promise<void> {
    this.faults[kind] = (this.faults[kind] ?? 0) + 1;
    if (kind === 'broker-restart') this.brokerStopped = true;
    const { emulator, bridge, prng, opts } = this;
    await inject(kind, { emulator, bridge, prng, timing: opts.timing, rabbitNode: opts.rabbitNode, anomaly: (text) => this.anomaly(text) });
    this.brokerStopped = false;
  }

  /** The last SIGTERM: must exit 0; then no conversion step may still be running. */
  private async stopBridge(): Promise<void> {
    await this.bridge.onStarted();
    this.stopping = true;
    const exit = this.bridge.onExit();
    this.bridge.signal('SIGTERM');
    const last = await exit;
    if (last !== undefined && last.code !== 0) this.anomaly(`final SIGTERM: exit code ${String(last.code)}`);
    if (!(await this.watch.onIdle(this.opts.conversionTimeoutMs + 5000)))
      this.anomaly(`${this.watch.running} conversion steps still running at the end`);
  }

  private async report(): Promise<ChaosReport> {
    let leftInQueues = 0;
    for (const q of [this.names.queueName, ...this.delayQueues]) leftInQueues += await this.observer.depth(q);
    const tally = this.ledger.tally();
    const badWavs: string[] = [];
    const converted = this.opts.mode === 'real' ? this.ledger.convertedIds() : [];
    for (const id of converted) {
      const problem = wavProblem(this.data.wav(id));
      if (problem !== undefined) badWavs.push(`${id}: ${problem}`);
    }
    const tempFilesLeft = tempFiles(this.data.wavDir);
    const bridgeErrors = [...this.logCounts]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 12)
      .map(([key, n]) => `${n}× ${key}`);
    const ok = tallyClean(tally) && badWavs.length === 0 && tempFilesLeft.length === 0 && this.anomalies.length === 0;
    return {
      tally,
      asterisk: this.watch.tally(),
      faults: this.faults,
      anomalies: this.anomalies,
      bridgeStarts: this.bridge.starts,
      badWavs: badWavs.slice(0, 20),
      wavsChecked: converted.length,
      tempFilesLeft: tempFilesLeft.slice(0, 20),
      leftInQueues,
      bridgeErrors,
      queueType: this.opts.queueType ?? 'classic',
      wallMs: Date.now() - this.started,
      ok,
    };
  }

  async cleanup(): Promise<void> {
    this.stopping = true;
    const { opts } = this;
    if (this.brokerStopped) await rabbitmqctl(opts.rabbitNode, 'start_app').catch(() => undefined);
    await this.bridge.dispose();
    await this.observer.close(this.delayQueues).catch((error: unknown) => opts.log(`cleanup: ${String(error)}`));
    await this.emulator.close();
    this.data.remove();
    rmSync(this.workDir, { recursive: true, force: true });
  }
}
