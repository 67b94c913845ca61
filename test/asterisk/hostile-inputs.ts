/**
 * The hostile inputs Convert() must survive (test/asterisk/convert-app.test.ts, and memcheck.test.ts
 * under valgrind): each makes a file at the given path and says the CONVERT_DETAIL and the Reason
 * the module must answer with.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';

export interface HostileInput {
  readonly name: string;
  make(gsm: string): void;
  readonly detail: string;
  readonly reason: RegExp;
}

/** `sine` is a valid 3 s recording (150 frames) at `sinePath`, the target of the symlink case. */
export function hostileInputs(sine: Buffer, sinePath: string): HostileInput[] {
  return [
    { name: 'empty', make: (f) => writeFileSync(f, ''), detail: 'input-empty', reason: /no whole GSM frame \(0 bytes\)/ },
    { name: 'one-byte', make: (f) => writeFileSync(f, Buffer.from([0xd8])), detail: 'input-empty', reason: /\(1 bytes\)/ },
    {
      name: 'corrupt',
      make: (f) => {
        const b = Buffer.from(sine);
        b[33 * 50] = 0; // frame 51 lacks GSM's signature nibble 0xD
        writeFileSync(f, b);
      },
      detail: 'input-corrupt',
      reason: /GSM frame 51 of 150 cannot be decoded/,
    },
    {
      name: 'random',
      make: (f) => {
        const b = randomBytes(33 * 200);
        b[0] = 0x00; // whatever else chance makes of it, the first frame is not GSM
        writeFileSync(f, b);
      },
      detail: 'input-corrupt',
      reason: /GSM frame 1 of 200/,
    },
    {
      name: 'sparse-2g',
      make: (f) => {
        writeFileSync(f, '');
        truncateSync(f, 2 ** 31);
      },
      detail: 'input-too-large',
      reason: /2147483648 bytes\) is longer than a WAV file can hold/,
    },
    { name: 'fifo', make: (f) => execFileSync('mkfifo', [f]), detail: 'input-not-regular', reason: /but a FIFO/ },
    { name: 'dir', make: (f) => mkdirSync(f), detail: 'input-not-regular', reason: /but a directory/ },
    {
      name: 'symlink',
      make: (f) => symlinkSync(sinePath, f),
      detail: 'input-not-regular',
      reason: /but a symbolic link/,
    },
    { name: 'device', make: (f) => execFileSync('mknod', [f, 'c', '1', '3']), detail: 'input-not-regular', reason: /but a device/ },
  ];
}
