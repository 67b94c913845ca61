/**
 * `npm run bench [-- --quick] [-- --backlog N] [-- --profile] [-- --no-doc] [-- --log-level WARNING]`
 *
 * The bridge against its baselines, on this machine: real RabbitMQ, the AMI emulator in its own
 * process (instant: answers with the recorded events at once; real: sox conversions), the bridge
 * in its own process. Designs: bridge, limit (one AMI socket, no RabbitMQ), the seed's design
 * (connection per message; ack-immediately and fixed), broker (consume + publish + ack, no AMI).
 * Prints a table and, as the last line, one JSON object. See docs/benchmarks.md.
 *
 * `--asterisk` (or `--ami host:port --ami-user U --ami-secret S [--asterisk-pid P]`): the same
 * direct driver and bridge against a REAL Asterisk instead (bench/real-asterisk.ts).
 */
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { BenchBroker } from './amqp.js';
import { runBacklog, type BacklogResult } from './backlog.js';
import { runBridge, runBrokerBaseline } from './drive-amqp.js';
import { runLimit } from './drive-limit.js';
import { runSeed } from './drive-seed.js';
import { REPO, makeDataRoot, startEmulator, type DataRoot, type EmulatorProc } from './env.js';
import type { Mode, RunResult } from './measure.js';
import { findBrokerPid, waitQuiet } from './procstat.js';
import { newestProfile, summarizeProfile } from './profile.js';
import { markdownResults, markdownTable, summary, textTable, writeResults, type BenchReport } from './report.js';
import { givenAsterisk, makeAsteriskData, startInstance } from './asterisk.js';
import { asteriskSummary, runAsteriskBench } from './real-asterisk.js';
import { cpuSplit } from './affinity.js';
import { onInterrupt } from './interrupt.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    backlog: { type: 'string' },
    concurrency: { type: 'string' },
    modes: { type: 'string' },
    designs: { type: 'string' },
    'log-level': { type: 'string', default: 'INFO' },
    profile: { type: 'boolean' },
    'no-profile': { type: 'boolean' },
    'warmup-ms': { type: 'string' },
    'warmup-jobs': { type: 'string' },
    'measure-ms': { type: 'string' },
    rate: { type: 'string' },
    'quiet-wait-ms': { type: 'string' },
    'bridge-node-flags': { type: 'string' },
    'queued-per-slot': { type: 'string' },
    'profile-out': { type: 'string' },
    'no-doc': { type: 'boolean', default: false },
    doc: { type: 'string', default: path.join(REPO, 'docs', 'benchmarks.md') },
    amqp: { type: 'string', default: process.env['AUDIOCONVERT_BENCH_AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672' },
    // Real-Asterisk mode (bench/real-asterisk.ts).
    asterisk: { type: 'boolean', default: false },
    ami: { type: 'string' },
    'ami-user': { type: 'string', default: 'auditorai' },
    'ami-secret': { type: 'string', default: process.env['AUDIOCONVERT_BENCH_AMI_SECRET'] },
    'asterisk-pid': { type: 'string' },
    dialplans: { type: 'string' },
    repeat: { type: 'string' },
    'split-cpus': { type: 'boolean', default: false },
  },
});

const quick = args.quick === true;
const list = (text: string | undefined, fallback: string[]): string[] =>
  text === undefined
    ? fallback
    : text
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
const concurrencies = list(args.concurrency, ['1', '4', '16', '64']).map(Number);
const modes = list(args.modes, ['instant', 'real']) as Array<'instant' | 'real'>;
const designs = new Set(list(args.designs, ['limit', 'bridge', 'seed', 'broker']));
const backlogSize = Number(args.backlog ?? (quick ? 5000 : 100_000));
const warmupMs = Number(args['warmup-ms'] ?? (quick ? 300 : 1000));
/**
 * Real-Asterisk mode: jobs each row completes before it is measured (at least C). Each bridge row
 * starts a new bridge process, while the direct driver runs in this long-lived one: without a few
 * hundred jobs of warm-up the bridge is measured with V8 still compiling its code (its CPU per job
 * fell from 3.4 to 2.5 ms over its first minute at 16/s).
 */
