/**
 * Dated trees on a real Asterisk with the shipped dialplan: a job in gsm/<run>/2026/12/02/ converts
 * into a wav/<run>/2026/12/02/ that did not exist (the dialplan creates it), and paths with a `..`,
 * hidden or option-like name are refused by the dialplan itself before anything runs; the ping
 * extension reports the roots of [globals].
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AmiClient } from '../../src/ami/client.js';
import { Originator, type OriginateOutcome } from '../../src/worker/originate.js';
import { getHeader, type AmiMessage } from '../../src/ami/protocol.js';
import { readWav } from '../helpers/wav.js';
import { realAsterisk, DIALPLAN_ROOT, type RealAsterisk, type Result } from './setup.js';

let real: RealAsterisk;
before(async () => {
  real = await realAsterisk();
});
after(() => real?.close());

/** Logs in as the bridge does and originates into `exten` with these paths, past the bridge's own checks. */
async function originate(exten: string, gsmPath: string, wavPath: string, onEvent?: (m: AmiMessage) => void): Promise<OriginateOutcome> {
  const a = real.asterisk;
  const client = new AmiClient({ host: a.host, port: a.port, username: a.user, secret: a.secret, pingIntervalMs: 0 });
  const connected = once(client, 'connected');
  client.start();
  await connected;
  if (onEvent) client.on('event', onEvent);
  const originator = new Originator(client, { channel: 'Local/s@audio-convert-hold', context: 'audio-convert', exten });
  try {
    return await originator.run({ gsmPath, wavPath, timeoutMs: 20_000 });
  } finally {
    originator.dispose();
    await client.close();
  }
}

describe('dated trees on a real Asterisk', () => {
  it('a job in a dated subdirectory converts into an output directory the dialplan creates', async () => {
    const stack = await real.stack();
    const tree = `${stack.data.prefix}dated`;
    const gsm = path.join(stack.data.gsmDir, tree, '2026/12/02/call-1.gsm');
    mkdirSync(path.dirname(gsm), { recursive: true });
    renameSync(stack.data.gsm('dated-src'), gsm);
    const wav = path.join(stack.data.wavDir, tree, '2026/12/02/call-1.wav');
    assert.equal(existsSync(path.join(stack.data.wavDir, tree)), false);
    await stack.startService();
    await stack.publish({ job_id: 'dated-1', gsm_path: gsm, wav_path: wav });
    await stack.results.onCount(1);
    const [result] = stack.results.bodies<Result>();
    assert.equal(result?.status, 'converted', JSON.stringify(result));
    assert.ok(Math.abs(readWav(wav).seconds - 1) < 0.05);
    assert.equal(statSync(path.dirname(wav)).mode & 0o7777, 0o2775, 'mkdir -p -m 2775');
  });

  it('.., hidden and option-like names are refused by the dialplan; nothing runs', async () => {
    const stack = await real.stack();
    const g = `${DIALPLAN_ROOT}/gsm/${stack.data.prefix}t`;
    const w = `${DIALPLAN_ROOT}/wav/${stack.data.prefix}t`;
    const before = real.decoderCalls().length;
    for (const [gsmPath, wavPath] of [
      [`${g}/2026/../a.gsm`, `${w}/a.wav`],
      [`${g}/.hidden/a.gsm`, `${w}/a.wav`],
      [`${g}/a.gsm`, `${w}/2026/./a.wav`],
      [`${g}/a.gsm`, `${w}/-p/a.wav`],
      [`${g}/a.gsm`, `${DIALPLAN_ROOT}/other/a.wav`],
    ] as const) {
      const outcome = await originate('convert', gsmPath, wavPath);
      assert.equal(
        outcome.kind === 'conversion-failed' && outcome.invalidPath,
        true,
        `${gsmPath} → ${wavPath}: ${JSON.stringify(outcome)}`,
      );
    }
    assert.equal(real.decoderCalls().length, before, 'no conversion step ran');
    assert.equal(existsSync(`${w}`), false, 'no directory was created');
  });

  it('ping reports the roots of [globals]', async () => {
    const seen: AmiMessage[] = [];
    const outcome = await originate('ping', 'ping', 'ping', (m) => {
      if (getHeader(m, 'UserEvent') === 'AudioConvert') seen.push(m);
    });
    assert.equal(outcome.kind, 'converted');
    assert.equal(getHeader(seen[0]!, 'GsmRoot'), `${DIALPLAN_ROOT}/gsm`);
    assert.equal(getHeader(seen[0]!, 'WavRoot'), `${DIALPLAN_ROOT}/wav`);
  });
});
