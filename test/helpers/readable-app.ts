/**
 * The built CLI where another user (nobody, for the tests that need a real EACCES) can run it.
 * A clone in a private folder (mode 0700: what `mktemp -d` makes, a home directory) hides its
 * dist/ and node_modules/ from that user: node then dies before our code runs and the test
 * waited for a log line that never came. So when the user cannot run the repository's CLI, the
 * service's part of it (dist/, package.json, the production dependencies) is copied once per test
 * process into a 0755 temporary directory. Whatever still keeps that user out (node itself in a
 * private folder) fails here at once, saying what and how to fix it.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { builtCli, repoRoot } from '../../scripts/chaos/bridge.js';

interface RunAs {
  readonly uid: number;
  readonly gid: number;
}

const copies = new Map<string, string>();

/** The path of a dist/cli.js that `user` can run with this node (process.execPath). */
export function cliRunnableBy(user: RunAs): string {
  const own = builtCli();
  if (runs(own, user) === undefined) return own;
  const key = `${user.uid}:${user.gid}`;
  const cached = copies.get(key);
  if (cached !== undefined) return cached;
  const copy = copyApp();
  const problem = runs(copy, user);
  if (problem !== undefined) {
    throw new Error(
      `uid ${user.uid} cannot run the CLI even from a copy in ${path.dirname(path.dirname(copy))}: ${problem}\n` +
        `  node is ${process.execPath}: it must be where uid ${user.uid} can execute it (not under a private home ` +
        `directory), e.g. /var/cache/audio-convert-ci/node-24 as npm run setup installs it`,
    );
  }
  copies.set(key, copy);
  return copy;
}

/** undefined when `user` can run `cli --version`, else what went wrong. */
function runs(cli: string, user: RunAs): string | undefined {
  const r = spawnSync(process.execPath, [cli, '--version'], { ...user, encoding: 'utf8', timeout: 30_000 });
  if (r.error !== undefined) return r.error.message;
  if (r.status === 0) return undefined;
  const firstLines = (r.stderr || r.stdout).trim().split('\n').slice(0, 3).join(' | ');
  return `exit ${r.status ?? r.signal}: ${firstLines}`;
}

/** dist/, package.json and the production dependencies, in a fresh 0755 directory; returns its dist/cli.js. */
function copyApp(): string {
  const repo = repoRoot();
  const dir = mkdtempSync(path.join(tmpdir(), 'ac-app-'));
  chmodSync(dir, 0o755);
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  cpSync(path.join(repo, 'dist'), path.join(dir, 'dist'), { recursive: true });
  cpSync(path.join(repo, 'package.json'), path.join(dir, 'package.json'));
  for (const name of productionPackages(repo)) {
    cpSync(path.join(repo, 'node_modules', name), path.join(dir, 'node_modules', name), { recursive: true, dereference: true });
  }
  // cpSync keeps the modes, which are 0644/0755 as npm writes them; the directories it creates follow the umask.
  spawnSync('chmod', ['-R', 'a+rX', dir]);
  return path.join(dir, 'dist', 'cli.js');
}

/**
 * The top-level node_modules entries the dependencies of package.json need, resolved as node
 * does (a package's own node_modules first, then each one above it); nested ones come with the
 * package that holds them.
 */
function productionPackages(repo: string): Set<string> {
  const top = path.join(repo, 'node_modules');
  const needed = new Set<string>();
  const seen = new Set<string>();
  const visit = (pkgDir: string): void => {
    if (seen.has(pkgDir)) return;
    seen.add(pkgDir);
    const pkg = JSON.parse(readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      optionalDependencies?: Record<string, string>;
    };
    for (const name of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
      const found = resolveFrom(pkgDir, name, repo);
      if (found === undefined) {
        if (pkg.optionalDependencies?.[name] !== undefined) continue;
        throw new Error(`${name} (a dependency of ${pkgDir}) is not installed: run npm ci`);
      }
      if (path.dirname(found) === top || path.dirname(path.dirname(found)) === top) needed.add(path.relative(top, found));
      visit(found);
    }
  };
  visit(repo);
  return needed;
}

function resolveFrom(from: string, name: string, repo: string): string | undefined {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (dir === repo || path.dirname(dir) === dir) return undefined;
  }
}
