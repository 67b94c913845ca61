/** The benchmark's output: a text table, the markdown results block, the one-line JSON summary. */
import { readFileSync, writeFileSync } from 'node:fs';
import type { BacklogResult } from './backlog.js';
import type { RunResult } from './measure.js';
import type { ProfileLine } from './profile.js';
import { fmt } from './stats.js';

export interface BenchReport {
  readonly startedAt: string;
  readonly machine: string;
  readonly settings: string;
  readonly runs: readonly RunResult[];
  readonly backlogs: readonly BacklogResult[];
  readonly profile?: { top: readonly ProfileLine[]; areas: Record<string, number>; seconds: number; jobsPerS: number } | undefined;
}

/** The design's own process, for the "own CPU" column. */
const OWN: Record<string, string> = {
  bridge: 'bridge',
  broker: 'worker',
  limit: 'bench',
  'seed-ack-immediately': 'bench',
  'seed-fixed': 'bench',
};

const HEAD = [
  'design',
  'mode',
  'C',
  'load',
  'jobs/s',
  'p50 ms',
  'p99 ms',
  'own CPU ms/job',
  'emulator (or Asterisk) ms/job',
  'RabbitMQ ms/job',
  'bench ms/job',
  'busy cores',
  'other cores',
  'peak RSS MB',
];

function row(r: RunResult): string[] {
  const cpu = r.cpuMsPerJob;
  const own = OWN[r.design] ?? '';
  return [
    r.design,
    r.mode,
    String(r.concurrency),
    r.load,
    fmt(r.jobsPerS, r.jobsPerS < 100 ? 1 : 0),
    fmt(r.p50Ms, 2),
    fmt(r.p99Ms, 2),
    fmt(cpu[own], 3),
    fmt(cpu['emulator'], 3),
    fmt(cpu['broker'], 3),
    own === 'bench' ? '(own)' : fmt(cpu['bench'], 3),
    fmt(r.machineBusyCores, 2),
    fmt(r.otherCores, 2),
    fmt(r.rssPeakMb, 0),
  ];
}

