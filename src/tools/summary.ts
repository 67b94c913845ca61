/**
 * `enqueue --wait`: result messages → a summary table and totals. Pure: values in, text out.
 */

/** The fields of a result message (docs/messages.md "Result") that the summary shows. */
export interface ResultView {
  readonly job_id: string;
  readonly status: 'converted' | 'failed';
  readonly wav_bytes?: number;
  readonly error?: { readonly code: string; readonly message: string };
  readonly duration_ms?: number;
  readonly attempts?: number;
}

/** One enqueued job and its result, when one arrived. */
export interface SummaryRow {
  readonly jobId: string;
  readonly result: ResultView | undefined;
}

export interface Totals {
  readonly converted: number;
  readonly failed: number;
  readonly missing: number;
}

/** Reads a result message body; undefined when it is not one. */
export function parseResult(body: unknown): ResultView | undefined {
  let value = body;
  if (Buffer.isBuffer(value)) value = value.toString('utf8');
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      return undefined;
    }
  }
  if (value === null || typeof value !== 'object') return undefined;
  const r = value as Record<string, unknown>;
  if (typeof r.job_id !== 'string' || (r.status !== 'converted' && r.status !== 'failed')) return undefined;
  const error = r.error as Record<string, unknown> | undefined;
  return {
    job_id: r.job_id,
    status: r.status,
    ...(typeof r.wav_bytes === 'number' ? { wav_bytes: r.wav_bytes } : {}),
    ...(error !== null && typeof error === 'object'
      ? {
          error: {
            code: typeof error.code === 'string' ? error.code : 'UNKNOWN',
            message: typeof error.message === 'string' ? error.message : '',
          },
        }
      : {}),
    ...(typeof r.duration_ms === 'number' ? { duration_ms: r.duration_ms } : {}),
    ...(typeof r.attempts === 'number' ? { attempts: r.attempts } : {}),
  };
}

export function totalsOf(rows: readonly SummaryRow[]): Totals {
  let converted = 0;
  let failed = 0;
  let missing = 0;
  for (const row of rows) {
    if (row.result === undefined) missing++;
    else if (row.result.status === 'converted') converted++;
    else failed++;
  }
  return { converted, failed, missing };
}

/** The table (one row per job, in enqueue order), the failures with their messages, and the totals line. */
export function formatSummary(rows: readonly SummaryRow[], wallMs: number): string {
  const header = ['JOB_ID', 'STATUS', 'WAV_BYTES/ERROR', 'DURATION_MS', 'ATTEMPTS'];
  const cells = rows.map(({ jobId, result }) => [
    jobId,
    result?.status ?? 'no result',
    result === undefined ? '-' : result.status === 'converted' ? String(result.wav_bytes ?? '?') : (result.error?.code ?? '?'),
    result?.duration_ms === undefined ? '-' : String(result.duration_ms),
    result?.attempts === undefined ? '-' : String(result.attempts),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  // Numbers read best right-aligned.
  const line = (c: readonly string[]): string =>
    c
      .map((v, i) => (i >= 3 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(header), ...cells.map(line)];

  const failures = rows.filter((r) => r.result?.status === 'failed');
  if (failures.length > 0) {
    out.push('', 'failures:');
    for (const { jobId, result } of failures)
      out.push(`  ${jobId}: ${result?.error?.code ?? '?'}: ${oneLine(result?.error?.message ?? '')}`);
  }

  const t = totalsOf(rows);
  const seconds = wallMs / 1000;
  const rate = seconds > 0 ? (t.converted + t.failed) / seconds : 0;
  out.push(
    '',
    `converted ${t.converted}, failed ${t.failed}${t.missing > 0 ? `, no result ${t.missing}` : ''} ` +
      `of ${rows.length} job${rows.length === 1 ? '' : 's'} in ${seconds.toFixed(2)} s (${rate.toFixed(1)} jobs/s)`,
  );
  return out.join('\n') + '\n';
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
