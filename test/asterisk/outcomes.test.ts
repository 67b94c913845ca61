/**
 * Each outcome of the shipped dialplan, on a real Asterisk, through the real bridge and RabbitMQ:
 * jobs go in the input queue and come out as result messages, as a user would see them.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { once } from 'node:events';
import { AmiClient, CLIENT_EVENTS } from '../../src/ami/client.js';
import { ORIGINATOR_EVENTS, Originator } from '../../src/worker/originate.js';
import { getHeader, type AmiMessage } from '../../src/ami/protocol.js';
import { runDoctor } from '../../src/tools/doctor.js';
import { AMQP_URL, job, makeDataRoot, onServiceEvent } from '../helpers/stack.js';
import { readWav } from '../helpers/wav.js';
import { httpStatus, realAsterisk, runData, type RealAsterisk, type Result } from './setup.js';

let real: RealAsterisk;
before(async () => {
  real = await realAsterisk();
});
after(() => real?.close());

describe('the shipped dialplan on a real Asterisk', () => {
  it('converted: a valid 8 kHz 16-bit mono PCM WAV, renamed into place, no temp file left', async () => {
    const stack = await real.stack();
    await stack.startService();
    const gsm = stack.data.gsm('ok', 3);
    await stack.publish({ job_id: 'ok', gsm_path: gsm, wav_path: stack.data.wav('ok') });
    await stack.results.onCount(1);

    const [result] = stack.results.bodies<Result>();
    assert.equal(result?.status, 'converted', JSON.stringify(result));
    assert.ok(
      real.decoderCalls().some((c) => c.includes(gsm)),
      'the dialplan ran the conversion step',
    );
    const wav = readWav(stack.data.wav('ok'));
    assert.deepEqual([wav.format, wav.channels, wav.sampleRate, wav.bitsPerSample], [1, 1, 8000, 16]);
    assert.ok(Math.abs(wav.seconds - 3) < 0.05, `${wav.seconds} s`);
    assert.equal(result?.wav_bytes, wav.dataBytes + 44, 'wav_bytes is the size Asterisk reported (STAT)');
    const base = path.basename(stack.data.wav('ok'));
    assert.deepEqual(
      readdirSync(stack.data.wavDir).filter((f) => f.startsWith(`${base}.tmp-`)),
      [],
    );
    assert.equal(stack.dead.messages.length, 0);
  });

  it('input missing: INPUT_MISSING, dead-lettered, nothing converted', async () => {
    const stack = await real.stack();
    await stack.startService();
    const gone = job(stack, 'gone', false);
    await stack.publish(gone);
    await stack.dead.onCount(1);
    await stack.results.onCount(1);
    const [result] = stack.results.bodies<Result>();
    assert.equal(result?.error?.code, 'INPUT_MISSING', JSON.stringify(result));
    assert.equal(result?.attempts, 1, 'a permanent failure: not retried');
    assert.equal(existsSync(stack.data.wav('gone')), false);
    assert.ok(!real.decoderCalls().some((c) => c.includes(gone.gsm_path)), 'the decoder never ran for it');
  });

  it('invalid path: the dialplan refuses a path the bridge allows, and executes nothing', async () => {
    // A second allowed root the dialplan does not know: the bridge sends the job, the dialplan's
    // REGEX (priority 5) refuses it before any step runs.
    const other = makeDataRoot();
    after(() => other.remove());
    const stack = await real.stack({ worker: { AllowedRoots: `/var/local/auditorai, ${other.root}` } });
    await stack.startService();
    const gsm = other.gsm(`elsewhere-${randomUUID().slice(0, 8)}`);
    const before = real.decoderCalls().length;
    await stack.publish({ job_id: 'elsewhere', gsm_path: gsm, wav_path: other.wav('elsewhere') });
    await stack.results.onCount(1);
    const [result] = stack.results.bodies<Result>();
    assert.equal(result?.error?.code, 'PATH_NOT_ALLOWED', JSON.stringify(result));
    assert.match(result?.error?.message ?? '', /invalid-path/);
    assert.deepEqual(real.decoderCalls().slice(before), [], 'no conversion step ran');
    assert.equal(existsSync(other.wav('elsewhere')), false);
  });

  it("the shipped event filter: the bridge's user receives only the events it follows", async () => {
    const { host, port, user, secret } = real.asterisk;
    const client = new AmiClient({ host, port, username: user, secret });
    const seen = new Set<string>();
    const hangups: string[] = [];
    client.on('event', (m) => {
      const name = getHeader(m, 'Event') ?? '?';
      seen.add(name);
      if (name === 'Hangup') hangups.push(getHeader(m, 'Channel') ?? '?');
    });
    client.start();
    await once(client, 'connected');
    try {
      const data = runData();
      const gsm = data.gsm('f', 1);
      const channelId = randomUUID();
      const hungUp = new Promise<void>((resolve) =>
        client.on('event', (m) => {
          if (getHeader(m, 'Event') === 'Hangup' && getHeader(m, 'Uniqueid') === channelId) resolve();
        }),
      );
      const response = await client.action([
        ['Action', 'Originate'],
        ['Channel', 'Local/s@audio-convert-hold'],
        ['Context', 'audio-convert'],
        ['Exten', 'convert'],
        ['Priority', '1'],
        ['ChannelId', channelId],
        ['Variable', `JOB_ID=${channelId}`],
        ['Variable', `GSM_PATH=${gsm}`],
        ['Variable', `WAV_PATH=${data.wav('f')}`],
        ['Async', 'true'],
      ]);
      assert.equal(getHeader(response, 'Response'), 'Success');
      await hungUp;
      assert.ok(existsSync(data.wav('f')), 'the job converted');
      for (const name of ['UserEvent', 'Hangup']) assert.ok(seen.has(name), `${name} arrives`);
      assert.equal(seen.has('OriginateResponse'), false, 'a call that started sends no OriginateResponse (only a Failure passes)');
      const allowed = new Set([...ORIGINATOR_EVENTS, ...CLIENT_EVENTS]);
      assert.deepEqual(
        [...seen].filter((e) => !allowed.has(e)),
        [],
        'no Newchannel, Newstate, DialBegin …: Asterisk filtered them out',
      );
      assert.ok(hangups.length > 0 && hangups.every((c) => c.endsWith(';1')), `only the ;1 half hangs up here: ${hangups.join(', ')}`);
      data.remove();
    } finally {
      await client.close();
    }
  });

  it('the shipped event filter lets a call that cannot start report it: OriginateResponse Failure', async () => {
    const { host, port, user, secret } = real.asterisk;
    const client = new AmiClient({ host, port, username: user, secret, pingIntervalMs: 0 });
    const response = new Promise<AmiMessage>((resolve) =>
      client.on('event', (m) => {
        if (getHeader(m, 'Event') === 'OriginateResponse') resolve(m);
      }),
    );
    const connected = once(client, 'connected');
    client.start();
    await connected;
    // A hold context that does not exist: Asterisk queues the Originate, then cannot start the call.
    const originator = new Originator(client, {
      channel: 'Local/s@audio-convert-no-such-hold',
      context: 'audio-convert',
      exten: 'convert',
    });
    try {
      const data = runData();
      const outcome = await originator.run({ gsmPath: data.gsm('nostart', 1), wavPath: data.wav('nostart'), timeoutMs: 20_000 });
      // Asterisk sends the ;1 Hangup first, then the OriginateResponse: either ends the attempt as a failure.
      assert.ok(outcome.kind === 'hangup-without-result' || outcome.kind === 'start-failed', JSON.stringify(outcome));
      const failure = await response;
      assert.deepEqual([getHeader(failure, 'Response'), getHeader(failure, 'Channel')], ['Failure', 'Local/s@audio-convert-no-such-hold']);
      assert.equal(existsSync(data.wav('nostart')), false);
      data.remove();
    } finally {
      originator.dispose();
      await client.close();
    }
  });

  it('unknown extension: a deployment error stops consuming and keeps the jobs; `dialplan reload` restores it', async () => {
    const stack = await real.stack();
    after(() => real.asterisk.cli('dialplan reload'));
    const service = await stack.startService();
    await onServiceEvent(stack, 'consuming', true);
    assert.equal(await httpStatus(service.httpPort, '/readyz'), 200);

    await real.asterisk.cli('dialplan remove extension convert@audio-convert');
    const stopped = onServiceEvent(stack, 'consuming', false);
    for (let i = 0; i < 3; i++) await stack.publish(job(stack, `m${i}`));
    await stopped;
    assert.equal(await httpStatus(service.httpPort, '/readyz'), 503);
    assert.match(service.readiness().checks['dialplan']?.detail ?? '', /Extension does not exist/);
    assert.equal(stack.results.messages.length + stack.dead.messages.length, 0, 'nothing failed or dead-lettered');
    assert.equal(await stack.queueDepth(), 3, 'every job kept in the queue');

    const resumed = onServiceEvent(stack, 'consuming', true);
    await real.asterisk.cli('dialplan reload');
    await resumed;
    await stack.results.onCount(3);
    assert.ok(
      stack.results.bodies<Result>().every((r) => r.status === 'converted'),
      JSON.stringify(stack.results.bodies()),
    );
    assert.equal(await httpStatus(service.httpPort, '/readyz'), 200);
  });

  it('`audio-convert doctor` against it: every check passes (login, ping through the dialplan, extension present)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ac-doctor-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const queue = `test-${randomUUID()}`;
    const file = path.join(dir, 'transcoding.conf');
    const { host, port, user, secret } = real.asterisk;
    writeFileSync(
      file,
      `[RabbitMQ]\nUrl = ${AMQP_URL}\nQueueName = ${queue}\nDeadLetterQueue = ${queue}.dead\nResultsExchange = ${queue}.results\n` +
        `[AsteriskAMI]\nAddr = ${host}\nPort = ${port}\nUser = ${user}\nSecret = ${secret}\n`,
      { mode: 0o600 },
    );
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const code = await runDoctor(file, {}, out);
    assert.equal(code, 0, text);
    assert.match(text, /^OK {3}AMI login as 'auditorai'$/m);
    assert.match(text, /^OK {3}dialplan answers \(Local\/s@audio-convert-hold → ping@audio-convert\): pong$/m);
    assert.match(text, /^OK {3}conversion extension convert@audio-convert present/m);
    assert.doesNotMatch(text, /^FAIL/m);
  });
});