const warmupJobs = Number(args['warmup-jobs'] ?? (quick ? 0 : 200));
const measureMs = Number(args['measure-ms'] ?? (quick ? 700 : 4000));
const logLevel = args['log-level'];
/**
 * Real-Asterisk mode, the bridge's saturated rows: jobs kept waiting in its queue per slot, besides
 * the C in flight (bench/loop.ts, `backlog`). 0 measures the closed loop's round trip as well.
 */
const queuedPerSlot = Number(args['queued-per-slot'] ?? 1);
/** Extra node flags for the bridge process (e.g. heap sizing experiments). */
const bridgeFlags = args['bridge-node-flags'] === undefined ? [] : args['bridge-node-flags'].split(' ').filter(Boolean);
const profile = args['no-profile'] === true ? false : (args.profile ?? !quick);
/** How long each row may wait for other work on the machine to stop (0: never wait). */
const quietWaitMs = Number(args['quiet-wait-ms'] ?? (quick ? 0 : 20_000));
// The seed's design is slow and, acking early, floods real mode with conversions: in --quick only where the summary needs it.
const seedAt = (mode: string, c: number): boolean => designs.has('seed') && (!quick || (mode === 'instant' && (c === 1 || c === 64)));
const brokerAt = (c: number): boolean => designs.has('broker') && (!quick || c >= 16);

const runId = `bench.${Date.now().toString(36)}`;
/**
 * Memory under backlog: the bridge as shipped at C=64 (the fastest drain: the most garbage per
 * second) and C=16, and at C=64 as the shipped unit runs it: its heap flags (young and old generation
 * capped) and its MALLOC_ARENA_MAX.
 */
const BACKLOG_VARIANTS: ReadonlyArray<{ concurrency: number; flags: string[]; env?: Record<string, string> }> = quick
  ? [{ concurrency: 64, flags: [] }]
  : [
      { concurrency: 64, flags: [] },
      { concurrency: 16, flags: [] },
      { concurrency: 64, flags: ['--max-semi-space-size=8', '--max-old-space-size=128'], env: { MALLOC_ARENA_MAX: '2' } },
    ];
