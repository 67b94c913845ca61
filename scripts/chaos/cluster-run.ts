/**
 * The chaos run on a 3-node RabbitMQ cluster (scripts/rabbit-cluster/): the bridge is given every
 * node in [RabbitMQ] HostName and a quorum input queue; thousands of jobs are published while, in
 * turn, the node the bridge is connected to is stopped and the node leading the quorum queue is
 * killed (SIGKILL), each brought back before the next fault. Measured per fault: how long until the
 * bridge consumes again, on which node; checked throughout: /readyz agrees with the bridge's own
 * state. At the end every job id must have ended with its right result, none missing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfig } from '../../src/config.js';
import { AsteriskEmulator } from '../../src/emulator/server.js';
import { brokerNames, mainQueueDeclare, publisherQueues } from '../../src/queue/broker.js';
import { BridgeProcess, configText, uniqueNames, type BridgeConfig } from './bridge.js';
import { ClusterNodes } from './cluster-nodes.js';
import { makeDataRoot, tempFiles, wavProblem, type DataRoot } from './files.js';
import { Ledger, tallyClean } from './ledger.js';
import { Observer } from './observer.js';
import type { ChaosReport } from './options.js';
import { drained, pause, publishAll, within } from './phases.js';
import { Prng } from './prng.js';
import { ReadyzWatch } from './readyz.js';
import { AsteriskWatch } from './watch.js';

export interface ClusterChaosOptions {
  readonly jobs: number;
  readonly seed: number;
  readonly mode: 'real' | 'instant';
  readonly publishOverMs: number;
  /** Gap between the end of one fault and the next (ms, ± half, from the seed). */
  readonly faultGapMs: number;
  /** At least this many faults (node stops and leader kills alternate), more while jobs remain. */
  readonly minFaults: number;
  readonly settleMs: number;
  readonly worker: Record<string, string>;
  readonly bridgeLog?: string | undefined;
  readonly log: (line: string) => void;
}

/** One fault as it happened. */
export interface ClusterFault {
  readonly kind: 'node-stop' | 'leader-kill';
  /** The node stopped or killed, e.g. acx2. */
  readonly node: string;
  /** Whether the bridge was connected to that node. */
  readonly bridgeWasThere: boolean;
  /** The node the bridge consumes from afterwards. */
  readonly bridgeNow: string | undefined;
  /** From the stop/kill command to the bridge logging 'consuming' again (when it lost its connection). */
  readonly failoverMs: number | undefined;
  /** From the bridge logging 'not consuming' (it saw its node go) to 'consuming' again: the bridge's own share. */
  readonly resumeMs: number | undefined;
  /** From the stop/kill command to /readyz answering 200 again. */
  readonly readyAgainMs: number | undefined;
  /** Whether /readyz answered 503 in between (it must, when the bridge lost its connection). */
  readonly readyzSaid503: boolean;
  /** leader-kill: the queue's new leader, and how long until list_queues named it. */
  readonly newLeader?: string | undefined;
  readonly leaderMovedMs?: number | undefined;
}

export interface ClusterReport {
  readonly chaos: ChaosReport;
  readonly faults: readonly ClusterFault[];
  readonly readyz: { samples: { ready: number; notReady: number; failed: number }; lies: readonly string[] };
}

const CONNECTION_NAME = 'audio-convert';
/** The emulator's bound on a conversion step; above the run's JobTimeout (20 s). */
const CONVERSION_TIMEOUT_MS = 30_000;

