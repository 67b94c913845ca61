// scripts/install.sh against a staging tree (--root), plus the unit's static checks.
//
// Runs as root (CI does): the real runs create the group reincar-auditorai and the system
// users auditorai-audio / auditorai-data on THIS host with groupadd/useradd (idempotent; they
// are left in place), because the staged tree's owners must be real users. Everything else
// goes under a temporary directory. npm is not run (--skip-npm): the source tree is a copy
// of the repository's package files, unit and example config with a stand-in dist/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const script = path.join(repo, 'scripts', 'install.sh');
const repoUnit = path.join(repo, 'systemd', 'auditorai-transcoding.service');

const GROUP = 'reincar-auditorai';
const SVC_USER = 'auditorai-audio';
const DATA_USER = 'auditorai-data';
const APP_DIR = 'usr/local/bin/auditorai/transcoding';
const DATA_DIRS = ['', 'gsm', 'wav', 'transcription', 'completions'].map((d) => path.posix.join('var/local/auditorai', d));
const CONFIG = 'etc/auditorai/transcoding.conf';
const CRED_DIR = 'etc/auditorai/credentials';
const UNIT = 'etc/systemd/system/auditorai-transcoding.service';
const DROPIN = 'etc/systemd/system/auditorai-transcoding.service.d/credentials.conf';
const FAKE_CLI = '// stand-in for the built CLI (install test)\n';

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

