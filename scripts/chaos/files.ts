/**
 * The data side of a chaos run: a root laid out like /var/local/auditorai (gsm/, wav/) with one
 * small real GSM file per job, and the checks at the end: every converted WAV is a complete
 * 8 kHz 16-bit mono PCM file of the input's length, and no temp file of any attempt is left.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface DataRoot {
  readonly root: string;
  readonly gsmDir: string;
  readonly wavDir: string;
  gsm(name: string): string;
  wav(name: string): string;
  remove(): void;
}

/** Seconds of audio in every input (one sox run, then copies). */
export const INPUT_SECONDS = 1;

export function makeDataRoot(prefix = 'ac-chaos-'): DataRoot {
  const root = mkdtempSync(path.join(tmpdir(), prefix));
  const gsmDir = path.join(root, 'gsm');
  const wavDir = path.join(root, 'wav');
  mkdirSync(gsmDir);
  mkdirSync(wavDir);
  const template = path.join(root, 'template.gsm');
  execFileSync('sox', ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', template, 'synth', String(INPUT_SECONDS), 'sine', '440']);
  return {
    root,
    gsmDir,
    wavDir,
    gsm(name) {
      const file = path.join(gsmDir, `${name}.gsm`);
      copyFileSync(template, file);
      return file;
    },
    wav: (name) => path.join(wavDir, `${name}.wav`),
    remove: () => rmSync(root, { recursive: true, force: true }),
  };
}

/** Why a WAV is not the complete conversion of a 1 s input, or undefined when it is. */
export function wavProblem(file: string, seconds = INPUT_SECONDS): string | undefined {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (error) {
    return `cannot read: ${(error as NodeJS.ErrnoException).code ?? String(error)}`;
  }
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') return 'not RIFF/WAVE';
  if (buf.readUInt32LE(4) + 8 !== buf.length) return `RIFF size ${buf.readUInt32LE(4) + 8} != file size ${buf.length} (truncated?)`;
  let offset = 12;
  let fmt: { format: number; channels: number; rate: number; bits: number } | undefined;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ')
      fmt = {
        format: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        rate: buf.readUInt32LE(body + 4),
        bits: buf.readUInt16LE(body + 14),
      };
    if (id === 'data') {
      if (fmt === undefined) return 'data before fmt';
      if (fmt.format !== 1 || fmt.channels !== 1 || fmt.rate !== 8000 || fmt.bits !== 16) return `format ${JSON.stringify(fmt)}`;
      if (body + size > buf.length) return `data chunk cut: ${buf.length - body} of ${size} bytes`;
      const got = size / (fmt.rate * 2);
      return Math.abs(got - seconds) < 0.05 ? undefined : `${got.toFixed(3)} s of audio, expected ${seconds}`;
    }
    offset = body + size + (size % 2);
  }
  return 'no data chunk';
}

/** Names in the WAV directory that are attempts' temp files (`<wav>.tmp-<attempt>.wav`). */
export function tempFiles(wavDir: string): string[] {
  return readdirSync(wavDir).filter((name) => name.includes('.tmp-'));
}