export async function runClusterChaos(opts: ClusterChaosOptions): Promise<ClusterReport> {
  const nodes = new ClusterNodes();
  for (const n of nodes.numbers) {
    if (!(await nodes.running(n)))
      throw new Error(`${nodes.name(n)} is not running: start the cluster with scripts/rabbit-cluster/start.sh (as root)`);
  }
  const data = makeDataRoot();
  const workDir = mkdtempSync(path.join(tmpdir(), 'ac-chaos-cluster-'));
  // Broker faults are the subject here: AMI and job deadlines are generous, so a loaded machine
  // (a shared 2-core box) does not turn slow conversions into retries the faults did not cause.
  const emulator = await AsteriskEmulator.start({
    root: data.root,
    mode: opts.mode,
    latencyMs: 30,
    conversionTimeoutMs: CONVERSION_TIMEOUT_MS,
  });
  const run = new ClusterRun(opts, nodes, data, workDir, emulator, await freePort());
  try {
    return await run.execute();
  } finally {
    await run.cleanup();
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}

class ClusterRun {
  private readonly started = Date.now();
  private readonly prng: Prng;
  private readonly ledger = new Ledger();
  private readonly names = uniqueNames('chaoscl');
  private readonly observer: Observer;
  private readonly bridge: BridgeProcess;
  private readonly watch: AsteriskWatch;
  private readonly readyz: ReadyzWatch;
  private readonly delayQueues: string[];
  private readonly anomalies: string[] = [];
  private readonly faults: ClusterFault[] = [];
  private readonly logCounts = new Map<string, number>();
  private stopping = false;

  constructor(
    private readonly opts: ClusterChaosOptions,
    private readonly nodes: ClusterNodes,
    private readonly data: DataRoot,
    private readonly workDir: string,
    private readonly emulator: AsteriskEmulator,
    httpPort: number,
  ) {
    this.prng = new Prng(opts.seed);
    this.watch = new AsteriskWatch(emulator);
    const amqpUrl = `amqp://guest:guest@127.0.0.1:${nodes.port(1)}`;
    const config: BridgeConfig = {
      amqpUrl,
      names: this.names,
      amiPort: emulator.port,
      root: data.root,
      worker: opts.worker,
      ami: { PingInterval: '5', ActionTimeout: '10' },
      rabbitmq: { HostName: nodes.hosts().join(', '), QueueType: 'quorum' },
      listen: `127.0.0.1:${httpPort}`,
      logLevel: 'INFO',
    };
    const broker = brokerNames(parseConfig(configText(config), 'chaos-cluster', {}));
    const queues = publisherQueues(broker);
    this.delayQueues = queues.map((q) => q.queue).filter((q) => q !== this.names.deadLetterQueue);
    this.observer = new Observer(amqpUrl, this.names, this.ledger, mainQueueDeclare(broker).arguments, {
      hosts: nodes.hosts(),
      ...(queues[0]?.arguments === undefined ? {} : { deadLetterArguments: queues[0].arguments }),
      resultsArguments: { 'x-queue-type': 'quorum' },
    });
    this.bridge = new BridgeProcess(config, workDir, 'bridge', opts.bridgeLog);
    this.readyz = new ReadyzWatch(httpPort, this.started);
    this.followBridge();
  }

  private anomaly(text: string): void {
    this.anomalies.push(`${this.seconds()} s: ${text}`);
    this.opts.log(`ANOMALY ${text}`);
  }

  private seconds(): string {
    return ((Date.now() - this.started) / 1000).toFixed(1);
  }

  private followBridge(): void {
    const { bridge } = this;
    bridge.on('exit', () => {
      this.readyz.bridgeSays(false);
      if (!this.stopping) this.anomaly('the bridge exited by itself');
    });
    bridge.on('stray', (line: string) => this.anomaly(`bridge stderr: ${line}`));
    bridge.on('log', (line: Record<string, unknown>) => {
      if (line['message'] === 'consuming') this.readyz.bridgeSays(true);
      if (line['message'] === 'not consuming') this.readyz.bridgeSays(false);
      if (line['level'] !== 'crit' && line['level'] !== 'error') return;
      const detail = line['error'] ?? line['code'];
      const key = `${String(line['level'])}: ${String(line['message'])}${detail === undefined ? '' : ` (${(typeof detail === 'string' ? detail : JSON.stringify(detail)).slice(0, 160)})`}`;
      this.logCounts.set(key, (this.logCounts.get(key) ?? 0) + 1);
    });
  }

  async execute(): Promise<ClusterReport> {
    const { opts, ledger } = this;
    await this.observer.start();
    const consuming = this.bridge.onConsuming();
    this.bridge.start();
    await within(consuming, 60_000);
    this.readyz.start();
    opts.log(
      `chaos-cluster: ${opts.jobs} jobs, seed ${opts.seed}, mode ${opts.mode}, quorum queue ${this.names.queueName} on ${this.nodes.hosts().join(', ')}`,
    );
    const progress = setInterval(() => opts.log(`… ${ledger.ended}/${ledger.publishedCount} ended, ${this.faults.length} faults`), 10_000);
    try {
      const allEnded = (): boolean => ledger.publishedCount === opts.jobs && ledger.ended === opts.jobs;
      await Promise.all([publishAll(opts, this.data, this.observer), this.faultLoop(allEnded)]);
      opts.log(`faults over after ${this.seconds()} s; waiting for every job to end`);
      await within(ledger.onAllEnded(), opts.settleMs);
      await drained(this.observer, [this.names.queueName, ...this.delayQueues], opts.settleMs);
    } finally {
      clearInterval(progress);
      this.readyz.stop();
    }
    await this.stopBridge();
    return this.report();
  }

  /** Node stops and leader kills, alternating, until every job has ended and at least minFaults were injected. */
  private async faultLoop(allEnded: () => boolean): Promise<void> {
    const kinds = ['node-stop', 'leader-kill'] as const;
    for (let i = 0; ; i++) {
      if (i >= this.opts.minFaults && allEnded()) return;
      const gap = this.opts.faultGapMs * (0.5 + this.prng.next());
      const until = Date.now() + gap;
      while (Date.now() < until && !(i >= this.opts.minFaults && allEnded())) await pause(Math.min(200, until - Date.now()));
      if (i >= this.opts.minFaults && allEnded()) return;
      const kind = kinds[i % 2] ?? 'node-stop';
      this.opts.log(`fault ${i + 1}: ${kind}`);
      const fault = kind === 'node-stop' ? await this.stopConnectedNode() : await this.killLeader();
      this.faults.push(fault);
      this.opts.log(`fault ${i + 1}: ${describeFault(fault)}`);
    }
  }

  /** Which node the bridge is on; waits (up to 30 s) while it has no connection. */
  private async bridgeNode(): Promise<number | undefined> {
    const end = Date.now() + 30_000;
    for (;;) {
      const n = await this.nodes.connectedNode(CONNECTION_NAME).catch(() => undefined);
      if (n !== undefined || Date.now() > end) return n;
      await pause(200);
    }
  }

  private async stopConnectedNode(): Promise<ClusterFault> {
    const n = await this.bridgeNode();
    if (n === undefined) throw new Error('the bridge has no connection to any node');
    const t0 = Date.now();
    const lost = stamp(this.bridge.onLog((line) => line['message'] === 'not consuming'));
    const consumingAgain = stamp(this.bridge.onLog((line) => line['message'] === 'consuming'));
    await this.nodes.node('stop', n);
    const failoverMs = await timeTo(consumingAgain, t0, 120_000);
    if (failoverMs === undefined) this.anomaly(`${this.nodes.name(n)} stopped: the bridge did not consume again within 120 s`);
    const now = await this.bridgeNode();
    const fault = await this.finish('node-stop', n, true, now, t0, failoverMs, await resumeMs(lost, consumingAgain));
    await this.bringBack(n);
    return fault;
  }

  private async killLeader(): Promise<ClusterFault> {
    const leader = await this.nodes.leaderOf(this.names.queueName);
    if (leader === undefined) throw new Error(`no leader found for ${this.names.queueName}`);
    const bridgeWasThere = (await this.bridgeNode()) === leader;
    const t0 = Date.now();
    const lost = stamp(this.bridge.onLog((line) => line['message'] === 'not consuming'));
    const consumingAgain = bridgeWasThere ? stamp(this.bridge.onLog((line) => line['message'] === 'consuming')) : undefined;
    await this.nodes.node('kill', leader);
    const failoverMs = consumingAgain === undefined ? undefined : await timeTo(consumingAgain, t0, 120_000);
    if (bridgeWasThere && failoverMs === undefined)
      this.anomaly(`leader ${this.nodes.name(leader)} killed: the bridge did not consume again within 120 s`);
    let newLeader: number | undefined;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      newLeader = await this.nodes.leaderOf(this.names.queueName, await this.nodes.anyRunning(leader)).catch(() => undefined);
      if (newLeader !== undefined && newLeader !== leader) break;
      await pause(100);
    }
    const leaderMovedMs = newLeader !== undefined && newLeader !== leader ? Date.now() - t0 : undefined;
    if (leaderMovedMs === undefined) this.anomaly(`leader ${this.nodes.name(leader)} killed: no new leader within 60 s`);
    const now = await this.bridgeNode();
    const resume = consumingAgain === undefined ? undefined : await resumeMs(lost, consumingAgain);
    const base = await this.finish('leader-kill', leader, bridgeWasThere, now, t0, failoverMs, resume);
    await this.bringBack(leader);
    return { ...base, newLeader: newLeader === undefined ? undefined : `acx${newLeader}`, leaderMovedMs };
  }

  /** The fault's record, once the bridge is ready again (or 60 s passed). */
  private async finish(
    kind: ClusterFault['kind'],
    n: number,
    bridgeWasThere: boolean,
    now: number | undefined,
    t0: number,
    failoverMs: number | undefined,
    resume: number | undefined,
  ): Promise<ClusterFault> {
    const end = Date.now() + 60_000;
    while (this.readyz.firstReadyAfter(t0 + (failoverMs ?? 0)) === undefined && Date.now() < end) await pause(100);
    const ready = this.readyz.firstReadyAfter(t0 + (failoverMs ?? 0));
    const readyzSaid503 = this.readyz.sawNotReady(t0, ready ?? Date.now());
    if (bridgeWasThere && !readyzSaid503)
      this.anomaly(`${kind} ${this.nodes.name(n)}: the bridge lost its node but /readyz never said 503`);
    return {
      kind,
      node: `acx${n}`,
      bridgeWasThere,
      bridgeNow: now === undefined ? undefined : `acx${now}`,
      failoverMs,
      resumeMs: resume,
      readyAgainMs: ready === undefined ? undefined : ready - t0,
      readyzSaid503,
    };
  }

  /** Starts node n again and waits until every queue of the run has all its members online. */
  private async bringBack(n: number): Promise<void> {
    await this.nodes.node('start', n);
    if (!(await this.nodes.onMembersOnline(this.names.queueName)))
      this.anomaly(`after restarting ${this.nodes.name(n)}: a queue still lacks a member after 300 s`);
  }

  private async stopBridge(): Promise<void> {
    this.stopping = true;
    const exit = this.bridge.onExit();
    this.bridge.signal('SIGTERM');
    const last = await exit;
    if (last !== undefined && last.code !== 0) this.anomaly(`final SIGTERM: exit code ${String(last.code)}`);
    if (!(await this.watch.onIdle(CONVERSION_TIMEOUT_MS + 5000)))
      this.anomaly(`${this.watch.running} conversion steps still running at the end`);
  }

  private async report(): Promise<ClusterReport> {
    let leftInQueues = 0;
    for (const q of [this.names.queueName, ...this.delayQueues]) leftInQueues += await this.observer.depth(q);
    const tally = this.ledger.tally();
    const converted = this.opts.mode === 'real' ? this.ledger.convertedIds() : [];
    const badWavs = converted.flatMap((id) => {
      const problem = wavProblem(this.data.wav(id));
      return problem === undefined ? [] : [`${id}: ${problem}`];
    });
    const tempFilesLeft = tempFiles(this.data.wavDir);
    for (const lie of this.readyz.lies) this.anomaly(`readyz: ${lie}`);
    const counts: Record<string, number> = {};
    for (const f of this.faults) counts[f.kind] = (counts[f.kind] ?? 0) + 1;
    const ok =
      tallyClean(tally) &&
      tally.goodJobsGaveUp === 0 &&
      tally.convertedAndDeadLettered === 0 &&
      badWavs.length === 0 &&
      tempFilesLeft.length === 0 &&
      this.anomalies.length === 0;
    return {
      chaos: {
        tally,
        asterisk: this.watch.tally(),
        faults: counts,
        anomalies: this.anomalies,
        bridgeStarts: this.bridge.starts,
        badWavs: badWavs.slice(0, 20),
        wavsChecked: converted.length,
        tempFilesLeft: tempFilesLeft.slice(0, 20),
        leftInQueues,
        bridgeErrors: [...this.logCounts]
          .sort((a, b) => b[1] - a[1])
          .slice(0, 12)
          .map(([key, n]) => `${n}× ${key}`),
        queueType: 'quorum',
        wallMs: Date.now() - this.started,
        ok,
      },
      faults: this.faults,
      readyz: { samples: this.readyz.samples, lies: this.readyz.lies },
    };
  }

  async cleanup(): Promise<void> {
    this.stopping = true;
    this.readyz.stop();
    await this.bridge.dispose();
    // A node left down by a failed run comes back, so the cluster is whole for the next one.
    for (const n of this.nodes.numbers) if (!(await this.nodes.running(n))) await this.nodes.node('start', n).catch(() => undefined);
    await this.observer.close(this.delayQueues).catch((error: unknown) => this.opts.log(`cleanup: ${String(error)}`));
    await this.emulator.close();
    this.data.remove();
    rmSync(this.workDir, { recursive: true, force: true });
  }
}

