/**
 * PURE: a dead-letter record (docs/messages.md "Dead-letter record") → whether `redrive` takes it,
 * and the fresh job message it puts back on an input queue.
 */
import { ATTEMPTS_HEADER } from '../queue/broker.js';

/** How many times a job was re-driven; kept across dead-letterings (it lives in the job's headers). */
export const REDRIVEN_HEADER = 'x-audioconvert-redriven';

/** Headers the broker or the service add on the way: they describe the old life, not the new job. */
const DROPPED_HEADERS = new Set([
  ATTEMPTS_HEADER,
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
  'x-delivery-count',
]);

/** What the tool reads of a record. */
export interface DeadLetter {
  readonly jobId: string;
  readonly code: string;
  readonly attempts: number;
  readonly originalQueue: string | undefined;
}

/** The job to publish again; `problem` instead when the record cannot give the original back. */
export type Redrivable =
  | {
      readonly ok: true;
      readonly record: DeadLetter;
      readonly body: Buffer;
      readonly headers: Record<string, unknown>;
      readonly messageId: string | undefined;
      readonly redriven: number;
    }
  | { readonly ok: false; readonly record: DeadLetter; readonly problem: string };

export interface RedriveFilter {
  /** Empty: any code. */
  readonly codes: readonly string[];
  /** Empty: any job id. */
  readonly jobIds: readonly string[];
}

/** A record matches when its code is one of `codes` AND its job id one of `jobIds` (an empty list matches all). */
export function matches(record: DeadLetter, filter: RedriveFilter): boolean {
  return (
    (filter.codes.length === 0 || filter.codes.includes(record.code)) &&
    (filter.jobIds.length === 0 || filter.jobIds.includes(record.jobId))
  );
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : Buffer.isBuffer(v) ? v.toString() : undefined);

/**
 * Reads a record from its AMQP body (a parsed object when the content type was JSON, else bytes)
 * and headers. Fields come from the body; the headers stand in when the body is not a record.
 */
export function readRecord(
  body: unknown,
  headers: Record<string, unknown> | undefined,
): { record: DeadLetter; fields: Record<string, unknown> | undefined } {
  let fields: Record<string, unknown> | undefined;
  let parsed: unknown = body;
  if (Buffer.isBuffer(body) || typeof body === 'string') {
    try {
      parsed = JSON.parse(body.toString());
    } catch {
      parsed = undefined;
    }
  }
  if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) fields = parsed as Record<string, unknown>;
  const error = typeof fields?.['error'] === 'object' && fields['error'] !== null ? (fields['error'] as Record<string, unknown>) : {};
  const h = headers ?? {};
  const attempts = fields?.['attempts'] ?? h[ATTEMPTS_HEADER];
  return {
    record: {
      jobId: str(fields?.['job_id']) ?? str(h['x-audioconvert-job-id']) ?? '?',
      code: str(error['code']) ?? str(h['x-audioconvert-error-code']) ?? '?',
      attempts: typeof attempts === 'number' ? attempts : 0,
      originalQueue: str(fields?.['original_queue']) ?? str(h['x-audioconvert-original-queue']),
    },
    fields,
  };
}

/** The original job back out of a record: its body (decoded), its headers with attempts reset, one more re-drive. */
export function toRedrive(body: unknown, headers: Record<string, unknown> | undefined): Redrivable {
  const { record, fields } = readRecord(body, headers);
  if (fields === undefined) return { ok: false, record, problem: 'not a dead-letter record (body is not a JSON object)' };
  const original = fields['original_body'];
  if (typeof original !== 'string') return { ok: false, record, problem: 'the record holds no original_body' };
  if (fields['original_body_truncated'] === true)
    return { ok: false, record, problem: 'the original body was cut at 1 MiB when it was dead-lettered' };
  const encoding = fields['body_encoding'];
  if (encoding !== 'utf8' && encoding !== 'base64') return { ok: false, record, problem: `unknown body_encoding ${String(encoding)}` };
  const oldHeaders =
    typeof fields['original_headers'] === 'object' && fields['original_headers'] !== null
      ? (fields['original_headers'] as Record<string, unknown>)
      : {};
  const previous = oldHeaders[REDRIVEN_HEADER];
  const redriven = (typeof previous === 'number' && Number.isInteger(previous) && previous >= 0 ? previous : 0) + 1;
  const kept: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(oldHeaders)) if (!DROPPED_HEADERS.has(key)) kept[key] = value;
  kept[REDRIVEN_HEADER] = redriven;
  return {
    ok: true,
    record,
    body: Buffer.from(original, encoding),
    headers: kept,
    messageId: str(fields['message_id']),
    redriven,
  };
}