/** The concurrency of the latency target (p99 at C=16, instant). */
const PACED_AT = 16;
const log = (line: string): void => void process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  if (args.asterisk || args.ami !== undefined) return mainAsterisk();
  const t0 = Date.now();
  const data = makeDataRoot();
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'ac-bench-work-'));
  const broker = new BenchBroker(args.amqp);
  await broker.connection.onConnect(10_000);
  const brokerPid = findBrokerPid(Number(new URL(args.amqp).port || 5672));
  const emulators = new Map<string, EmulatorProc>();
  const runs: RunResult[] = [];
  const backlogs: BacklogResult[] = [];
  let prof: BenchReport['profile'];
  try {
    for (const mode of modes) emulators.set(mode, await startEmulator(mode, data.root));
    for (const mode of modes) {
      const emu = emulators.get(mode)!;
      for (const c of concurrencies) {
        for (const r of await runConfig(mode, c, emu, brokerPid, data, broker, workDir)) {
          runs.push(r);
          log(textTable([r]).split('\n')[1]!);
        }
      }
    }
    if (backlogSize > 0 && designs.has('bridge')) {
      const emu = emulators.get('instant') ?? (await startEmulatorFor('instant', data, emulators));
      for (const [i, variant] of BACKLOG_VARIANTS.entries()) {
        const flags = [...bridgeFlags, ...variant.flags];
        log(
          `backlog: publishing ${backlogSize} jobs, then starting the bridge (instant, C=${variant.concurrency}${flags.length > 0 ? `, ${flags.join(' ')}` : ''}${variant.env === undefined ? '' : `, ${JSON.stringify(variant.env)}`})…`,
        );
        const b = await runBacklog({
          broker,
          messages: backlogSize,
          gsm: data.gsm,
          wavFor: () => data.wav('instant'),
          amqpUrl: args.amqp,
          queue: `${runId}.backlog${i}`,
          amiPort: emu.port,
          concurrency: variant.concurrency,
          root: data.root,
          logLevel,
          workDir,
          nodeFlags: flags,
          ...(variant.env === undefined ? {} : { env: variant.env }),
        });
        backlogs.push(b);
        log(
          `backlog: RSS MB ${b.rssByProgress.map((x) => x.toFixed(1)).join(' / ')} (0…100 % drained), VmHWM ${b.hwmMb.toFixed(1)}, ${b.drainJobsPerS.toFixed(0)} jobs/s`,
        );
      }
    }
    if (profile && designs.has('bridge')) {
      prof = await profileBridge(
        emulators.get('instant') ?? (await startEmulatorFor('instant', data, emulators)),
        brokerPid,
        data,
        broker,
        workDir,
      );
      if (prof !== undefined) {
        log(
          `profile: ${Object.entries(prof.areas)
            .map(([k, v]) => `${k} ${v.toFixed(1)}%`)
            .join(', ')}`,
        );
        for (const t of prof.top) log(`  ${t.selfPct.toFixed(1).padStart(5)}%  ${t.name}  ${t.where}`);
      }
    }
  } finally {
    for (const emu of emulators.values()) await emu.stop();
    await broker.close();
    data.remove();
    rmSync(workDir, { recursive: true, force: true });
  }
  const report: BenchReport = {
    startedAt: new Date(t0).toISOString(),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}`,
    settings: `${quick ? 'quick' : 'full'} run, window = concurrency, warm-up ${warmupMs} ms, measured ${measureMs} ms per row, bridge log level ${logLevel}, ${((Date.now() - t0) / 1000).toFixed(0)} s in all`,
    runs,
    backlogs,
    profile: prof,
  };
  process.stdout.write(`\n${textTable(runs)}\n\n`);
  if (!args['no-doc'] && !quick) {
    writeResults(args.doc, markdownResults(report));
    log(`results written to ${args.doc}`);
  }
  process.stdout.write(`${JSON.stringify(summary(report))}\n`);
}

/** `--asterisk`: direct driver vs bridge on a real Asterisk (bench/real-asterisk.ts). */
async function mainAsterisk(): Promise<void> {
  const t0 = Date.now();
  const workDir = mkdtempSync(path.join(os.tmpdir(), 'ac-bench-work-'));
  const broker = new BenchBroker(args.amqp);
  const target =
    args.ami === undefined
      ? startInstance()
      : givenAsterisk(
          args.ami,
          args['ami-user'],
          args['ami-secret'] ?? '',
          args['asterisk-pid'] === undefined ? undefined : Number(args['asterisk-pid']),
        );
  const data = makeAsteriskData(runId);
  const cleanUp = (): void => {
    target.stop();
    data.remove();
    rmSync(workDir, { recursive: true, force: true });
  };
  // Ctrl-C must not leave the throwaway Asterisk running or the run's files in the dialplan's root.
  const forget = onInterrupt(cleanUp);
  let runs: RunResult[] = [];
  try {
    await broker.connection.onConnect(10_000);
    runs = await runAsteriskBench({
      target,
      data,
      concurrencies,
      repeat: Number(args.repeat ?? (quick ? 1 : 3)),
      warmupMs,
      warmupJobs,
      measureMs: Number(args['measure-ms'] ?? (quick ? 2000 : 8000)),
      dialplans: list(args.dialplans, []),
      shipped: path.join(REPO, 'config', 'asterisk', 'extensions.conf'),
      bridge: designs.has('bridge'),
      rate: args.rate === undefined ? undefined : Number(args.rate),
      broker,
      brokerPid: findBrokerPid(Number(new URL(args.amqp).port || 5672)),
      amqpUrl: args.amqp,
      runId,
      logLevel,
      workDir,
      bridgeNodeFlags: bridgeFlags,
      queuedPerSlot,
      quietWaitMs,
      split: args['split-cpus'] ? cpuSplit() : undefined,
      log,
    });
  } finally {
    forget();
    cleanUp();
    await broker.close();
  }
  const settings = `${quick ? 'quick' : 'full'} real-Asterisk run, window = concurrency (the bridge's rows with ${queuedPerSlot} × C more jobs waiting in its queue), warm-up ${warmupMs} ms and until max(C, ${warmupJobs}) jobs completed, measured ${args['measure-ms'] ?? (quick ? 2000 : 8000)} ms per row, bridge log level ${logLevel}${args['split-cpus'] ? ', CPU split (--split-cpus)' : ''}, ${((Date.now() - t0) / 1000).toFixed(0)} s in all`;
  const machine = `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node ${process.version}`;
  const sum = asteriskSummary(runs);
  process.stdout.write(`\n${textTable(runs)}\n\n`);
  // The results block is the shared-machine run: a variant or CPU-split run goes to its own table, by hand.
  if (!args['no-doc'] && !quick && args.dialplans === undefined && !args['split-cpus']) {
    const block = [
      `Run ${new Date(t0).toISOString()} on ${machine}; ${settings}.`,
      '',
      markdownTable(runs),
      '',
      '```json',
      JSON.stringify(sum),
      '```',
    ].join('\n');
    writeResults(args.doc, block, 'asterisk');
    log(`results written to ${args.doc}`);
  }
  process.stdout.write(`${JSON.stringify(sum)}\n`);
}

