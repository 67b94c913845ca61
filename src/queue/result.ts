/**
 * Result messages and dead-letter envelopes, pure: plain values in, JSON-ready objects out
 * (docs/messages.md "Result"). No clock reads: every time comes in as an argument.
 */
import { asciiSafe } from '../util/text.js';
import { ATTEMPTS_HEADER } from './broker.js';
import { hasOnlyPathChars } from '../names.js';

/** What every result says about the job. */
export interface ResultBase {
  jobId: string;
  /** Omitted from the result when absent or not safe to echo (an invalid message's raw path). */
  gsmPath?: string;
  wavPath?: string;
  attempts: number;
  startedAt: Date;
  finishedAt: Date;
}

interface ResultCommon {
  readonly job_id: string;
  readonly gsm_path?: string;
  readonly wav_path?: string;
  readonly attempts: number;
  readonly started_at: string;
  readonly finished_at: string;
  readonly duration_ms: number;
}

/** Routing key `converted`. */
export interface ConvertedResult extends ResultCommon {
  readonly status: 'converted';
  readonly wav_bytes: number;
}

/** Routing key `failed`. */
export interface FailedResult extends ResultCommon {
  readonly status: 'failed';
  readonly error: { readonly code: string; readonly message: string };
}

/** The `converted` result: the WAV exists and has `wavBytes` bytes. */
export function convertedResult(job: ResultBase & { wavBytes: number }): ConvertedResult {
  return { job_id: job.jobId, status: 'converted', ...safePaths(job), wav_bytes: job.wavBytes, ...timing(job) };
}

/** The `failed` result; `code` is one of the codes in docs/messages.md "Error codes" (an AppError's `code`). */
export function failedResult(job: ResultBase & { code: string; message: string }): FailedResult {
  return { job_id: job.jobId, status: 'failed', ...safePaths(job), ...timing(job), error: { code: job.code, message: job.message } };
}

/** Defence in depth: a path that would not pass the character rule is never echoed. */
function safePaths(job: ResultBase): Pick<ResultCommon, 'gsm_path' | 'wav_path'> {
  return {
    ...(job.gsmPath !== undefined && hasOnlyPathChars(job.gsmPath) ? { gsm_path: job.gsmPath } : {}),
    ...(job.wavPath !== undefined && hasOnlyPathChars(job.wavPath) ? { wav_path: job.wavPath } : {}),
  };
}

function timing(job: ResultBase): Pick<ResultCommon, 'attempts' | 'started_at' | 'finished_at' | 'duration_ms'> {
  return {
    attempts: job.attempts,
    started_at: job.startedAt.toISOString(),
    finished_at: job.finishedAt.toISOString(),
    duration_ms: Math.max(0, Math.round(job.finishedAt.getTime() - job.startedAt.getTime())),
  };
}

// ---- dead letters ---------------------------------------------------------------------------

/** Longest x-audioconvert-reason header, in characters (after escaping to ASCII). */
export const MAX_REASON_HEADER_CHARS = 1000;
/**
 * Most bytes of the original body kept in the envelope. A body is refused above 64 KiB, but the
 * broker may deliver far more; base64 grows it by a third, and the envelope must still fit the
 * broker's message size limit, or the dead letter itself would fail to publish.
 */
export const MAX_DEAD_LETTER_BODY_BYTES = 1024 * 1024;

export interface DeadLetterArgs {
  jobId: string;
  code: string;
  reason: string;
  attempts: number;
  originalBody: Buffer;
  originalHeaders?: Record<string, unknown>;
  messageId?: string;
  failedAt: Date;
  queue: string;
}

/** What is published to the dead-letter queue: a JSON body (with the original message) and AMQP headers. */
export interface DeadLetterEnvelope {
  body: {
    readonly job_id: string;
    readonly error: { readonly code: string; readonly reason: string };
    readonly attempts: number;
    readonly failed_at: string;
    readonly original_queue: string;
    readonly message_id?: string;
    readonly original_headers?: Record<string, unknown>;
    /** `utf8` when the original body was valid UTF-8 (kept as text), else `base64`. */
    readonly body_encoding: 'utf8' | 'base64';
    readonly original_body: string;
    readonly original_body_bytes: number;
    /** True when only the first MAX_DEAD_LETTER_BODY_BYTES were kept. */
    readonly original_body_truncated: boolean;
  };
  headers: Record<string, string | number>;
}

/** The dead-letter message for a job that will never succeed (or ran out of attempts). */
export function deadLetterEnvelope(args: DeadLetterArgs): DeadLetterEnvelope {
  const failedAt = args.failedAt.toISOString();
  const original = encodeOriginalBody(args.originalBody);
  return {
    body: {
      job_id: args.jobId,
      error: { code: args.code, reason: args.reason },
      attempts: args.attempts,
      failed_at: failedAt,
      original_queue: args.queue,
      ...(args.messageId === undefined ? {} : { message_id: args.messageId }),
      ...(args.originalHeaders === undefined ? {} : { original_headers: jsonSafeRecord(args.originalHeaders) }),
      ...original,
    },
    headers: {
      'x-audioconvert-error-code': headerText(args.code, 64),
      'x-audioconvert-reason': headerText(args.reason, MAX_REASON_HEADER_CHARS),
      'x-audioconvert-job-id': headerText(args.jobId, 256),
      [ATTEMPTS_HEADER]: args.attempts,
      'x-audioconvert-failed-at': failedAt,
      'x-audioconvert-original-queue': headerText(args.queue, 256),
    },
  };
}

/** Printable ASCII only (others as `<U+XXXX>`), at most `max` characters, marked `...` when cut. */
function headerText(text: string, max: number): string {
  const safe = asciiSafe(text);
  return safe.length <= max ? safe : `${safe.slice(0, max - 3)}...`;
}

function encodeOriginalBody(
  body: Buffer,
): Pick<DeadLetterEnvelope['body'], 'body_encoding' | 'original_body' | 'original_body_bytes' | 'original_body_truncated'> {
  const truncated = body.byteLength > MAX_DEAD_LETTER_BODY_BYTES;
  let text: string | undefined;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    text = undefined;
  }
  const common = { original_body_bytes: body.byteLength, original_body_truncated: truncated };
  if (text === undefined) {
    return { body_encoding: 'base64', original_body: body.subarray(0, MAX_DEAD_LETTER_BODY_BYTES).toString('base64'), ...common };
  }
  if (!truncated) return { body_encoding: 'utf8', original_body: text, ...common };
  // Cut on a character boundary: step back over UTF-8 continuation bytes (10xxxxxx).
  let end = MAX_DEAD_LETTER_BODY_BYTES;
  while (end > 0 && ((body[end] ?? 0) & 0xc0) === 0x80) end--;
  return { body_encoding: 'utf8', original_body: body.subarray(0, end).toString('utf8'), ...common };
}

/** AMQP header tables may hold bigints, Buffers and Dates; JSON holds none of them. Depth-bounded. */
function jsonSafeRecord(record: Record<string, unknown>, depth = 0): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(record)) {
    const safe = jsonSafe(value, depth + 1);
    if (safe !== undefined) out[key] = safe;
  }
  return out;
}

function jsonSafe(value: unknown, depth: number): unknown {
  if (depth > 8) return '[nested too deep]';
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (Array.isArray(value)) return value.map((item) => jsonSafe(item, depth + 1) ?? null);
  if (typeof value === 'object') return jsonSafeRecord(value as Record<string, unknown>, depth);
  return undefined;
}
