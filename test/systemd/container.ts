/**
 * A booted Debian 12 with systemd as PID 1, for test/systemd/: `systemd-nspawn --boot` on an overlay
 * of the cached root file system (scripts/systemd/rootfs.sh), driven from the host through
 * `nsenter -t <PID 1> -a` (no machined, no system bus on the host: docs/testing.md).
 *
 * Everything of one run lives in a directory under /var/tmp (the overlay's upper layer, the merged
 * root, the console log); {@link Container.shutdown} powers the container off, unmounts and removes it.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export const REPO = path.resolve(import.meta.dirname, '..', '..');
export const ROOTFS = process.env.AUDIOCONVERT_NSPAWN_ROOTFS ?? '/var/cache/audio-convert-ci/nspawn-bookworm';
/** Where scripts/systemd/prepare.sh puts the packages the suite installs. */
export const DEBS = path.join(REPO, 'dist', 'systemd-debs');
const PKG = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
export const VERSION = { old: '0.1.0', one: `${PKG.version}+systemd.1`, two: `${PKG.version}+systemd.2` } as const;

export const UNIT = 'auditorai-transcoding.service';
export const CONF = '/etc/auditorai/transcoding.conf';
const PATH_INSIDE = 'PATH=/usr/sbin:/usr/bin:/sbin:/bin';

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function explain(what: string, r: Run): string {
  return `${what}: exit ${String(r.status)}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

function host(cmd: string, args: readonly string[], timeoutMs = 120_000): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Fails (never skips) when the machine cannot run the suite, saying how to get what is missing.
 * The .debs come from scripts/systemd/prepare.sh, which `npm run test:systemd` runs first.
 */
export function checkPrerequisites(debs: readonly string[]): void {
  if (process.getuid?.() !== 0) throw new Error('test/systemd needs root (systemd-nspawn, mount, nsenter): run it as root, as CI does');
  for (const [tool, pkg] of [
    ['systemd-nspawn', 'systemd-container'],
    ['nsenter', 'util-linux'],
    ['debootstrap', 'debootstrap'],
  ] as const) {
    if (host('sh', ['-c', `command -v ${tool}`]).status !== 0)
      throw new Error(`${tool} not found: apt-get update && apt-get install -y ${pkg} (docs/testing.md, "systemd in a container")`);
  }
  if (!fs.existsSync(path.join(ROOTFS, '.complete')))
    throw new Error(`no cached root file system at ${ROOTFS}: run scripts/systemd/rootfs.sh (or npm run test:systemd, which does)`);
  for (const deb of debs) {
    if (!fs.existsSync(path.join(DEBS, deb)))
      throw new Error(`${path.join(DEBS, deb)} is missing: npm run test:systemd builds it (scripts/systemd/prepare.sh)`);
  }
}

/** Polls `probe` every `everyMs` until it returns a value that is not undefined, or fails after `timeoutMs` saying what it waited for. */
export async function waitFor<T>(what: string, probe: () => T | undefined, timeoutMs: number, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last instanceof Error ? ` (last error: ${last.message})` : ''}`,
      );
    }
    await delay(everyMs);
  }
}

export class Container {
  private constructor(
    /** The run's directory (upper, work, root, console.log). */
    readonly dir: string,
    /** The merged root file system, as the host sees it. */
    readonly root: string,
    private readonly nspawn: ReturnType<typeof spawn>,
    /** The container's PID 1 (systemd), as the host sees it. */
    readonly leader: number,
  ) {}

  /**
   * Boots a fresh container on an overlay of the cached tree and waits until systemd reports the
   * system `running` (or `degraded`, with the failed units in the error if it stays so).
   */
  static async boot(name: string): Promise<Container> {
    const dir = fs.mkdtempSync(`/var/tmp/ac-systemd-${name}.`);
    const root = path.join(dir, 'root');
    for (const d of ['upper', 'work', 'root']) fs.mkdirSync(path.join(dir, d));
    const mount = host('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${ROOTFS},upperdir=${dir}/upper,workdir=${dir}/work`, root]);
    if (mount.status !== 0) throw new Error(explain('mount the overlay', mount));
    const log = fs.openSync(path.join(dir, 'console.log'), 'a');
    // --register=no and --keep-unit: nothing to ask of machined or the host's (absent) system bus.
    // --private-network: only the container's own loopback (RabbitMQ, the simulator, the service).
    const nspawn = spawn(
      'systemd-nspawn',
      ['--boot', '--register=no', '--keep-unit', '--private-network', '--console=passive', `--machine=ac-${name}`, '-D', root],
      { stdio: ['ignore', log, log] },
    );
    fs.closeSync(log);
    try {
      return await Container.onBooted(dir, root, nspawn);
    } catch (error) {
      // A container that did not come up is torn down here: the caller never gets one to shut down.
      killHard(nspawn);
      host('umount', ['-l', root]);
      const console = fs.readFileSync(path.join(dir, 'console.log'), 'utf8').split('\n').slice(-20).join('\n');
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`${(error as Error).message}\n--- console (last lines)\n${console}`, { cause: error });
    }
  }

