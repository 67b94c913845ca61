/**
 * A throwaway real Asterisk for the real-Asterisk suite: a thin wrapper over
 * scripts/asterisk/instance.sh (which benchmarks use too), so there is one way to start and stop it.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const REPO = path.resolve(import.meta.dirname, '../..');
const SCRIPT = path.join(REPO, 'scripts/asterisk/instance.sh');

/** How to reach and control one running instance. */
export interface AsteriskInstance {
  readonly dir: string;
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly secret: string;
  /** The Asterisk process (changes when it is started again after kill -9). */
  pid: number;
  /** One CLI command (`asterisk -rx`), its output. */
  cli(command: string): Promise<string>;
  /** kill -9 the Asterisk process: the AMI socket just closes; running steps become orphans. */
  kill9(): Promise<void>;
  /** Starts it again in the same directory (same port and secret) and waits until fully booted. */
  startAgain(): Promise<void>;
  /** `core stop now`, kill every process the instance started, remove its directory. Idempotent. */
  stop(): Promise<void>;
}

export interface InstanceOptions {
  /** Directories put first on the PATH of the Asterisk process (what its System() steps run). */
  readonly pathPrepend?: readonly string[];
  /**
   * Which conversion step the shipped dialplan takes: 'convert-app' loads app_convert (built into the
   * prefix by scripts/asterisk/build.sh), 'perl' keeps it unloaded (modules.conf noload). Default 'perl'.
   */
  readonly step?: 'perl' | 'convert-app';
  /** Extra environment for scripts/asterisk/instance.sh (AUDIOCONVERT_ASTERISK_WRAPPER, …). */
  readonly env?: Readonly<Record<string, string>>;
}

/**
 * Resolves the Asterisk install (AUDIOCONVERT_ASTERISK_PREFIX, or AUDIOCONVERT_ASTERISK_SOURCE built
 * once into the cache) and starts an instance; rejects with scripts/asterisk/prefix.sh's message
 * (how to get an Asterisk) when neither is set.
 */
export async function startAsterisk(options: InstanceOptions = {}): Promise<AsteriskInstance> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ac-asterisk-'));
  const env = {
    ...process.env,
    PATH: [...(options.pathPrepend ?? []), process.env['PATH'] ?? ''].join(':'),
    AUDIOCONVERT_ASTERISK_NOLOAD: options.step === 'convert-app' ? '' : 'app_convert.so',
    ...options.env,
  };
  const sh = async (...args: string[]): Promise<string> => {
    try {
      return (await run(SCRIPT, args, { env, maxBuffer: 1 << 24 })).stdout;
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`scripts/asterisk/instance.sh ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
    }
  };
  await sh('start', dir);
  const vars = readEnv(dir);
  let stopped = false;
  const instance: AsteriskInstance = {
    dir,
    host: vars['AMI_HOST'] ?? '127.0.0.1',
    port: Number(vars['AMI_PORT']),
    user: vars['AMI_USER'] ?? 'auditorai',
    secret: vars['AMI_SECRET'] ?? '',
    pid: Number(vars['ASTERISK_PID']),
    cli: (command) => sh('cli', dir, command),
    async kill9() {
      process.kill(instance.pid, 'SIGKILL');
      await onExit(instance.pid);
    },
    async startAgain() {
      await sh('start', dir);
      instance.pid = Number(readEnv(dir)['ASTERISK_PID']);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      await sh('stop', dir);
    },
  };
  return instance;
}

function readEnv(dir: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of readFileSync(path.join(dir, 'instance.env'), 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) vars[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return vars;
}

/**
 * Resolves when `pid` is gone or a zombie (polling: it is not our child, so there is no exit event;
 * and whoever reaps orphans here may be slow to).
 */
async function onExit(pid: number): Promise<void> {
  for (;;) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return;
    }
    if (/^\d+ \(.*\) Z/s.test(stat)) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
