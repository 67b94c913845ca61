/**
 * scripts/node.sh, which every npm script that runs the code starts through: `npm ci` and
 * `npm run` may run on an older system node (this kind of machine: 20), so with a node < 22 first
 * in PATH the wrapper puts the Node 24 that `npm run setup` fetched first instead; with no such
 * node it says so in one line and exits 1. A stand-in `node` reporting version 20 plays the old one.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'ac-nodewrap-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A bin directory whose `node` says it is v20 (and runs nothing else). */
const oldBin = path.join(tmp, 'old-bin');
mkdirSync(oldBin);
writeFileSync(
  path.join(oldBin, 'node'),
  '#!/bin/sh\ncase "$1" in -p) echo 20 ;; --version) echo v20.20.2 ;; *) echo "old node ran: $*" >&2; exit 99 ;; esac\n',
  {
    mode: 0o755,
  },
);

function wrapped(cache: string, ...command: string[]): ReturnType<typeof spawnSync> & { stdout: string; stderr: string } {
  return spawnSync('bash', [path.join(repo, 'scripts', 'node.sh'), ...command], {
    env: { ...process.env, PATH: `${oldBin}:/usr/bin:/bin`, AUDIOCONVERT_NODE_CACHE: cache },
    encoding: 'utf8',
  });
}

void test('an old node first in PATH: the command runs on the cached Node 24 instead', () => {
  const cache = path.join(tmp, 'cache');
  mkdirSync(path.join(cache, 'bin'), { recursive: true });
  symlinkSync(process.execPath, path.join(cache, 'bin', 'node'));
  const r = wrapped(cache, 'node', '-e', 'process.stdout.write(process.versions.node.split(".")[0])');
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, process.versions.node.split('.')[0]);
  assert.ok(Number(r.stdout) >= 22);
});

void test('an old node and no cached one: one line saying to run npm run setup, exit 1, nothing run', () => {
  const r = wrapped(path.join(tmp, 'empty-cache'), 'node', '-e', '1');
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '');
  assert.match(
    r.stderr,
    /^audio-convert: node v20\.20\.2 is too old \(Node >= 22 needed, 24 is what we test on\): run 'npm run setup', which fetches Node 24 into \S+empty-cache\n$/,
  );
});