  private static async onBooted(dir: string, root: string, nspawn: ReturnType<typeof spawn>): Promise<Container> {
    const nspawnPid = nspawn.pid;
    if (nspawnPid === undefined) throw new Error('systemd-nspawn did not start');
    const leader = await waitFor(
      'the container PID 1',
      () => {
        if (nspawn.exitCode !== null) return -1;
        const children = fs.readFileSync(`/proc/${nspawnPid}/task/${nspawnPid}/children`, 'utf8').trim();
        return children === '' ? undefined : Number(children.split(' ')[0]);
      },
      30_000,
      100,
    );
    if (leader === -1) throw new Error(`systemd-nspawn exited (${String(nspawn.exitCode)}) before the container booted`);
    const c = new Container(dir, root, nspawn, leader);
    const state = await waitFor(
      'systemd in the container to finish booting',
      () => {
        const s = c.run(['systemctl', 'is-system-running']).stdout.trim();
        return s === 'running' || s === 'degraded' ? s : undefined;
      },
      90_000,
    );
    if (state === 'degraded') throw new Error(`the container booted degraded:\n${c.run(['systemctl', '--failed', '--no-legend']).stdout}`);
    return c;
  }

  /** A command inside the container (all its namespaces, a clean environment), synchronously. */
  run(argv: readonly string[], opts: { timeoutMs?: number; env?: readonly string[] } = {}): Run {
    return host(
      'nsenter',
      ['-t', String(this.leader), '-a', 'env', '-i', PATH_INSIDE, 'LC_ALL=C', ...(opts.env ?? []), ...argv],
      opts.timeoutMs,
    );
  }

  /** {@link run}, failing the test on a non-zero exit. */
  ok(argv: readonly string[], opts: { timeoutMs?: number; env?: readonly string[] } = {}): Run {
    const r = this.run(argv, opts);
    if (r.status !== 0) throw new Error(explain(argv.join(' '), r));
    return r;
  }

  /** A `sh -c` script inside the container, failing on a non-zero exit. */
  sh(script: string, timeoutMs?: number): string {
    return this.ok(['sh', '-ec', script], timeoutMs === undefined ? {} : { timeoutMs }).stdout;
  }

