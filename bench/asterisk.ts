/**
 * The real Asterisk the `--asterisk` mode measures: a throwaway instance started with
 * scripts/asterisk/instance.sh (its own directories and AMI port, the repository's dialplan), or
 * one the caller names (`--ami host:port`, user, secret, and its pid for the CPU figures). Its
 * data are the dialplan's own paths, /var/local/auditorai/{gsm,wav}, with names unique to the run.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { REPO } from './env.js';

/** What a driver needs to reach the AMI, and the pid whose CPU (children included) is Asterisk's. */
export interface AsteriskTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly secret: string;
  readonly pid: number | undefined;
  /**
   * Loads another dialplan file in place of the repository's (throwaway instance only), with
   * app_convert loaded (`convertApp`: the shipped dialplan then converts with Convert()) or unloaded
   * (the perl step, and every variant: they change the perl step's priorities).
   */
  useDialplan(file: string, convertApp: boolean): void;
  stop(): void;
}

const INSTANCE = path.join(REPO, 'scripts', 'asterisk', 'instance.sh');

function parseEnv(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return out;
}

/** A throwaway instance (needs AUDIOCONVERT_ASTERISK_PREFIX or _SOURCE, see scripts/asterisk/prefix.sh). */
export function startInstance(): AsteriskTarget {
  const env = parseEnv(execFileSync(INSTANCE, ['start'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }));
  const dir = env.get('ASTERISK_DIR')!;
  const cli = (command: string): string => execFileSync(INSTANCE, ['cli', dir, command], { encoding: 'utf8' });
  return {
    host: env.get('AMI_HOST') ?? '127.0.0.1',
    port: Number(env.get('AMI_PORT')),
    user: env.get('AMI_USER')!,
    secret: env.get('AMI_SECRET')!,
    pid: Number(env.get('ASTERISK_PID')),
    useDialplan(file, convertApp) {
      const loaded = /app_convert\.so/.test(cli('module show like app_convert'));
      if (loaded && !convertApp) cli('module unload app_convert.so');
      if (!loaded && convertApp && !/Loaded app_convert/.test(cli('module load app_convert.so')))
        throw new Error('module load app_convert.so failed: is it built (scripts/asterisk/build.sh)?');
      // Same wrapper as instance.sh writes, another file inside it.
      writeFileSync(
        path.join(dir, 'etc', 'extensions.conf'),
        `[general]\nstatic = yes\nwriteprotect = yes\n\n#include "${path.resolve(file)}"\n`,
      );
      const out = cli('dialplan reload');
      if (!/Dialplan reloaded/i.test(out)) throw new Error(`dialplan reload of ${file}: ${out}`);
    },
    stop() {
      execFileSync(INSTANCE, ['stop', dir], { stdio: 'inherit' });
    },
  };
}

/** An Asterisk someone else runs: `host:port`, a user with the bridge's rights, optionally its pid. */
export function givenAsterisk(ami: string, user: string, secret: string, pid: number | undefined): AsteriskTarget {
  const [host, port] = ami.includes(':') ? [ami.slice(0, ami.lastIndexOf(':')), Number(ami.slice(ami.lastIndexOf(':') + 1))] : [ami, 5038];
  return {
    host,
    port,
    user,
    secret,
    pid,
    useDialplan() {
      throw new Error('--dialplans needs the throwaway instance (--asterisk without --ami)');
    },
    stop: () => undefined,
  };
}

/** The dialplan's fixed data root, with files named bench-<run>-… so a run removes only its own. */
export interface AsteriskData {
  readonly gsm: string;
  wav(name: string): string;
  remove(): void;
}

export const DATA_ROOT = '/var/local/auditorai';

export function makeAsteriskData(runId: string): AsteriskData {
  const prefix = `bench-${runId.replace(/[^A-Za-z0-9]/g, '')}`;
  const gsmDir = path.join(DATA_ROOT, 'gsm');
  const wavDir = path.join(DATA_ROOT, 'wav');
  mkdirSync(gsmDir, { recursive: true });
  mkdirSync(wavDir, { recursive: true });
  const gsm = path.join(gsmDir, `${prefix}.gsm`);
  // 3 s of 8 kHz mono, as the recordings.
  execFileSync('sox', ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', gsm, 'synth', '3', 'sine', '440']);
  return {
    gsm,
    wav: (name) => path.join(wavDir, `${prefix}-${name}.wav`),
    remove() {
      rmSync(gsm, { force: true });
      for (const f of readdirSync(wavDir)) if (f.startsWith(`${prefix}-`)) rmSync(path.join(wavDir, f), { force: true });
    },
  };
}
