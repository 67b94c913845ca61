// The build ships the service alone (tsconfig.build.json, rootDir src), and the version is found
// the same way from the sources (tsx) and from the build. npm test builds before it runs this.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string; bin: Record<string, string> };

/** Every file under dir, relative, sorted. */
function files(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

void test('dist/ holds the compiled src/ and nothing else (no bench/, scripts/, test/)', () => {
  const dist = path.join(repo, 'dist');
  assert.ok(fs.existsSync(path.join(dist, 'cli.js')), 'dist/cli.js missing: run npm run build (npm test does)');
  const expected = files(path.join(repo, 'src'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.replace(/\.ts$/, '.js'));
  const built = files(dist).filter((f) => f.endsWith('.js'));
  // A stale file from an older build would be shipped too: the set must be exactly src/'s.
  assert.deepEqual(built, expected);
  for (const top of fs.readdirSync(dist)) assert.ok(!['src', 'scripts', 'bench', 'test'].includes(top), `dist/${top} must not exist`);
});

void test('package.json bin points at the built CLI, which has a node shebang', () => {
  const bin = pkg.bin['audio-convert'];
  assert.equal(bin, 'dist/cli.js');
  assert.match(fs.readFileSync(path.join(repo, bin), 'utf8'), /^#!\/usr\/bin\/env node\n/);
});

void test('--version prints package.json version under tsx and from the build', () => {
  // The built CLI runs from / so that nothing depends on the working directory; tsx must be
  // resolved from the repository.
  const runs: [args: string[], cwd: string][] = [
    [['--import', 'tsx', path.join(repo, 'src', 'cli.ts')], repo],
    [[path.join(repo, 'dist', 'cli.js')], '/'],
  ];
  for (const [args, cwd] of runs) {
    const r = spawnSync(process.execPath, [...args, '--version'], { encoding: 'utf8', cwd });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${pkg.version}\n`, `${args.join(' ')} --version`);
  }
});
