// The Debian package, for real: `npm run package:deb` builds it offline, lintian finds no error,
// and `dpkg -i` on THIS machine (root; CI is a throw-away machine) puts audio-convert on PATH,
// creates the users, the group, the data directories and a 0640 configuration (made by postinst
// from the shipped example: not a conffile, ADR 0017), ships a root-owned code tree nobody else
// can write and a unit that passes `systemd-analyze verify`; a reinstall keeps an edited
// configuration; remove takes the code, purge the config, and a recording stays. (Upgrades
// between two versions run in the booted container of test/systemd/.)
//
// Slow (a tsc build, dpkg-buildpackage, lintian: 4-9 minutes on a busy 2-vCPU machine), so its own command:
// `npm run test:package`, not part of `npm test`. It purges the package when it is done and
// puts back the owner and mode of data directories that existed before it (the users and group
// stay, like install.test.ts's).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(repo, 'package.json'), 'utf8')) as { version: string };
const deb = path.join(repo, 'dist', `audio-convert_${pkg.version}_all.deb`);

const GROUP = 'reincar-auditorai';
const CONF = '/etc/auditorai/transcoding.conf';
const LIB = '/usr/lib/audio-convert';
const UNIT = '/usr/lib/systemd/system/auditorai-transcoding.service';
const WANTS = '/etc/systemd/system/multi-user.target.wants/auditorai-transcoding.service';
const DATA = ['/var/local/auditorai', ...['gsm', 'wav', 'transcription', 'completions'].map((d) => `/var/local/auditorai/${d}`)];
const RECORDING = `/var/local/auditorai/gsm/package-test-${process.pid}.gsm`;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}
function sh(cmd: string, args: string[], opts: SpawnSyncOptions = {}): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 600_000, stdio: ['ignore', 'pipe', 'pipe'], ...opts });
  if (r.error) throw r.error;
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}
function explain(r: Run): string {
  return `exit ${String(r.status)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}
function ok(cmd: string, args: string[], opts: SpawnSyncOptions = {}): Run {
  const r = sh(cmd, args, opts);
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}\n${explain(r)}`);
  return r;
}
function id(kind: 'passwd' | 'group', name: string): number {
  const r = sh('getent', [kind, name]);
  assert.equal(r.status, 0, `getent ${kind} ${name}: not found`);
  return Number(r.stdout.split(':')[2]);
}
function installed(): boolean {
  return /^install ok installed$/m.test(sh('dpkg-query', ['-W', '-f', '${Status}\n', 'audio-convert']).stdout);
}
function ownerMode(file: string): string {
  const st = fs.statSync(file);
  return `${st.uid}:${st.gid} ${(st.mode & 0o7777).toString(8)}`;
}

/**
 * dpkg -i. The package depends on nodejs (>= 22); a machine whose nodejs package is older (this
 * one and CI: Debian 12 with NodeSource's nodejs 20, Node 24 only as a tarball in PATH) gets
 * --force-depends, and then the only dependency problem dpkg may report is nodejs.
 */
