/**
 * The proof a WAV is what the dialplan said it wrote, before anything is published (docs/messages.md,
 * "verified output"): a RIFF/WAVE header consistent with the file's size, PCM 8 kHz 16-bit with one
 * channel per leg, and 160 samples per whole input frame of the longer leg. And, for a step that
 * reports no hashes or facts (the perl step), the same custody facts app_convert reports: the files'
 * SHA-256 and each channel's audio facts. File reads only; no parsing of anything but the header.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { audioFacts, type AudioFacts } from './facts.js';

export const WAV_HEADER_BYTES = 44;
const SAMPLES_PER_FRAME = 160;

/** What the WAV must hold: one channel per leg, as many samples as the longer leg has whole frames × 160. */
export interface ExpectedWav {
  /** Whole GSM frames of each leg (its size / 33, rounded down). */
  readonly frames: readonly number[];
}

export type WavCheck = { readonly ok: true; readonly bytes: number } | { readonly ok: false; readonly problem: string };

/** The WAV's size for `expected`: the header and 320 bytes per frame per channel. */
export const expectedWavBytes = (expected: ExpectedWav): number =>
  WAV_HEADER_BYTES + SAMPLES_PER_FRAME * 2 * expected.frames.length * Math.max(0, ...expected.frames);

/**
 * Checks the header of the WAV at `path` against its size and `expected`: one open, fstat and
 * 44-byte read, synchronously (a few µs, like the path checks: cheaper than four trips through
 * libuv's thread pool on a local disk).
 */
export function verifyWav(path: string, expected: ExpectedWav): WavCheck {
  const header = Buffer.alloc(WAV_HEADER_BYTES);
  let size: number;
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    size = fstatSync(fd).size;
    const got = readSync(fd, header, 0, WAV_HEADER_BYTES, 0);
    if (got < WAV_HEADER_BYTES) return { ok: false, problem: `the WAV is ${size} bytes: shorter than its header` };
  } catch (error) {
    return { ok: false, problem: `the WAV cannot be read: ${(error as Error).message}` };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return checkHeader(header, size, expected);
}

/** The header check itself (pure): the first problem found, or ok with the size. */
export function checkHeader(h: Buffer, size: number, expected: ExpectedWav): WavCheck {
  const channels = expected.frames.length;
  const want = expectedWavBytes(expected);
  const bad = (problem: string): WavCheck => ({ ok: false, problem });
  if (h.toString('latin1', 0, 4) !== 'RIFF' || h.toString('latin1', 8, 12) !== 'WAVE') return bad('not a RIFF/WAVE file');
  if (h.readUInt32LE(4) !== size - 8) return bad(`the RIFF size says ${h.readUInt32LE(4) + 8} bytes, the file has ${size}`);
  if (h.toString('latin1', 12, 16) !== 'fmt ' || h.readUInt32LE(16) !== 16) return bad('no 16-byte fmt chunk first');
  const [format, ch, rate, byteRate, block, bits] = [
    h.readUInt16LE(20),
    h.readUInt16LE(22),
    h.readUInt32LE(24),
    h.readUInt32LE(28),
    h.readUInt16LE(32),
    h.readUInt16LE(34),
  ];
  if (format !== 1 || rate !== 8000 || bits !== 16 || ch !== channels || byteRate !== 16000 * channels || block !== 2 * channels)
    return bad(
      `the format is ${format === 1 ? 'PCM' : `format ${format}`} ${rate} Hz ${bits}-bit ${ch} channel(s), not PCM 8000 Hz 16-bit ${channels}`,
    );
  if (h.toString('latin1', 36, 40) !== 'data' || h.readUInt32LE(40) !== size - WAV_HEADER_BYTES)
    return bad(`the data chunk does not end the file (${h.readUInt32LE(40)} bytes of ${size - WAV_HEADER_BYTES})`);
  if (size !== want)
    return bad(
      `the WAV has ${(size - WAV_HEADER_BYTES) / 2 / channels} samples per channel, its input ${(want - WAV_HEADER_BYTES) / 2 / channels}`,
    );
  return { ok: true, bytes: size };
}

/** The chain-of-custody facts of one conversion. */
export interface Custody {
  readonly inputSha256: readonly string[];
  readonly wavSha256: string;
  readonly audio: readonly AudioFacts[];
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/**
 * Reads the inputs and the (verified) WAV and computes what app_convert reports itself: for the
 * steps that do not (the perl step). Costs a read and a hash of every byte, and a pass over the samples.
 */
export async function measureCustody(gsmPaths: readonly string[], wavPath: string, expected: ExpectedWav): Promise<Custody> {
  // An input gone since the step read it (only a test double converts one that never was) has no hash.
  const [wav, ...inputs] = await Promise.all([readFile(wavPath), ...gsmPaths.map((p) => readFile(p).catch(() => undefined))]);
  return {
    inputSha256: inputs.map((b) => (b === undefined ? '' : sha256(b))),
    wavSha256: sha256(wav),
    audio: audioFacts(
      wav.subarray(WAV_HEADER_BYTES),
      expected.frames.length,
      expected.frames.map((f) => f * SAMPLES_PER_FRAME),
    ),
  };
}
