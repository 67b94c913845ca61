// Upgrades the way unattended-upgrades runs them (dpkg -i, stdin at end of file, no terminal) in a
// booted Debian 12 container (test/systemd/container.ts), from the last release that shipped
// transcoding.conf as a conffile (0.1.0) to this tree's package and on to a later build of it, with
// the config edited on the host (the secret): never a prompt, the file and its secret kept, the
// service restarted on the new code (docs/decisions/0017-config-not-a-conffile.md). Then remove,
// purge (the recordings stay), a fresh install, and a control: the same harness does see the prompt
// of a conffile release, so "no prompt" is a result, not a blind spot.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  CONF,
  Container,
  DEBS,
  UNIT,
  VERSION,
  checkPrerequisites,
  configureSimulator,
  copyDeb,
  dpkgInstall,
  explain,
  installSimulator,
  waitFor,
} from './container.js';

const OLD = `audio-convert_${VERSION.old}_all.deb`;
const ONE = `audio-convert_${VERSION.one}_all.deb`;
const TWO = `audio-convert_${VERSION.two}_all.deb`;
/** 0.1.0 again, with one comment of its conffile changed: what a conffile release looked like. */
const OLD_EDITED = `audio-convert_${VERSION.old}+conffile.1_all.deb`;
const EXAMPLE = '/usr/share/audio-convert/transcoding.conf';
const RECORDING = '/var/local/auditorai/gsm/upgrade-test.gsm';
/** The host's own secret, as an operator would have set it: it must survive every upgrade. */
const SECRET = `s3cret-${process.pid}-upgrade`;
const PROMPT = /Configuration file '\/etc\/auditorai\/transcoding\.conf'|conffile prompt/;

let c: Container;
let scratch: string;

before(async () => {
  checkPrerequisites([OLD, ONE, TWO]);
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'ac-upgrade-'));
  repackWithEditedConffile(path.join(DEBS, OLD), path.join(DEBS, OLD_EDITED));
  c = await Container.boot('upgrade');
  await waitFor(
    'RabbitMQ in the container',
    () => (c.run(['systemctl', 'is-active', 'rabbitmq-server']).stdout.trim() === 'active' ? true : undefined),
    120_000,
  );
});

after(async () => {
  await c?.shutdown();
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
  fs.rmSync(path.join(DEBS, OLD_EDITED), { force: true });
});

void test('0.1.0 (config as a conffile) → this version, config edited (secret): no prompt, file and secret kept, new code running', async () => {
  copyDeb(c, OLD);
  c.ok(['dpkg', '--unpack', `/root/${OLD}`], { timeoutMs: 180_000 });
  installSimulator(c);
  await configureSimulator(c, { secret: 'change-me' });
  const configure = c.run(['dpkg', '--configure', 'audio-convert'], { timeoutMs: 180_000 });
  assert.equal(configure.status, 0, explain('dpkg --configure 0.1.0', configure));
  assert.match(
    c.ok(['dpkg-query', '-W', '-f', '${Conffiles}', 'audio-convert']).stdout,
    /\/etc\/auditorai\/transcoding\.conf [0-9a-f]{32}$/m,
    '0.1.0 ships a conffile',
  );
  editConfig();
  await configureSimulator(c, { secret: SECRET });
  assert.equal(c.restart().status, 0);
  await c.onStatus(/^consuming$/);
  const edited = c.read(CONF);
  const pid = c.mainPid();

  const up = dpkgInstall(c, ONE);
  assert.equal(up.status, 0, explain('dpkg -i (stdin closed)', up));
  assert.doesNotMatch(up.stdout + up.stderr, PROMPT);
  assert.equal(c.read(CONF), edited, 'the edited configuration changed');
  assert.equal(ownerMode(CONF), 'root:reincar-auditorai 640');
  assert.equal(c.run(['dpkg-statoverride', '--list', CONF]).stdout, '', "0.1.0's stat override outlived the migration");
  assert.match(
    c.ok(['dpkg-query', '-W', '-f', '${Conffiles}', 'audio-convert']).stdout,
    /transcoding\.conf [0-9a-f]{32} obsolete$/m,
    'dpkg keeps the old conffile as obsolete',
  );
  assert.equal(c.ok(['audio-convert', '--version']).stdout.trim(), VERSION.one);
  // The simulator accepts only SECRET: consuming means the new process logged in with the host's secret.
  await c.onStatus(/^consuming$/);
  assert.notEqual(c.mainPid(), pid, 'the upgrade did not restart the service');
  assert.doesNotMatch(c.journal(), new RegExp(SECRET), 'the secret reached the journal');
});

void test('this version → a later build, config edited again: no prompt, the file kept, restarted on the new version', async () => {
  c.write(CONF, c.read(CONF) + '# edited again before the next upgrade\n', 0o640);
  const edited = c.read(CONF);
  const pid = c.mainPid();
  const up = dpkgInstall(c, TWO);
  assert.equal(up.status, 0, explain('dpkg -i (stdin closed)', up));
  assert.doesNotMatch(up.stdout + up.stderr, PROMPT);
  assert.doesNotMatch(up.stdout, /created \/etc\/auditorai\/transcoding\.conf/, 'postinst must not recreate an existing file');
  assert.equal(c.read(CONF), edited);
  assert.equal(ownerMode(CONF), 'root:reincar-auditorai 640');
  assert.equal(c.ok(['dpkg-query', '-W', '-f', '${Version}', 'audio-convert']).stdout, VERSION.two);
  assert.equal(c.ok(['audio-convert', '--version']).stdout.trim(), VERSION.two);
  await c.onStatus(/^consuming$/);
  assert.notEqual(c.mainPid(), pid, 'the upgrade did not restart the service');
});

