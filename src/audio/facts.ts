/**
 * What the transcription stage is told of a WAV's audio, per channel (docs/messages.md, "audio"):
 * duration, peak and RMS level, the share of silent 20 ms blocks and of clipped samples. The same
 * definitions as app_convert's (asterisk/app_convert.c), which computes them while it converts; this
 * is for the steps that do not (the perl step, the emulator) and for the tests. Pure.
 */

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
  return samples.map((n, ch) => {
    let peak = 0;
    let sum = 0;
    let clipped = 0;
    let silent = 0;
    const blocks = Math.floor(n / BLOCK);
    for (let b = 0; b < blocks; b++) {
      let sq = 0;
      for (let i = b * BLOCK; i < (b + 1) * BLOCK; i++) {
        const v = data.readInt16LE(2 * (i * channels + ch));
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