/** A promise of the moment (epoch ms) `promise` resolved. */
function stamp(promise: Promise<unknown>): Promise<number> {
  return promise.then(() => Date.now());
}

/** Milliseconds from `lost` to `back` when both happened (looked at once `back` has). */
async function resumeMs(lost: Promise<number>, back: Promise<number>): Promise<number | undefined> {
  const b = await back;
  const l = await Promise.race([lost, Promise.resolve(undefined)]);
  return l === undefined || l > b ? undefined : b - l;
}

/** Milliseconds from t0 until `promise` resolves, or undefined after maxMs. */
async function timeTo(promise: Promise<unknown>, t0: number, maxMs: number): Promise<number | undefined> {
  let done = false;
  await within(
    promise.then(() => (done = true)),
    maxMs,
  );
  return done ? Date.now() - t0 : undefined;
}

export function describeFault(f: ClusterFault): string {
  const ms = (v: number | undefined): string => (v === undefined ? '—' : `${(v / 1000).toFixed(2)} s`);
  const where = f.bridgeWasThere
    ? `bridge was there → now on ${f.bridgeNow ?? '?'}, consuming again ${ms(f.failoverMs)} after the command (${ms(f.resumeMs)} after it saw the loss)`
    : `bridge on ${f.bridgeNow ?? '?'} (unaffected)`;
  const leader =
    f.kind === 'leader-kill' ? `, new leader ${f.newLeader ?? '?'} (seen by list_queues ${ms(f.leaderMovedMs)} after the kill)` : '';
  return `${f.kind} ${f.node}: ${where}${leader}; /readyz 200 again after ${ms(f.readyAgainMs)}${f.readyzSaid503 ? ', said 503 meanwhile' : ''}`;
}
