/**
 * `npm run chaos:cluster`: the chaos run on a local 3-node RabbitMQ cluster. Start the cluster
 * first (as root): scripts/rabbit-cluster/start.sh. Thousands of jobs through the built bridge
 * (quorum queue, HostName = every node) while the node it is connected to is stopped and the
 * queue's leader is killed, in turn. Prints the tally and each fault's failover time; exits 1 if a
 * job is missing or wrong, or /readyz disagreed with the bridge.
 */
import { parseArgs } from 'node:util';
import { describeFault, runClusterChaos } from './chaos/cluster-run.js';
import { formatReport } from './chaos/report.js';

const HELP = `npm run chaos:cluster -- [options]     (the cluster first: sudo scripts/rabbit-cluster/start.sh)

  --jobs N              jobs to publish (default 3000)
  --seed S              PRNG seed for the gaps between faults (default: random, printed)
  --faults N            at least this many faults, node stops and leader kills alternating (default 6)
  --fault-gap SECONDS   mean gap between one fault's end and the next (default 4)
  --publish-over SECONDS  jobs are published evenly over this long (default: max(10, jobs/8): the
                        faults, each with its node's restart, land while jobs are flowing)
  --mode real|instant   real: sox converts every file and each WAV is checked (default)
  --concurrency N       the bridge's [Worker] Concurrency (default 16)
  --bridge-log FILE     append the bridge's JSON log lines to FILE
  AC_CLUSTER_PORT_BASE  as for scripts/rabbit-cluster/ (default 5690: nodes on 5691..5693)
`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      jobs: { type: 'string' },
      seed: { type: 'string' },
      faults: { type: 'string' },
      'fault-gap': { type: 'string' },
      'publish-over': { type: 'string' },
      mode: { type: 'string' },
      concurrency: { type: 'string' },
      'bridge-log': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const num = (name: string, value: string | undefined, fallback: number): number => {
    if (value === undefined) return fallback;
    const n = Number(value);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} ${value}: must be a non-negative number`);
    return n;
  };
  const jobs = Math.floor(num('jobs', values.jobs, 3000));
  const seed = Math.floor(num('seed', values.seed, Math.floor(Math.random() * 2 ** 31)));
  const mode = values.mode ?? 'real';
  if (mode !== 'real' && mode !== 'instant') throw new Error(`--mode ${mode}: must be real or instant`);
  const report = await runClusterChaos({
    jobs,
    seed,
    mode,
    publishOverMs: num('publish-over', values['publish-over'], Math.max(10, jobs / 8)) * 1000,
    faultGapMs: num('fault-gap', values['fault-gap'], 4) * 1000,
    minFaults: Math.floor(num('faults', values.faults, 6)),
    settleMs: 180_000,
    worker: {
      Concurrency: String(Math.floor(num('concurrency', values.concurrency, 16))),
      JobTimeout: '20',
      MaxAttempts: '8',
      RetryDelay: '200ms',
      RetryMaxDelay: '2',
      DrainTimeout: '5',
    },
    bridgeLog: values['bridge-log'],
    log: (line) => process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`),
  });
  const sorted = (pick: (f: (typeof report.faults)[number]) => number | undefined): number[] =>
    report.faults
      .flatMap((f) => {
        const v = pick(f);
        return v === undefined ? [] : [v];
      })
      .sort((a, b) => a - b);
  const failovers = sorted((f) => f.failoverMs);
  const resumes = sorted((f) => f.resumeMs);
  const s = (ms: number | undefined): string => (ms === undefined ? '—' : `${(ms / 1000).toFixed(2)} s`);
  process.stdout.write(
    `\nchaos-cluster tally (seed ${seed}, ${jobs} jobs, mode ${mode}, quorum queue on 3 nodes)\n${formatReport(report.chaos)}\n` +
      `cluster faults\n${report.faults.map((f, i) => `  ${i + 1}. ${describeFault(f)}`).join('\n')}\n` +
      `failover               ${failovers.length} times the bridge lost its node; back to consuming after ` +
      `${s(failovers[0])} (min), ${s(failovers[Math.floor(failovers.length / 2)])} (median), ${s(failovers.at(-1))} (max) from the command; ` +
      `${s(resumes[0])} / ${s(resumes[Math.floor(resumes.length / 2)])} / ${s(resumes.at(-1))} from the bridge seeing the loss\n` +
      `/readyz                ${report.readyz.samples.ready} × 200, ${report.readyz.samples.notReady} × 503, ${report.readyz.samples.failed} unanswered; ` +
      `${report.readyz.lies.length} disagreements with the bridge's own state\n`,
  );
  return report.chaos.ok ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`chaos-cluster: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
