/**
 * What a converted WAV holds, and its proof, for the transcription stage (docs/messages.md "audio",
 * "verified output"). The audio facts per channel — duration, peak and RMS level, the share of
 * silent 20 ms blocks and of clipped samples, the flags — with the same definitions as app_convert
 * (asterisk/app_convert.c), which computes them while it converts: these are for the steps that do
 * not (the perl step, the emulator) and for the tests. The proof: a RIFF/WAVE header consistent
 * with the file's size, PCM 8 kHz 16-bit with one channel per input, 160 samples per whole input
 * frame of the longer input. And the custody facts (the files' SHA-256) measured from the files for
 * a step that reports none. Pure, but for the file reads of verifyWav and measureCustody.
 */
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readFileSync, readSync } from 'node:fs';

/** A 20 ms block (160 samples at 8 kHz) is silent when its RMS is below this. */
export const SILENCE_DBFS = -50;
/** The level reported for no signal at all, instead of minus infinity. */
export const FLOOR_DBFS = -120;
const BLOCK = 160;
const SILENT_BLOCK_SUM = (32768 * 10 ** (SILENCE_DBFS / 20)) ** 2 * BLOCK;

export interface AudioFacts {
  readonly duration_ms: number;
  readonly peak_dbfs: number;
  readonly rms_dbfs: number;
  readonly silence_ratio: number;
  readonly clipped_ratio: number;
}

/** Round half up to `digits` decimals, as app_convert does (so both print the same text). */
const round = (x: number, digits: number): number => {
  const f = 10 ** digits;
  return Math.floor(x * f + 0.5) / f;
};
const dbfs = (amplitude: number): number => (amplitude <= 0 ? FLOOR_DBFS : Math.max(FLOOR_DBFS, 20 * Math.log10(amplitude / 32768)));

/**
 * The facts of each channel of 16-bit little-endian interleaved PCM `data` with `channels`
 * channels; channel i counts its first `samples[i]` samples only (a shorter leg's padding is not its
 * audio).
 */
export function audioFacts(data: Buffer, channels: number, samples: readonly number[]): AudioFacts[] {
  const pcm = samplesOf(data);
  return samples.map((n, ch) => {
    let peak = 0;
    let sum = 0;
    let clipped = 0;
    let silent = 0;
    const blocks = Math.floor(n / BLOCK);
    for (let b = 0; b < blocks; b++) {
      let sq = 0;
      for (let i = b * BLOCK * channels + ch, end = (b + 1) * BLOCK * channels; i < end; i += channels) {
        const v = pcm[i]!;
        sq += v * v;
        const mag = v < 0 ? -v : v;
        if (mag > peak) peak = mag;
        if (v === 32767 || v === -32768) clipped++;
      }
      sum += sq;
      if (sq < SILENT_BLOCK_SUM) silent++;
    }
    const counted = blocks * BLOCK;
    return {
      duration_ms: Math.floor(counted / 8),
      peak_dbfs: round(dbfs(peak), 2),
      rms_dbfs: round(dbfs(counted ? Math.sqrt(sum / counted) : 0), 2),
      silence_ratio: round(blocks ? silent / blocks : 0, 4),
      clipped_ratio: round(counted ? clipped / counted : 0, 6),
    };
  });
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** The 16-bit little-endian samples of `data`: a view where the host allows one (20× faster than readInt16LE), else a copy. */
function samplesOf(data: Buffer): Int16Array {
  const n = Math.floor(data.length / 2);
  if (LITTLE_ENDIAN && data.byteOffset % 2 === 0) return new Int16Array(data.buffer, data.byteOffset, n);
  const out = new Int16Array(n);
  for (let i = 0; i < n; i++) out[i] = data.readInt16LE(2 * i);
  return out;
}

/** app_convert's CONVERT_AUDIO text: `k=v;…` per channel, channels separated by a space. */
export function formatAudio(facts: readonly AudioFacts[]): string {
  return facts
    .map(
      (f) =>
        `duration_ms=${f.duration_ms};peak_dbfs=${f.peak_dbfs.toFixed(2)};rms_dbfs=${f.rms_dbfs.toFixed(2)};` +
        `silence_ratio=${f.silence_ratio.toFixed(4)};clipped_ratio=${f.clipped_ratio.toFixed(6)}`,
    )
    .join(' ');
}

/** The facts in a CONVERT_AUDIO text, or undefined when it is not one (an older module, a perl step). */
export function parseAudio(text: string | undefined): AudioFacts[] | undefined {
  if (!text) return undefined;
  const out: AudioFacts[] = [];
  for (const group of text.split(' ')) {
    const kv = new Map(group.split(';').map((p) => [p.slice(0, p.indexOf('=')), Number(p.slice(p.indexOf('=') + 1))] as const));
    const get = (k: string): number | undefined => {
      const v = kv.get(k);
      return v === undefined || !Number.isFinite(v) ? undefined : v;
    };
    const [d, p, r, s, c] = ['duration_ms', 'peak_dbfs', 'rms_dbfs', 'silence_ratio', 'clipped_ratio'].map(get);
    if (d === undefined || p === undefined || r === undefined || s === undefined || c === undefined) return undefined;
    out.push({ duration_ms: d, peak_dbfs: p, rms_dbfs: r, silence_ratio: s, clipped_ratio: c });
  }
  return out;
}

/** A channel whose 20 ms blocks are silent at least this often is flagged `silent`. */
export const SILENT_RATIO = 0.98;
/** A channel with at least this share of samples at full scale is flagged `clipped`. */
export const CLIPPED_RATIO = 0.001;

/** The flags of docs/messages.md: `silent`, `clipped`. */
export function audioFlags(f: AudioFacts): string[] {
  const flags: string[] = [];
  if (f.silence_ratio >= SILENT_RATIO) flags.push('silent');
  if (f.clipped_ratio >= CLIPPED_RATIO) flags.push('clipped');
  return flags;
}

// ---- The proof of a WAV, and custody measured from the files ----

export const WAV_HEADER_BYTES = 44;
const SAMPLES_PER_FRAME = 160;
/** One GSM 06.10 frame: 33 bytes, 160 samples (20 ms). */
export const GSM_FRAME_BYTES = 33;

/** What the WAV must hold: one channel per leg, as many samples as the longer leg has whole frames × 160. */
export interface ExpectedWav {
  /** Whole GSM frames of each leg (its size / 33, rounded down). */
  readonly frames: readonly number[];
}

export type WavCheck = { readonly ok: true; readonly bytes: number } | { readonly ok: false; readonly problem: string };

/** The canonical 44-byte header (what app_convert writes): PCM, 8 kHz, `channels`, 16-bit, `dataBytes` of samples. */
export function wavHeader(channels: number, dataBytes: number): Buffer {
  const h = Buffer.alloc(WAV_HEADER_BYTES);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + dataBytes, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(8000, 24);
  h.writeUInt32LE(16000 * channels, 28);
  h.writeUInt16LE(2 * channels, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(dataBytes, 40);
  return h;
}

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
export function measureCustody(gsmPaths: readonly string[], wavPath: string, expected: ExpectedWav): Custody {
  // Synchronous reads, like the path checks: 42 µs for a 3 s job against 227 µs through libuv's
  // thread pool. An input gone since the step read it (only a test double converts one that never
  // was) has no hash.
  const wav = readFileSync(wavPath);
  const inputs = gsmPaths.map((p) => {
    try {
      return readFileSync(p);
    } catch {
      return undefined;
    }
  });
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
