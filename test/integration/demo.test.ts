/**
 * The README's first command: `npm run demo` must work on a fresh checkout. It runs the demo as
 * the README does (scripts/demo.ts through tsx) against the real RabbitMQ, the emulator and sox,
 * and checks that every recording converted into a valid WAV and that it cleaned up after itself.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
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

void test('without sox the demo says so in one line with the fix, no stack trace, exit 1', async () => {
  // An empty PATH: no sox (node itself is process.execPath, tsx is found through node_modules).
  const empty = mkdtempSync(path.join(os.tmpdir(), 'ac-nosox-'));
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/demo.ts'], {
      cwd: repo,
      env: { ...process.env, PATH: empty },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const [code] = (await once(child, 'close')) as [number | null];
    assert.equal(code, 1, out + err);
    assert.equal(out, '', 'nothing started');
    assert.match(err, /^the demo needs sox .*it is not installed: npm run setup \(or: sudo apt-get install sox\)\n$/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
