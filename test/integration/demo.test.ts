/**
 * The README's first command: `npm run demo` must work on a fresh checkout. It runs the demo as
 * the README does (scripts/demo.ts through tsx) against the real RabbitMQ, the emulator and sox,
 * and checks that every recording converted into a valid WAV and that it cleaned up after itself.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { requireRabbit } from '../helpers/stack.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

void test('npm run demo converts every recording and dead-letters the missing one', { timeout: 90_000 }, async () => {
  await requireRabbit();
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const [code] = (await once(child, 'close')) as [number | null];
  assert.equal(code, 0, out);
  assert.match(out, /demo finished: every recording converted/);
  const wavs = out.split('\n').filter((line) => /\.wav {2}8000 Hz, 1 ch, 16-bit, /.test(line));
  assert.equal(wavs.length, 5, `five 8 kHz mono 16-bit WAVs listed:\n${out}`);
  assert.match(out, /missing-\S+\s+failed\s+INPUT_MISSING/);
  assert.match(out, /\/readyz → 200/);
});