function sh(cmd: string, args: string[], opts: { uid?: number; gid?: number } = {}): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, ...opts });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function install(...args: string[]): Run {
  return sh('bash', [script, ...args]);
}
function explain(r: Run): string {
  return `exit ${String(r.status)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}
function exists(kind: 'passwd' | 'group', name: string): boolean {
  return sh('getent', [kind, name]).status === 0;
}
function idOf(kind: 'passwd' | 'group', name: string): number {
  const r = sh('getent', [kind, name]);
  assert.equal(r.status, 0, `getent ${kind} ${name}: not found`);
  return Number(r.stdout.split(':')[2]);
}
function requireRoot(): void {
  assert.equal(
    process.getuid?.(),
    0,
    'this test creates system users and chowns files: run it as root (CI does), e.g. sudo node --import tsx --test test/integration/install.test.ts',
  );
}
function requireSystemdAnalyze(): void {
  assert.equal(
    sh('sh', ['-c', 'command -v systemd-analyze']).status,
    0,
    'systemd-analyze is missing: install it with `apt-get install systemd` (it works offline, no running systemd needed)',
  );
}

/** Every entry under dir: relative path -> type, mode, owner, and a content hash for files. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string): void => {
    const abs = path.join(dir, rel);
    const st = fs.lstatSync(abs);
    let what = `${(st.mode & 0o170000).toString(8)} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`;
    if (st.isFile()) what += ' ' + createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
    if (st.isSymbolicLink()) what += ' -> ' + fs.readlinkSync(abs);
    out.set(rel || '.', what);
    if (st.isDirectory()) for (const e of fs.readdirSync(abs).sort()) walk(path.join(rel, e));
  };
  walk('');
  return out;
}

function assertOwnerMode(file: string, uid: number, gid: number, mode: number): void {
  const st = fs.statSync(file);
  assert.equal(st.uid, uid, `${file}: owner uid ${st.uid}, want ${uid}`);
  assert.equal(st.gid, gid, `${file}: group gid ${st.gid}, want ${gid}`);
  assert.equal((st.mode & 0o7777).toString(8), mode.toString(8), `${file}: mode`);
}

let tmp = '';
let src = ''; // source tree with a stand-in dist/
let srcNoDist = ''; // source tree without dist/ (the script would build it)
let root = ''; // staging tree

before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'install-test-'));
  fs.chmodSync(tmp, 0o755);
  src = path.join(tmp, 'src');
  srcNoDist = path.join(tmp, 'src-nodist');
  root = path.join(tmp, 'root');
  const exampleConfig = path.join(repo, 'config', 'transcoding.conf');
  assert.ok(fs.existsSync(exampleConfig), `${exampleConfig} is missing: the installer ships it as /etc/auditorai/transcoding.conf`);
  for (const s of [src, srcNoDist]) {
    fs.mkdirSync(path.join(s, 'config'), { recursive: true });
    fs.mkdirSync(path.join(s, 'systemd'), { recursive: true });
    for (const f of ['package.json', 'package-lock.json']) fs.copyFileSync(path.join(repo, f), path.join(s, f));
    fs.copyFileSync(exampleConfig, path.join(s, 'config', 'transcoding.conf'));
    fs.copyFileSync(repoUnit, path.join(s, 'systemd', 'auditorai-transcoding.service'));
  }
  fs.mkdirSync(path.join(src, 'dist'), { recursive: true });
  fs.writeFileSync(path.join(src, 'dist', 'cli.js'), FAKE_CLI);
  fs.mkdirSync(root);
});

after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

void test('--help exits 0 and lists the options; an unknown option is a usage error (2)', () => {
  const help = install('--help');
  assert.equal(help.status, 0, explain(help));
  for (const opt of ['--dry-run', '--root DIR', '--from DIR', '--skip-npm', '--node PATH']) assert.match(help.stdout, new RegExp(opt));
  const bad = install('--bogus');
  assert.equal(bad.status, 2, explain(bad));
  assert.match(bad.stderr, /unknown option: --bogus/);
});

void test('a real run refuses to start without root', () => {
  requireRoot();
  // A copy in the world-readable temp dir: the checkout itself may not be readable by uid 65534.
  const copy = path.join(tmp, 'install.sh');
  fs.copyFileSync(script, copy);
  fs.chmodSync(copy, 0o755);
  const r = sh('bash', [copy, '--root', path.join(tmp, 'never'), '--from', src, '--skip-npm'], { uid: 65534, gid: 65534 });
  assert.equal(r.status, 1, explain(r));
  assert.match(r.stderr, /must run as root/);
  assert.equal(fs.existsSync(path.join(tmp, 'never')), false);
});

void test('--dry-run prints every command and changes nothing', () => {
  const had = { group: exists('group', GROUP), svc: exists('passwd', SVC_USER), data: exists('passwd', DATA_USER) };
  const r = install('--dry-run', '--root', root, '--from', src);
  assert.equal(r.status, 0, explain(r));
  assert.deepEqual(fs.readdirSync(root), [], 'dry run wrote into the staging tree');
  assert.deepEqual(
    { group: exists('group', GROUP), svc: exists('passwd', SVC_USER), data: exists('passwd', DATA_USER) },
    had,
    'dry run created a user or group',
  );
  const out = r.stdout;
  assert.match(out, /dry run/i);
  if (!had.group) assert.match(out, /^\+ groupadd --system reincar-auditorai$/m);
  if (!had.svc) assert.match(out, /^\+ useradd --system --no-create-home .*--shell \/bin\/false .*auditorai-audio$/m);
  for (const d of DATA_DIRS) {
    assert.ok(out.includes(`+ mkdir -p -- ${root}/${d}\n`), `no mkdir for ${d}\n${out}`);
    assert.ok(out.includes(`+ chown ${DATA_USER}:${GROUP} -- ${root}/${d}\n`), `no chown for ${d}`);
    assert.ok(out.includes(`+ chmod 2775 -- ${root}/${d}\n`), `no chmod 2775 for ${d}`);
  }
  assert.ok(out.includes(`+ chmod 0755 -- ${root}/${APP_DIR}\n`));
  assert.ok(out.includes(`+ cp -R -- ${src}/dist ${root}/${APP_DIR}/dist\n`));
  assert.ok(out.includes(`+ npm --prefix ${root}/${APP_DIR} ci --omit=dev --ignore-scripts`), 'production-only npm ci not printed');
  assert.ok(out.includes(`+ install -m 0640 -o root -g ${GROUP} -- ${src}/config/transcoding.conf ${root}/${CONFIG}\n`));
  assert.ok(out.includes(`+ chmod 0700 -- ${root}/${CRED_DIR}\n`));
  assert.match(out, new RegExp(`^\\+ install -m 0644 -o root -g root -- .*auditorai-transcoding\\.service(\\.tmp)? ${root}/${UNIT}$`, 'm'));
  assert.ok(out.includes(`+ systemctl --root=${root} enable auditorai-transcoding.service\n`));
  assert.doesNotMatch(out, /npm --prefix \S+ run build/, 'dist exists: nothing to build');

  // Without dist/ in the source tree it would build first (printed only).
  const b = install('--dry-run', '--root', root, '--from', srcNoDist);
  assert.equal(b.status, 0, explain(b));
  assert.ok(b.stdout.includes(`+ npm --prefix ${srcNoDist} ci`) && b.stdout.includes(`+ npm --prefix ${srcNoDist} run build\n`), b.stdout);
  assert.equal(fs.existsSync(path.join(srcNoDist, 'dist')), false);
  assert.deepEqual(fs.readdirSync(root), []);
  // ... and with --skip-npm it cannot: a clear error, still nothing changed.
  const s = install('--dry-run', '--root', root, '--from', srcNoDist, '--skip-npm');
  assert.equal(s.status, 1, explain(s));
  assert.match(s.stderr, /dist\/cli\.js is missing and --skip-npm/);
});

void test('installs into a staging tree with the seed layout: users, owners, modes, setgid, config, unit', () => {
  requireRoot();
  const r = install('--root', root, '--from', src, '--skip-npm');
  assert.equal(r.status, 0, explain(r));
  assert.match(r.stdout, /Next steps:/);
  assert.match(r.stdout, /systemctl start auditorai-transcoding\.service/);
  assert.match(r.stdout, /readyz/);

  const gid = idOf('group', GROUP);
  const data = idOf('passwd', DATA_USER);
  for (const u of [SVC_USER, DATA_USER]) {
    const pw = sh('getent', ['passwd', u]).stdout.trim().split(':');
    assert.equal(pw[6], '/bin/false', `${u} must not have a login shell`);
    assert.ok(Number(pw[2]) < 1000, `${u} must be a system user (uid ${pw[2]})`);
    assert.ok(sh('id', ['-nG', u]).stdout.trim().split(/\s+/).includes(GROUP), `${u} is not in ${GROUP}`);
  }

  // The code is root's, writable by nobody else (the group includes asterisk).
  assertOwnerMode(path.join(root, APP_DIR), 0, 0, 0o755);
  for (const d of DATA_DIRS) {
    const abs = path.join(root, d);
    assertOwnerMode(abs, data, gid, 0o2775);
    assert.ok((fs.statSync(abs).mode & 0o2000) !== 0, `${d}: setgid bit missing`);
  }
  const cli = path.join(root, APP_DIR, 'dist', 'cli.js');
  assert.equal(fs.readFileSync(cli, 'utf8'), FAKE_CLI);
  assertOwnerMode(cli, 0, 0, 0o644);
  for (const f of ['package.json', 'package-lock.json']) {
    assert.deepEqual(fs.readFileSync(path.join(root, APP_DIR, f)), fs.readFileSync(path.join(repo, f)));
  }

  const cfg = path.join(root, CONFIG);
  assertOwnerMode(cfg, 0, gid, 0o640);
  assert.equal(fs.statSync(cfg).mode & 0o007, 0, 'config must not be world-readable: it holds secrets');
  assert.deepEqual(fs.readFileSync(cfg), fs.readFileSync(path.join(repo, 'config', 'transcoding.conf')));
  assertOwnerMode(path.join(root, CRED_DIR), 0, 0, 0o700);

  const unit = path.join(root, UNIT);
  assertOwnerMode(unit, 0, 0, 0o644);
  const text = fs.readFileSync(unit, 'utf8');
  const node = sh('sh', ['-c', 'command -v node']).stdout.trim();
  assert.match(
    text,
    new RegExp(
      `^ExecStart=${node} --max-semi-space-size=8 --max-old-space-size=128 /usr/local/bin/auditorai/transcoding/dist/cli\\.js run --config /etc/auditorai/transcoding\\.conf$`,
      'm',
    ),
  );
  assert.equal(
    text.replace(/^ExecStart=\S+ /m, 'ExecStart=/usr/bin/node '),
    fs.readFileSync(repoUnit, 'utf8'),
    'installed unit differs from systemd/ beyond the node path',
  );
  const wants = path.join(root, 'etc/systemd/system/multi-user.target.wants/auditorai-transcoding.service');
  assert.equal(fs.readlinkSync(wants), '/etc/systemd/system/auditorai-transcoding.service', 'not enabled (offline)');
  assert.equal(fs.existsSync(path.join(root, DROPIN)), false, 'no credential files: no LoadCredential drop-in');
});

void test('a second run is idempotent and never overwrites the config', () => {
  requireRoot();
  const cfg = path.join(root, CONFIG);
  fs.appendFileSync(cfg, '# local edit: must survive a reinstall\n');
  const before = snapshot(root);
  const r = install('--root', root, '--from', src, '--skip-npm');
  assert.equal(r.status, 0, explain(r));
  assert.match(r.stdout, /transcoding\.conf exists: left untouched/);
  assert.doesNotMatch(r.stdout, /^\+ (groupadd|useradd|usermod)/m, 'users/group were already set up');
  assert.doesNotMatch(r.stdout, /^\+ install -m 0640/m, 'tried to install the config again');
  assert.match(fs.readFileSync(cfg, 'utf8'), /# local edit: must survive a reinstall\n$/);
  assert.deepEqual(snapshot(root), before, 'the second run changed the tree');
});

void test('the LoadCredential drop-in follows the files in /etc/auditorai/credentials', () => {
  requireRoot();
  requireSystemdAnalyze();
  const secret = path.join(root, CRED_DIR, 'ami-secret');
  fs.writeFileSync(secret, 'not-a-real-secret\n', { mode: 0o600 });
  try {
    const r = install('--root', root, '--from', src, '--skip-npm');
    assert.equal(r.status, 0, explain(r));
    const dropin = fs.readFileSync(path.join(root, DROPIN), 'utf8');
    assert.match(dropin, /^LoadCredential=ami-secret:\/etc\/auditorai\/credentials\/ami-secret$/m);
    assert.doesNotMatch(dropin, /amqp-password/, 'no amqp-password file: it must not be listed (the unit would fail to start)');
    const v = sh('systemd-analyze', ['verify', path.join(root, UNIT)]);
    assert.equal(v.status, 0, explain(v));
    assert.equal(v.stderr.trim(), '', `systemd-analyze verify (unit + drop-in) complained:\n${v.stderr}`);
  } finally {
    fs.rmSync(secret, { force: true });
  }
  const r = install('--root', root, '--from', src, '--skip-npm');
  assert.equal(r.status, 0, explain(r));
  assert.equal(fs.existsSync(path.join(root, DROPIN)), false, 'drop-in kept after its credential file was removed');
});

void test('systemd-analyze verify passes on the unit and security exposure stays below 2.0', () => {
  requireSystemdAnalyze();
  for (const unit of [repoUnit, ...(fs.existsSync(path.join(root, UNIT)) ? [path.join(root, UNIT)] : [])]) {
    const v = sh('systemd-analyze', ['verify', unit]);
    assert.equal(v.status, 0, `${unit}\n${explain(v)}`);
    assert.equal(v.stderr.trim(), '', `systemd-analyze verify ${unit} complained:\n${v.stderr}`);
  }
  const s = sh('systemd-analyze', ['security', '--offline=yes', repoUnit]);
  assert.equal(s.status, 0, explain(s));
  const m = /Overall exposure level for auditorai-transcoding\.service: (\d+(?:\.\d+)?)/.exec(s.stdout);
  assert.ok(m?.[1], `no exposure level in:\n${s.stdout}`);
  assert.ok(Number(m[1]) < 2.0, `exposure ${m[1]} >= 2.0 (docs/systemd.md records 1.3):\n${s.stdout}`);
});

void test('the unit keeps the seed layout and the drain deadline', () => {
  const text = fs.readFileSync(repoUnit, 'utf8');
  const values = (key: string): string[] => [...text.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((x) => x[1] ?? '');
  assert.deepEqual(values('User'), [SVC_USER]);
  assert.deepEqual(values('Group'), [GROUP]);
  assert.deepEqual(values('UMask'), ['0002']);
  assert.deepEqual(values('WorkingDirectory'), ['/usr/local/bin/auditorai/transcoding']);
  assert.deepEqual(values('ExecStart'), [
    '/usr/bin/node --max-semi-space-size=8 --max-old-space-size=128 /usr/local/bin/auditorai/transcoding/dist/cli.js run --config /etc/auditorai/transcoding.conf',
  ]);
  // The peak-RSS target with 100,000 jobs queued counts on both the flags and the arena bound (docs/benchmarks.md).
  assert.deepEqual(values('Environment'), ['NODE_ENV=production', 'MALLOC_ARENA_MAX=2']);
  assert.deepEqual(values('KillSignal'), ['SIGTERM']);
  // sd_notify (docs/decisions/0011-sd-notify.md): systemd-notify is a child, hence NotifyAccess=all.
  assert.deepEqual(values('Type'), ['notify']);
  assert.deepEqual(values('NotifyAccess'), ['all']);
  assert.deepEqual(values('WatchdogSec'), ['30']);
  assert.ok(Number(values('TimeoutStartSec')[0]) > 20, 'READY=1 comes 20 s after start at the latest');
  assert.ok(Number(values('TimeoutStopSec')[0]) > 30, 'TimeoutStopSec must exceed the default 30 s DrainTimeout');
  assert.deepEqual(values('ExecReload'), [], 'no reload: the config is read at start only (systemctl reload must say so, not pretend)');
  assert.deepEqual(values('MemoryDenyWriteExecute'), [], 'MemoryDenyWriteExecute breaks the V8 JIT');
  assert.deepEqual(values('LoadCredential'), [], 'LoadCredential fails the unit when the file is missing: use the drop-in');
  assert.ok(
    values('SystemCallFilter').some((v) => v.split(/\s+/).includes('@pkey')),
    'node 20 needs @pkey (pkey_alloc at start)',
  );
});