/** Plain text table for the terminal. */
export function textTable(runs: readonly RunResult[]): string {
  const rows = [HEAD, ...runs.map(row)];
  const widths = HEAD.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((cell, i) => (i < 2 || i === 3 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  '))
    .join('\n');
}

export function markdownTable(runs: readonly RunResult[]): string {
  const rows = runs.map(row);
  return [
    `| ${HEAD.join(' | ')} |`,
    `|${HEAD.map((_, i) => (i < 2 || i === 3 ? '---' : '---:')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

function find(runs: readonly RunResult[], design: string, mode: string, c: number, paced = false): RunResult | undefined {
  return runs.find((r) => r.design === design && r.mode === mode && r.concurrency === c && (r.load === 'saturated') !== paced);
}

/** The summary object printed as the last line. */
export function summary(report: BenchReport): Record<string, unknown> {
  const { runs } = report;
  const jobs = find(runs, 'bridge', 'instant', 64)?.jobsPerS;
  const limit = find(runs, 'limit', 'instant', 64)?.jobsPerS;
  // The seed at the same concurrency (C agents), best of its two forms: the conservative comparison.
  const seeds = ['seed-ack-immediately', 'seed-fixed']
    .map((d) => find(runs, d, 'instant', 64)?.jobsPerS ?? Number.NaN)
    .filter(Number.isFinite);
  const seed = seeds.length > 0 ? Math.max(...seeds) : undefined;
  // The seed as written: one consumer, one message at a time, acking before the conversion is done.
  const seedAsWritten = find(runs, 'seed-ack-immediately', 'instant', 1)?.jobsPerS;
  const broker = find(runs, 'broker', '-', 64)?.jobsPerS;
  const realRatios: Record<string, number> = {};
  for (const r of runs) {
    if (r.design !== 'bridge' || r.mode !== 'real') continue;
    const l = find(runs, 'limit', 'real', r.concurrency);
    const x = l === undefined ? undefined : round(r.jobsPerS / l.jobsPerS, 3);
    if (x !== undefined) realRatios[String(r.concurrency)] = x;
  }
  const peaks = runs.filter((r) => r.design === 'bridge').map((r) => r.rssPeakMb ?? 0);
  // As shipped: the backlog runs without extra node flags.
  for (const b of report.backlogs) if (b.nodeFlags === '') peaks.push(b.hwmMb);
  const backlog = report.backlogs.find((b) => b.nodeFlags === '');
  const capped = report.backlogs.find((b) => b.nodeFlags !== '');
  const ratio = (a: number | undefined, b: number | undefined): number | undefined =>
    a !== undefined && b !== undefined ? round(a / b, 3) : undefined;
  return {
    jobs_per_s: round(jobs, 0),
    limit_jobs_per_s: round(limit, 0),
    seed_jobs_per_s: round(seed, 0),
    broker_jobs_per_s: round(broker, 0),
    seed_as_written_jobs_per_s: round(seedAsWritten, 0),
    p99_ms: round((find(runs, 'bridge', 'instant', 16, true) ?? find(runs, 'bridge', 'instant', 16))?.p99Ms, 2),
    p99_ms_load: (find(runs, 'bridge', 'instant', 16, true) ?? find(runs, 'bridge', 'instant', 16))?.load,
    p99_ms_saturated: round(find(runs, 'bridge', 'instant', 16)?.p99Ms, 2),
    rss_mb_peak: round(Math.max(...peaks), 1),
    real_ratio_vs_limit: realRatios['16'] ?? realRatios['64'],
    real_ratio_vs_limit_by_concurrency: realRatios,
    ratio_vs_broker: ratio(jobs, broker),
    ratio_vs_seed: ratio(jobs, seed),
    ratio_vs_seed_as_written: ratio(jobs, seedAsWritten),
    ratio_vs_limit: ratio(jobs, limit),
    bridge_cpu_ms_per_job: round(find(runs, 'bridge', 'instant', 64)?.cpuMsPerJob['bridge'], 3),
    backlog_messages: backlog?.messages,
    backlog_rss_mb: report.backlogs.map((b) => ({
      concurrency: b.concurrency,
      node_flags: b.nodeFlags,
      ready: round(b.rssReadyMb, 1),
      max: round(b.rssMaxMb, 1),
      end: round(b.rssEndMb, 1),
      hwm: round(b.hwmMb, 1),
    })),
    rss_mb_peak_capped_young_gen: capped === undefined ? undefined : round(capped.hwmMb, 1),
    settings: report.settings,
  };
}

function round(x: number | undefined, digits: number): number | undefined {
  if (x === undefined || !Number.isFinite(x)) return undefined;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The generated part of docs/benchmarks.md (between the bench markers). */
export function markdownResults(report: BenchReport): string {
  const lines = [`Run ${report.startedAt} on ${report.machine}; ${report.settings}.`, '', markdownTable(report.runs), ''];
  const notes = report.runs.filter((r) => r.notes !== undefined);
  for (const r of notes)
    lines.push(
      `- ${r.design} ${r.mode} C=${r.concurrency}: ${Object.entries(r.notes!)
        .map(([k, v]) => `${k} = ${typeof v === 'number' ? fmt(v, 1) : v}`)
        .join(', ')}`,
    );
  if (notes.length > 0) lines.push('');
  for (const b of report.backlogs) {
    lines.push(
      `Backlog (C=${b.concurrency}${b.nodeFlags === '' ? '' : `, node ${b.nodeFlags}`}): ${b.messages} jobs queued (${b.queuedAtStart} ready when the bridge started; published in ${fmt(b.publishSeconds, 1)} s), ` +
        `drained in ${fmt(b.drainSeconds, 1)} s (${fmt(b.drainJobsPerS)} jobs/s, ${b.failures} failed). Bridge RSS MB at 0/25/50/75/100 % drained: ` +
        `${b.rssByProgress.map((x) => fmt(x, 1)).join(' / ')}; max ${fmt(b.rssMaxMb, 1)}, VmHWM ${fmt(b.hwmMb, 1)}.`,
      '',
    );
  }
  const p = report.profile;
  if (p !== undefined) {
    lines.push(
      `CPU profile of the bridge (instant, C=64, ${fmt(p.jobsPerS)} jobs/s while profiled, ${fmt(p.seconds, 1)} s): ` +
        Object.entries(p.areas)
          .sort((a, b2) => b2[1] - a[1])
          .map(([k, v]) => `${k} ${fmt(v, 1)} %`)
          .join(', ') +
        '.',
      '',
    );
    lines.push(
      '| self % | function | where |',
      '|---:|---|---|',
      ...p.top.map((t) => `| ${fmt(t.selfPct, 1)} | \`${t.name}\` | ${t.where} |`),
      '',
    );
  }
  lines.push('```json', JSON.stringify(summary(report)), '```');
  return lines.join('\n');
}

/** Replaces the generated block `name` of `file` (appends markers when missing); the prose around it stays. */
export function writeResults(file: string, block: string, name = 'results'): void {
  const BEGIN = `<!-- bench:${name}:begin -->`;
  const END = `<!-- bench:${name}:end -->`;
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    text = '# Benchmarks\n\n';
  }
  const body = `${BEGIN}\n${block}\n${END}`;
  const a = text.indexOf(BEGIN);
  const z = text.indexOf(END);
  text = a >= 0 && z > a ? text.slice(0, a) + body + text.slice(z + END.length) : `${text.trimEnd()}\n\n${body}\n`;
  writeFileSync(file, text);
}
