/**
 * What every real-Asterisk test file shares: a throwaway Asterisk (one per file), an `untoast` test
 * double on its PATH, data under the dialplan's fixed root with names unique to this run, and the
 * bridge wired to it through test/helpers/stack.ts.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { originateAction, type OriginateTarget } from '../../src/worker/originate.js';
import { makeDataRoot, makeStackOn, type ConfigOverrides, type DataRoot, type ExternalStack } from '../helpers/stack.js';
import { startAsterisk, type AsteriskInstance, type InstanceOptions } from './instance.js';

/**
 * The dialplan's paths are fixed: its REGEXes accept only /var/local/auditorai/{gsm,wav}/<name>
 * (docs/asterisk.md). So the files of this suite live there, under names unique to the run.
 */
export const DIALPLAN_ROOT = '/var/local/auditorai';

/** Put in a GSM file's name, makes the `untoast` double hang (see decoderDouble). */
export const HANG_MARK = 'hang-step';

export interface RealAsterisk {
  readonly asterisk: AsteriskInstance;
  /**
   * One line per decoder the dialplan's step started, `<stdin's file> > <stdout's file> <args>`, in
   * order (proves what ran, and what did not).
   */
  decoderCalls(): string[];
  /** A stack (RabbitMQ objects, data, config) whose service logs in to this Asterisk. */
  stack(config?: ConfigOverrides, data?: DataRoot): Promise<ExternalStack>;
  close(): Promise<void>;
}

/**
 * The dialplan runs `untoast` by name, so a script earlier on the Asterisk process's PATH stands in
 * for it: it logs the files it was given (the step hands it the GSM as stdin and the temp file as
 * stdout) and runs the real untoast, except for an input whose name holds HANG_MARK, where it hangs
 * like a stuck conversion. A double of the decoder only: the shell, perl (its header, timer, size
 * check and rename) and the dialplan stay the real ones.
 */
function decoderDouble(dir: string): { bin: string; log: string } {
  const real = commandPath('untoast', 'libgsm-tools');
  const bin = path.join(dir, 'bin');
  const log = path.join(dir, 'decoder-calls.log');
  execFileSync('mkdir', ['-p', bin]);
  writeFileSync(
    path.join(bin, 'untoast'),
    `#!/bin/sh\n# test double (test/asterisk/setup.ts): log, then the real untoast, or hang\n` +
      `in=$(readlink /proc/$$/fd/0); out=$(readlink /proc/$$/fd/1)\n` +
      `echo "$in > $out $*" >> ${log}\n` +
      `case "$in" in *${HANG_MARK}*) exec sleep 3600 ;; esac\n` +
      `exec ${real} "$@"\n`,
  );
  chmodSync(path.join(bin, 'untoast'), 0o755);
  return { bin, log };
}

/** Where a program the shipped dialplan runs is; a clear failure, saying what to install, if it is missing. */
export function commandPath(name: string, debianPackage: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(
      `${name} is not installed; the real-Asterisk suite needs it: apt-get install ${debianPackage} (or scripts/asterisk/deps.sh)`,
    );
  }
}

/**
 * Starts a real Asterisk for one test file. `step` picks the shipped dialplan's conversion step:
 * 'perl' (default: app_convert not loaded) or 'convert-app' (the module loaded: Convert()).
 */
export async function realAsterisk(options: Pick<InstanceOptions, 'step' | 'env'> = {}): Promise<RealAsterisk> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ac-real-'));
  const decoder = decoderDouble(dir);
  const asterisk = await startAsterisk({ ...options, pathPrepend: [decoder.bin] });
  const stacks: ExternalStack[] = [];
  return {
    asterisk,
    decoderCalls: () => (existsSync(decoder.log) ? readFileSync(decoder.log, 'utf8').split('\n').filter(Boolean) : []),
    async stack(config = {}, data = runData()) {
      const s = await makeStackOn(asterisk, { data, config: { ...config, worker: { AllowedRoots: DIALPLAN_ROOT, ...config.worker } } });
      stacks.push(s);
      return s;
    },
    async close() {
      for (const s of stacks) await s.close().catch(() => undefined);
      await asterisk.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Data under the dialplan's root, every name prefixed with this run's id; remove() deletes only those. */
export function runData(): DataRoot {
  return makeDataRoot({ root: DIALPLAN_ROOT, prefix: `ac-test-${randomUUID().slice(0, 8)}-` });
}

/** GET a path of the service's HTTP server: the status code. */
export function httpStatus(port: number | undefined, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: urlPath }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The fields of a result message the tests look at. */
export type Result = {
  job_id: string;
  status: string;
  wav_bytes?: number;
  attempts: number;
  error?: { code: string; message: string };
};

/** An AMI event's fields. */
export type Fields = Map<string, string>;

/** Where the bridge's Originate goes with the shipped configuration (docs/asterisk.md). */
const SHIPPED_TARGET: OriginateTarget = { channel: 'Local/s@audio-convert-hold', context: 'audio-convert', exten: 'convert' };

/**
 * One Originate as the bridge sends it (the bridge's own action builder), on a connection of its own (no bridge, no RabbitMQ): what a
 * test needs to hand the dialplan a path the bridge would refuse. Resolves with the UserEvent of its
 * ChannelId after the Hangup; rejects after `timeoutMs`.
 */
export function originateConvert(
  ami: { port: number; user: string; secret: string },
  gsmPath: string,
  wavPath: string,
  timeoutMs = 30_000,
  /** More `Variable:` values, e.g. `GSM_PATH2=…` for a two-leg job. */
  variables: readonly string[] = [],
): Promise<{ jobId: string; event: Fields | undefined }> {
  const jobId = randomUUID();
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: ami.port });
    const timer = setTimeout(() => reject(new Error(`no Hangup within ${timeoutMs} ms`)), timeoutMs);
    let text = '';
    let event: Fields | undefined;
    const send = (pairs: ReadonlyArray<readonly [string, string]>): boolean =>
      socket.write(`${pairs.map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
    socket.on('error', reject);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('latin1');
      for (let end = text.indexOf('\r\n\r\n'); end >= 0; end = text.indexOf('\r\n\r\n')) {
        const lines = text.slice(0, end).split('\r\n');
        text = text.slice(end + 4);
        const m: Fields = new Map(
          lines.filter((l) => l.includes(': ')).map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]),
        );
        if (m.get('Response') === 'Success' && m.get('ActionID') === 'login') {
          send([
            ...originateAction(SHIPPED_TARGET, jobId, gsmPath, wavPath),
            ...variables.map((v): [string, string] => ['Variable', v]),
            ['ActionID', jobId],
          ]);
        } else if (m.get('Response') === 'Error') {
          reject(new Error(`AMI error: ${lines.join(' / ')}`));
        } else if (m.get('Event') === 'UserEvent' && m.get('Uniqueid') === jobId) {
          event = m;
        } else if (m.get('Event') === 'Hangup' && m.get('Uniqueid') === jobId) {
          clearTimeout(timer);
          socket.end();
          resolve({ jobId, event });
        }
      }
    });
    send([
      ['Action', 'Login'],
      ['Username', ami.user],
      ['Secret', ami.secret],
      ['ActionID', 'login'],
    ]);
  });
}