  /** A command inside the container that runs while the test goes on; resolves with its outcome. */
  start(argv: readonly string[]): Promise<Run> {
    const child = spawn('nsenter', ['-t', String(this.leader), '-a', 'env', '-i', PATH_INSIDE, 'LC_ALL=C', ...argv], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (status) => resolve({ status, stdout, stderr }));
    });
  }

  /** A file inside the container, written from the host (the merged root; not under /run or /tmp, which are tmpfs inside). */
  write(file: string, content: string | Buffer, mode = 0o644): void {
    const target = path.join(this.root, file);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, content, { mode });
    fs.chmodSync(target, mode);
  }

  read(file: string): string {
    return fs.readFileSync(path.join(this.root, file), 'utf8');
  }

  exists(file: string): boolean {
    return fs.existsSync(path.join(this.root, file));
  }

  /** `systemctl show -p …` of a unit, as a record. */
  show(unit: string, ...props: string[]): Record<string, string> {
    const out = this.ok(['systemctl', 'show', ...props.flatMap((p) => ['-p', p]), unit]).stdout;
    return Object.fromEntries(
      out
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
  }

  /** The unit's STATUS= text (what `systemctl status` shows as Status:). */
  statusText(unit = UNIT): string {
    return this.show(unit, 'StatusText').StatusText ?? '';
  }

  /** Waits until the unit is active and its STATUS= text matches. */
  async onStatus(pattern: RegExp, timeoutMs = 60_000, unit = UNIT): Promise<string> {
    let seen = '';
    try {
      return await waitFor(
        `STATUS= of ${unit} matching ${String(pattern)}`,
        () => {
          const s = this.show(unit, 'ActiveState', 'StatusText');
          seen = `${s.ActiveState ?? '?'}: ${s.StatusText ?? ''}`;
          return s.ActiveState === 'active' && pattern.test(s.StatusText ?? '') ? s.StatusText : undefined;
        },
        timeoutMs,
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}; last seen ${seen}\n${this.journal(unit).split('\n').slice(-15).join('\n')}`);
    }
  }

  /** The unit's journal (messages only) since the boot. */
  journal(unit = UNIT): string {
    return this.run(['journalctl', '--no-pager', '-o', 'cat', '-u', unit]).stdout;
  }

  /** A main PID of an active unit (0 when none). */
  mainPid(unit = UNIT): number {
    return Number(this.show(unit, 'MainPID').MainPID);
  }

  /** `systemctl reset-failed` then `restart`: the tests restart far more often than StartLimitBurst allows an operator. */
  restart(unit = UNIT): Run {
    this.run(['systemctl', 'reset-failed', unit]);
    return this.run(['systemctl', 'restart', unit], { timeoutMs: 120_000 });
  }

  /** Powers the container off (bounded), then unmounts and removes the run's directory. Idempotent. */
  async shutdown(): Promise<void> {
    const nspawn = this.nspawn;
    if (nspawn.exitCode === null && nspawn.signalCode === null) {
      const exited = new Promise<void>((resolve) => nspawn.once('exit', () => resolve()));
      this.run(['systemctl', 'poweroff', '--no-block']);
      const timer = setTimeout(() => killHard(nspawn), 60_000);
      await exited;
      clearTimeout(timer);
    }
    const umount = host('umount', [this.root]);
    if (umount.status !== 0 && host('mountpoint', ['-q', this.root]).status === 0) throw new Error(explain('umount', umount));
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * SIGKILL to the container's PID 1 (which ends every process of its PID namespace), then to
 * systemd-nspawn: killing nspawn alone would leave the container running.
 */
function killHard(nspawn: ReturnType<typeof spawn>): void {
  try {
    for (const pid of fs
      .readFileSync(`/proc/${String(nspawn.pid)}/task/${String(nspawn.pid)}/children`, 'utf8')
      .trim()
      .split(' ')) {
      if (pid !== '') process.kill(Number(pid), 'SIGKILL');
    }
  } catch {
    /* nspawn already gone, or no child yet */
  }
  nspawn.kill('SIGKILL');
}

/**
 * The unit the tests run the Asterisk simulator as (the package's `audio-convert simulate-asterisk`),
 * with a `sox` test double first on its PATH: it logs each conversion (its argv) to /var/log/ac-sox.log
 * and makes it last SOX_DELAY seconds, so a batch spans a `systemctl stop`. The secret the simulator
 * accepts is SIM_SECRET (the example config's `change-me` unless /etc/ac-simulator.env says otherwise).
 */
export function installSimulator(c: Container): void {
  c.write(
    '/etc/systemd/system/ac-simulator.service',
    [
      '[Unit]',
      'Description=audio-convert test suite: the Asterisk simulator (AMI on 127.0.0.1:5038)',
      '[Service]',
      'Environment=SIM_SECRET=change-me SOX_DELAY=0',
      'EnvironmentFile=-/etc/ac-simulator.env',
      'Environment=PATH=/opt/ac-test/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'ExecStart=/usr/bin/audio-convert simulate-asterisk --port 5038 --user auditorai --secret ${SIM_SECRET}',
      '',
    ].join('\n'),
  );
  c.write(
    '/opt/ac-test/bin/sox',
    [
      '#!/bin/sh',
      '# test double (test/systemd/container.ts): one line per conversion, then the real sox',
      'echo "$*" >>/var/log/ac-sox.log',
      'sleep "${SOX_DELAY:-0}"',
      'exec /usr/bin/sox "$@"',
      '',
    ].join('\n'),
    0o755,
  );
  c.ok(['systemctl', 'daemon-reload']);
}

/** Sets what the simulator accepts and how slow its conversions are, and restarts it. */
export async function configureSimulator(c: Container, env: { secret: string; soxDelay?: number }): Promise<void> {
  c.write('/etc/ac-simulator.env', `SIM_SECRET=${env.secret}\nSOX_DELAY=${env.soxDelay ?? 0}\n`, 0o600);
  c.ok(['systemctl', 'restart', 'ac-simulator.service']);
  await waitFor(
    'the simulator to listen on 127.0.0.1:5038',
    () => (c.run(['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/5038']).status === 0 ? true : undefined),
    30_000,
  );
}

/**
 * Installs a package the way an unattended upgrade does: `dpkg -i` with stdin at end of file (a
 * conffile prompt then fails instead of waiting) and no terminal. Returns the run, whatever its exit.
 */
export function dpkgInstall(c: Container, deb: string): Run {
  copyDeb(c, deb);
  return c.run(['dpkg', '-i', `/root/${deb}`], { timeoutMs: 180_000 });
}

/** Puts a package of dist/systemd-debs/ into the container's /root. */
export function copyDeb(c: Container, deb: string): void {
  fs.copyFileSync(path.join(DEBS, deb), path.join(c.root, 'root', deb));
}
