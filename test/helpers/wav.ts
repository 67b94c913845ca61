/** Reads a WAV header and says what it holds, so tests can check format and duration. */
import { readFileSync } from 'node:fs';

export interface WavInfo {
  readonly format: number;
  readonly channels: number;
  readonly sampleRate: number;
  readonly bitsPerSample: number;
  readonly dataBytes: number;
  readonly seconds: number;
}

/** Parses the RIFF chunks of a WAV file; throws when it is not one. */
export function readWav(file: string): WavInfo {
  const buf = readFileSync(file);
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') throw new Error(`${file}: not a RIFF/WAVE file`);
  let offset = 12;
  let fmt: { format: number; channels: number; sampleRate: number; bitsPerSample: number } | undefined;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      fmt = {
        format: buf.readUInt16LE(body),
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        bitsPerSample: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (fmt === undefined) throw new Error(`${file}: data chunk before fmt chunk`);
      const dataBytes = Math.min(size, buf.length - body);
      return { ...fmt, dataBytes, seconds: dataBytes / (fmt.sampleRate * fmt.channels * (fmt.bitsPerSample / 8)) };
    }
    offset = body + size + (size % 2);
  }
  throw new Error(`${file}: no data chunk`);
}