async function startEmulatorFor(mode: 'instant' | 'real', data: DataRoot, emulators: Map<string, EmulatorProc>): Promise<EmulatorProc> {
  const emu = await startEmulator(mode, data.root);
  emulators.set(mode, emu);
  return emu;
}

/**
 * Runs one row, once more if it fails: other users of this RabbitMQ (a test closing every
 * connection, say) can lose a run's messages; the retry uses fresh queues.
 */
async function row<T>(what: string, fn: (attempt: number) => Promise<T>): Promise<T> {
  if (quietWaitMs > 0) {
    const busy = await waitQuiet(0.25, quietWaitMs);
    if (busy >= 0.25) log(`${what}: the machine is still busy (${busy.toFixed(2)} cores used by others); measuring anyway`);
  }
  try {
    return await fn(1);
  } catch (error) {
    log(`${what} failed (${error instanceof Error ? error.message : String(error)}); running it again`);
    return fn(2);
  }
}

/** Every design at one (mode, concurrency). */
async function runConfig(
  mode: 'instant' | 'real',
  c: number,
  emu: EmulatorProc,
  brokerPid: number | undefined,
  data: DataRoot,
  broker: BenchBroker,
  workDir: string,
): Promise<RunResult[]> {
  const out: RunResult[] = [];
  const tag = `${mode}.c${c}`;
  const wavFor = (seq: number): string => (mode === 'instant' ? data.wav('instant') : data.wav(`r${seq % 1024}`));
  const base = { mode: mode as Mode, concurrency: c, warmupMs, measureMs, gsm: data.gsm, wavFor };
  const emuPids = new Map<string, number | undefined>([
    ['emulator', emu.pid],
    ['bench', process.pid],
  ]);
  const allPids = new Map<string, number | undefined>([...emuPids, ['broker', brokerPid]]);
  if (designs.has('limit')) out.push(await row(`limit ${tag}`, () => runLimit({ ...base, pids: emuPids, amiPort: emu.port })));
  if (designs.has('bridge')) {
    const r = await row(`bridge ${tag}`, (n) =>
      runBridge({
        ...base,
        pids: allPids,
        broker,
        amqpUrl: args.amqp,
        queue: `${runId}.${tag}.${n}`,
        amiPort: emu.port,
        root: data.root,
        logLevel,
        workDir,
        nodeFlags: bridgeFlags,
      }),
    );
    if (r.logProblems.length > 0) log(`bridge ${tag} logged problems:\n  ${r.logProblems.join('\n  ')}`);
    log(
      `bridge ${tag} memory MB: ${Object.entries(r.memoryMb ?? {})
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(', ')}`,
    );
    out.push(r);
  }
  if (seedAt(mode, c)) {
    for (const form of ['ack-immediately', 'fixed'] as const) {
      out.push(
        await row(`seed-${form} ${tag}`, async (n) => {
          const queue = `${runId}.seed.${form}.${tag}.${n}`;
          try {
            const seedWav = (seq: number): string => (mode === 'instant' ? data.wav('instant') : data.wav(`s${form[0]}${c}n${n}-${seq}`));
            return await runSeed({ ...base, wavFor: seedWav, pids: allPids, form, amiPort: emu.port, broker, queue });
          } finally {
            await broker.remove([queue], []);
          }
        }),
      );
    }
  }
  const brokerPids = new Map([
    ['broker', brokerPid],
    ['bench', process.pid],
  ]);
  if (mode === modes[0] && brokerAt(c)) {
    out.push(
      await row(`broker ${tag}`, (n) =>
        runBrokerBaseline({ ...base, mode: '-', pids: brokerPids, broker, amqpUrl: args.amqp, queue: `${runId}.broker.c${c}.${n}` }),
      ),
    );
  }
  // Latency below capacity: the same designs at a steady half of the bridge's saturated rate.
  const saturated = out.find((r) => r.design === 'bridge');
  if (mode === 'instant' && c === PACED_AT && saturated !== undefined) {
    const ratePerS = args.rate !== undefined ? Number(args.rate) : Math.max(50, Math.round(saturated.jobsPerS / 2 / 50) * 50);
    const paced = { ...base, ratePerS };
    if (designs.has('limit')) out.push(await row(`limit ${tag} paced`, () => runLimit({ ...paced, pids: emuPids, amiPort: emu.port })));
    out.push(
      await row(`bridge ${tag} paced`, (n) =>
        runBridge({
          ...paced,
          pids: allPids,
          broker,
          amqpUrl: args.amqp,
          queue: `${runId}.${tag}.paced.${n}`,
          amiPort: emu.port,
          root: data.root,
          logLevel,
          workDir,
        }),
      ),
    );
    if (brokerAt(c))
      out.push(
        await row(`broker ${tag} paced`, (n) =>
          runBrokerBaseline({
            ...paced,
            mode: '-',
            pids: brokerPids,
            broker,
            amqpUrl: args.amqp,
            queue: `${runId}.broker.c${c}.paced.${n}`,
          }),
        ),
      );
  }
  return out;
}

/** The bridge under `--cpu-prof` at instant C=64: where its CPU goes. */
async function profileBridge(
  emu: EmulatorProc,
  brokerPid: number | undefined,
  data: DataRoot,
  broker: BenchBroker,
  workDir: string,
): Promise<BenchReport['profile']> {
  const dir = path.join(workDir, 'profile');
  log('profiling the bridge (instant, C=64, --cpu-prof)…');
  const r = await runBridge({
    mode: 'instant',
    concurrency: 64,
    warmupMs,
    measureMs,
    gsm: data.gsm,
    wavFor: () => data.wav('instant'),
    pids: new Map([
      ['emulator', emu.pid],
      ['broker', brokerPid],
    ]),
    broker,
    amqpUrl: args.amqp,
    queue: `${runId}.profile`,
    amiPort: emu.port,
    root: data.root,
    logLevel,
    workDir,
    nodeFlags: ['--cpu-prof', `--cpu-prof-dir=${dir}`],
  });
  const file = newestProfile(dir);
  if (file === undefined) return undefined;
  if (args['profile-out'] !== undefined) copyFileSync(file, args['profile-out']);
  return { ...summarizeProfile(file, 25), jobsPerS: r.jobsPerS };
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