function dpkgInstall(): Run {
  const have = sh('dpkg-query', ['-W', '-f', '${Version}', 'nodejs']).stdout;
  const nodeOk = have !== '' && sh('dpkg', ['--compare-versions', have, 'ge', '22']).status === 0;
  const r = sh('dpkg', [...(nodeOk ? [] : ['--force-depends']), '-i', deb], { env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  assert.equal(r.status, 0, explain(r));
  for (const line of r.stderr.split('\n').filter((l) => /depends on/.test(l))) assert.match(line, /depends on nodejs \(>= 22\)/, r.stderr);
  return r;
}

/** Data directories that existed before: their owner and mode, put back at the end. */
const before_: Map<string, fs.Stats> = new Map();

before(() => {
  assert.equal(process.getuid?.(), 0, 'this test installs a Debian package on this machine: run it as root (CI does)');
  assert.equal(
    installed(),
    false,
    'audio-convert is already installed on this machine: this test would replace and purge it; remove it first',
  );
  for (const d of DATA) if (fs.existsSync(d)) before_.set(d, fs.statSync(d));
});

after(() => {
  if (installed() || sh('dpkg-query', ['-W', 'audio-convert']).status === 0) sh('dpkg', ['--purge', 'audio-convert']);
  fs.rmSync(RECORDING, { force: true });
  for (const d of [...DATA].reverse()) {
    const was = before_.get(d);
    if (was === undefined) {
      try {
        fs.rmdirSync(d); // only when empty: never anything someone else put there
      } catch {
        /* not empty, or gone */
      }
    } else if (fs.existsSync(d)) {
      fs.chownSync(d, was.uid, was.gid);
      fs.chmodSync(d, was.mode & 0o7777);
    }
  }
});

void test('npm run package:deb builds the .deb offline, Architecture: all, and lintian reports no error', () => {
  fs.rmSync(deb, { force: true });
  const build = sh('npm', ['run', '--silent', 'package:deb'], { cwd: repo });
  assert.equal(build.status, 0, explain(build));
  assert.ok(fs.existsSync(deb), `${deb} was not built`);
  const fields = ok('dpkg-deb', ['--show', '--showformat', '${Package} ${Version} ${Architecture}\n${Depends}\n', deb]).stdout;
  assert.match(fields, new RegExp(`^audio-convert ${pkg.version.replace(/\./g, '\\.')} all\n`));
  assert.match(fields, /nodejs \(>= 22\)/);
  assert.doesNotMatch(fields, /\bsox\b/, 'the bridge host does not need sox (Suggests only)');
  const files = ok('dpkg-deb', ['--contents', deb]).stdout;
  assert.doesNotMatch(files, /\.\/usr\/local\//, 'a Debian package may not install into /usr/local');
  assert.doesNotMatch(files, /\/dist\/(bench|scripts|test|src)\//, 'the build ships the service alone');
  // (@types/triple-beam is a production dependency of winston's logform: types only, harmless.)
  assert.doesNotMatch(files, /\.node$|\/node_modules\/(typescript|eslint|tsx|@types\/node)\//m, 'native or development code shipped');
  const lint = sh('lintian', ['--no-tag-display-limit', deb]);
  assert.doesNotMatch(lint.stdout, /^E: /m, `lintian errors:\n${lint.stdout}`);
  assert.doesNotMatch(
    lint.stdout,
    /^W: /m,
    `lintian warnings (fix, or override with a reason in packaging/debian/audio-convert.lintian-overrides):\n${lint.stdout}`,
  );
});

void test('dpkg -i: audio-convert on PATH, users, group, 2775 data dirs, a 0640 config (not a conffile), root-owned code, the unit', () => {
  dpkgInstall();
  assert.equal(ok('sh', ['-c', 'command -v audio-convert']).stdout.trim(), '/usr/bin/audio-convert');
  assert.equal(ok('audio-convert', ['--version'], { cwd: '/' }).stdout, `${pkg.version}\n`);

  const gid = id('group', GROUP);
  for (const user of ['auditorai-audio', 'auditorai-data']) {
    const pw = ok('getent', ['passwd', user]).stdout.trim().split(':');
    assert.equal(Number(pw[3]), gid, `${user}: primary group must be ${GROUP}`);
    assert.ok(Number(pw[2]) < 1000, `${user} must be a system user`);
    assert.match(pw[6] ?? '', /\/(nologin|false)$/, `${user} must not have a login shell`);
  }
  const data = id('passwd', 'auditorai-data');
  for (const d of DATA) assert.equal(ownerMode(d), `${data}:${gid} 2775`, d);

  assert.equal(ownerMode(CONF), `0:${gid} 640`);
  assert.deepEqual(fs.readFileSync(CONF), fs.readFileSync(path.join(repo, 'config', 'transcoding.conf')));
  assert.deepEqual(fs.readFileSync('/usr/share/audio-convert/transcoding.conf'), fs.readFileSync(CONF), 'the example postinst copies');
  assert.doesNotMatch(ok('dpkg-deb', ['--info', deb]).stdout, /\bconffiles\b/, 'no conffile: an upgrade must never prompt');
  // The service user reads it through the group (the example config is valid as shipped).
  ok('runuser', ['-u', 'auditorai-audio', '--', 'audio-convert', 'check-config'], { cwd: '/' });
  assert.equal(sh('runuser', ['-u', 'nobody', '--', 'cat', CONF]).status, 1, 'the config must not be readable by others');

  const writable = ok('find', [LIB, '/usr/bin/audio-convert', '-perm', '/022']).stdout;
  assert.equal(writable, '', `writable by group or others:\n${writable}`);
  const notRoot = ok('find', [LIB, '/usr/bin/audio-convert', '(', '!', '-user', 'root', '-o', '!', '-group', 'root', ')']).stdout;
  assert.equal(notRoot, '', `not root:root:\n${notRoot}`);
  assert.ok(fs.existsSync(path.join(LIB, 'node_modules', 'rabbitmq-client', 'package.json')), 'production dependencies missing');

  assert.match(
    fs.readFileSync(UNIT, 'utf8'),
    /^ExecStart=\/usr\/bin\/node --max-semi-space-size=8 --max-old-space-size=128 \/usr\/lib\/audio-convert\/dist\/cli\.js run --config \/etc\/auditorai\/transcoding\.conf$/m,
  );
  assert.match(fs.readFileSync(UNIT, 'utf8'), /^Type=notify$/m);
  assert.match(fs.readFileSync(UNIT, 'utf8'), /^Environment=MALLOC_ARENA_MAX=2$/m);
  const verify = ok('systemd-analyze', ['verify', UNIT]);
  assert.equal(verify.stderr.trim(), '', `systemd-analyze verify complained:\n${verify.stderr}`);
  const security = ok('systemd-analyze', ['security', '--offline=yes', UNIT]).stdout;
  const score = /Overall exposure level for auditorai-transcoding\.service: (\d+(?:\.\d+)?)/.exec(security)?.[1];
  assert.ok(score !== undefined && Number(score) <= 2.0, `exposure ${score} > 2.0`);
  assert.equal(fs.readlinkSync(WANTS), '/lib/systemd/system/auditorai-transcoding.service', 'enabled by deb-systemd-helper');
});

void test('reinstalling keeps an edited configuration, its owner and mode', () => {
  fs.appendFileSync(CONF, '# local edit: must survive a reinstall\n');
  dpkgInstall();
  assert.match(fs.readFileSync(CONF, 'utf8'), /# local edit: must survive a reinstall\n$/);
  assert.equal(ownerMode(CONF), `0:${id('group', GROUP)} 640`);
});

void test('remove takes the code and the unit, keeps the config; purge takes the config; the recordings stay', () => {
  fs.writeFileSync(RECORDING, 'not really GSM, but a recording all the same\n');
  ok('dpkg', ['--remove', 'audio-convert']);
  for (const gone of [LIB, '/usr/bin/audio-convert', UNIT]) assert.equal(fs.existsSync(gone), false, `${gone} still there after remove`);
  assert.ok(fs.existsSync(CONF), 'remove must keep the configuration (purge removes it)');
  assert.ok(fs.existsSync(RECORDING), 'remove touched a recording');

  ok('dpkg', ['--purge', 'audio-convert']);
  assert.equal(fs.existsSync(CONF), false, 'purge must remove the configuration');
  assert.equal(ok('dpkg-statoverride', ['--list']).stdout.includes(CONF), false, 'the stat override outlived the purge');
  assert.equal(fs.existsSync(WANTS), false, 'the enable symlink outlived the purge');
  assert.equal(fs.readFileSync(RECORDING, 'utf8'), 'not really GSM, but a recording all the same\n', 'purge touched a recording');
  for (const d of DATA) assert.ok(fs.existsSync(d), `${d} removed by purge`);
  assert.equal(sh('getent', ['group', GROUP]).status, 0, 'users and group stay (Debian does not remove system users)');
});