void test('remove: service stopped, code and unit gone; the config and the recordings stay', () => {
  c.sh(`sox -n -r 8000 -c 1 ${RECORDING} synth 0.5 sine 440`);
  const recording = c.read(RECORDING);
  const r = c.run(['dpkg', '--remove', 'audio-convert'], { timeoutMs: 180_000 });
  assert.equal(r.status, 0, explain('dpkg --remove', r));
  assert.equal(c.run(['systemctl', 'is-active', UNIT]).stdout.trim(), 'inactive');
  for (const gone of ['/usr/lib/audio-convert', '/usr/bin/audio-convert', `/usr/lib/systemd/system/${UNIT}`])
    assert.equal(c.exists(gone), false, `${gone} left after remove`);
  assert.match(c.read(CONF), new RegExp(`^Secret = "${SECRET}"$`, 'm'), 'remove must keep the configuration');
  assert.equal(c.read(RECORDING), recording);
});

void test('purge: the config goes (and the empty /etc/auditorai); the recordings, data directories, users stay', () => {
  const r = c.run(['dpkg', '--purge', 'audio-convert'], { timeoutMs: 180_000 });
  assert.equal(r.status, 0, explain('dpkg --purge', r));
  assert.equal(c.exists(CONF), false, 'purge must remove the configuration');
  assert.equal(c.exists('/etc/auditorai'), false, 'the empty /etc/auditorai outlived the purge');
  assert.equal(c.run(['dpkg-statoverride', '--list', CONF]).stdout, '');
  assert.notEqual(c.run(['dpkg-query', '-W', 'audio-convert']).status, 0, 'dpkg still knows the package');
  assert.ok(c.exists(RECORDING), 'purge removed a recording');
  for (const d of ['gsm', 'wav', 'transcription', 'completions'])
    assert.ok(c.exists(`/var/local/auditorai/${d}`), `purge removed /var/local/auditorai/${d}`);
  assert.equal(c.run(['getent', 'passwd', 'auditorai-audio']).status, 0, 'Debian leaves system users in place');
});

void test('a fresh install creates the config from the example: 0640 root:reincar-auditorai, no conffile', async () => {
  // Unpack, start the simulator (its command went with the purge), configure: as in the first test.
  copyDeb(c, TWO);
  c.ok(['dpkg', '--unpack', `/root/${TWO}`], { timeoutMs: 180_000 });
  await configureSimulator(c, { secret: 'change-me' });
  const r = c.run(['dpkg', '--configure', 'audio-convert'], { timeoutMs: 180_000 });
  assert.equal(r.status, 0, explain('dpkg --configure', r));
  assert.match(r.stdout, /created \/etc\/auditorai\/transcoding\.conf from \/usr\/share\/audio-convert\/transcoding\.conf/);
  assert.equal(c.read(CONF), c.read(EXAMPLE));
  assert.equal(c.read(`/usr/share/doc/audio-convert/examples/transcoding.conf`), c.read(EXAMPLE));
  assert.equal(ownerMode(CONF), 'root:reincar-auditorai 640');
  assert.equal(c.ok(['dpkg-query', '-W', '-f', '${Conffiles}', 'audio-convert']).stdout.trim(), '', 'the package must ship no conffile');
  assert.equal(c.run(['runuser', '-u', 'nobody', '--', 'cat', CONF]).status, 1, 'the config must not be readable by others');
  await c.onStatus(/^consuming$/);
});

void test('control: a conffile release (0.1.0 → 0.1.0 with one comment changed) does stop at the prompt in this harness', () => {
  const purge = c.run(['dpkg', '--purge', 'audio-convert'], { timeoutMs: 180_000 });
  assert.equal(purge.status, 0, explain('dpkg --purge', purge));
  const old = dpkgInstall(c, OLD);
  assert.equal(old.status, 0, explain('dpkg -i 0.1.0', old));
  editConfig();
  const up = dpkgInstall(c, OLD_EDITED);
  assert.notEqual(up.status, 0, 'dpkg did not stop at the conffile prompt: the harness would miss one');
  assert.match(up.stdout + up.stderr, PROMPT);
  const half = c.ok(['dpkg-query', '-W', '-f', '${Status}', 'audio-convert']).stdout;
  assert.match(half, /half-configured|unpacked/, 'the state an unattended upgrade is left in');
});

/** What an operator does after installing: the secret, and a comment of their own. */
function editConfig(): void {
  const text = c.read(CONF);
  assert.match(text, /^Secret = "change-me"$/m);
  c.write(CONF, text.replace(/^Secret = "change-me"$/m, `Secret = "${SECRET}"`) + '# edited on this host\n', 0o640);
}

function ownerMode(file: string): string {
  return c.ok(['stat', '-c', '%U:%G %a', file]).stdout.trim();
}

/** 0.1.0 with a changed comment in its conffile and a higher version (dpkg-deb, on the host). */
function repackWithEditedConffile(from: string, to: string): void {
  const tree = path.join(scratch, 'repack');
  const run = (cmd: string, args: string[]): void => {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  };
  run('dpkg-deb', ['-R', from, tree]);
  const conf = path.join(tree, 'etc/auditorai/transcoding.conf');
  fs.appendFileSync(conf, '# a comment changed by the next release\n');
  const control = path.join(tree, 'DEBIAN/control');
  fs.writeFileSync(control, fs.readFileSync(control, 'utf8').replace(/^Version: .*$/m, `Version: ${VERSION.old}+conffile.1`));
  run('dpkg-deb', ['--root-owner-group', '-b', tree, to]);
}
