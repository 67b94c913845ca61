/**
 * The AMI emulator's behaviour beyond single recordings: MD5 login, permissions, who gets events,
 * the test controls (reorder, silence, drops, missing contexts, overrides), throughput in instant
 * mode, and that config/asterisk/extensions.conf and the emulator describe the same dialplan.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { getHeader, type AmiMessage } from '../../src/ami/protocol.js';
import { soxArgs } from '../../src/emulator/convert.js';
import {
  convertAppResult,
  findLabel,
  parseVariableHeader,
  pathRules,
  PRIORITY,
  userEventBody,
  WAV_DIR_MODE,
  wavDirOf,
} from '../../src/emulator/dialplan.js';
import { DIALPLAN_PATH_TAIL, DIALPLAN_ROOT_PATTERN } from '../../src/characters.js';
import { AsteriskEmulator, type EmulatorOptions, type ReorderMode } from '../../src/emulator/server.js';
import { detail, ev, isEnd, jobEnd, names, RawAmi } from './emulator-client.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'audio-convert-emuc-'));
mkdirSync(path.join(root, 'gsm'));
mkdirSync(path.join(root, 'wav'));
writeFileSync(path.join(root, 'gsm', 'in.gsm'), Buffer.alloc(330));
after(() => rmSync(root, { recursive: true, force: true }));

async function setup(opts: EmulatorOptions = {}): Promise<{ emu: AsteriskEmulator; connect: () => Promise<RawAmi> }> {
  const emu = await AsteriskEmulator.start({
    root,
    mode: 'instant',
    users: { auditorai: 'test-secret', reporter: { secret: 'r', write: ['originate', 'reporting'] } },
    ...opts,
  });
  after(() => emu.close());
  const connect = async (): Promise<RawAmi> => {
    const c = await RawAmi.connect(emu.port);
    after(() => c.close());
    return c;
  };
  return { emu, connect };
}

let seq = 0;
/** Sends one job; returns its ChannelId. */
function originate(c: RawAmi, extra: { exten?: string; job?: string; gsm?: string; channelId?: string } = {}): string {
  const id = extra.channelId ?? `job-${++seq}-0000`;
  c.action([
    ['Action', 'Originate'],
    ['Channel', 'Local/s@audio-convert-hold'],
    ['Context', 'audio-convert'],
    ['Exten', extra.exten ?? 'convert'],
    ['Priority', '1'],
    ['ChannelId', id],
    ['Variable', `JOB_ID=${extra.job ?? id}`],
    ['Variable', `GSM_PATH=${extra.gsm ?? `${root}/gsm/in.gsm`}`],
    ['Variable', `WAV_PATH=${root}/wav/out.wav`],
    ['Async', 'true'],
    ['ActionID', `a-${id}`],
  ]);
  return id;
}
describe('AMI emulator: sessions', () => {
  test('loopback only, unless allowNonLoopback', async () => {
    await assert.rejects(AsteriskEmulator.start({ host: '0.0.0.0' }), /non-loopback/);
  });

  test('MD5 challenge login; a wrong key is refused', async () => {
    const { connect } = await setup({ loginFailDelayMs: 10 });
    const c = await connect();
    c.action({ Action: 'Challenge', AuthType: 'MD5', ActionID: 'ch' });
    const challenge = getHeader(await c.next(), 'Challenge') ?? '';
    assert.match(challenge, /^\d{9}$/);
    const key = createHash('md5')
      .update(challenge + 'test-secret')
      .digest('hex');
    c.action({ Action: 'Login', AuthType: 'MD5', Username: 'auditorai', Key: key, ActionID: 'l' });
    assert.equal(getHeader(await c.next(), 'Message'), 'Authentication accepted');
    const bad = await connect();
    bad.action({ Action: 'Challenge', AuthType: 'MD5', ActionID: 'ch' });
    await bad.next();
    bad.action({ Action: 'Login', AuthType: 'MD5', Username: 'auditorai', Key: key, ActionID: 'l' });
    assert.equal(getHeader(await bad.next(), 'Message'), 'Authentication failed');
    await bad.onClose();
  });

  test('write = originate only: Command is denied; unknown actions and Action-less messages as Asterisk answers them', async () => {
    const { emu, connect } = await setup();
    const c = await connect();
    await c.login();
    c.action({ Action: 'Command', Command: 'core show version', ActionID: 'cmd' });
    assert.equal(getHeader(await c.next((m) => getHeader(m, 'ActionID') === 'cmd'), 'Message'), 'Permission denied');
    c.action({ Action: 'NoSuchThing', ActionID: 'x' });
    assert.equal(
      getHeader(await c.next((m) => getHeader(m, 'ActionID') === 'x'), 'Message'),
      'Invalid/unknown command: NoSuchThing. Use Action: ListCommands to show available commands.',
    );
    c.action({ Async: 'true', ActionID: 'no-action' });
    c.action({ Action: 'Ping', ActionID: 'p' });
    assert.equal(
      getHeader(await c.next((m) => getHeader(m, 'Response') !== undefined), 'ActionID'),
      'p',
      'no answer to a message without Action',
    );
    c.action({ Action: 'CoreShowChannels', ActionID: 'csc' });
    assert.equal(getHeader(await c.next(), 'Message'), 'Permission denied');
    assert.deepEqual(emu.stats.unexpectedActions, ['Command', 'NoSuchThing', '<none>']);
  });

  test('refuseLogins: valid credentials get "Authentication failed", then the close', async () => {
    const { emu, connect } = await setup({ loginFailDelayMs: 20 });
    emu.refuseLogins(true);
    const c = await connect();
    assert.equal(getHeader(await c.login(), 'Message'), 'Authentication failed');
    await c.onClose();
    emu.refuseLogins(false);
    assert.equal(getHeader(await (await connect()).login(), 'Message'), 'Authentication accepted');
  });

  test('events go only to sessions logged in with Events on, at the time', async () => {
    const { emu, connect } = await setup();
    const [anon, quiet, loud] = await Promise.all([connect(), connect(), connect()]);
    await quiet.login('auditorai', 'test-secret', 'off');
    await loud.login();
    const id = originate(loud);
    const job = await jobEnd(loud, id);
    assert.equal(job.filter((m) => getHeader(m, 'Event') !== undefined).length, 15); // FullyBooted + 14
    for (const c of [anon, quiet]) {
      c.action({ Action: 'Ping', ActionID: 'p' });
      const seen = await c.upTo((m) => getHeader(m, 'ActionID') === 'p');
      assert.deepEqual(
        seen.filter((m) => getHeader(m, 'Event') !== undefined),
        [],
      );
    }
    assert.equal(emu.stats.originates, 1);
  });

  test('CoreShowChannels for a user with reporting lists both halves of a live job', async () => {
    const { emu, connect } = await setup();
    emu.hangConversions(true);
    const c = await connect();
    await c.login('reporter', 'r');
    const id = originate(c);
    await c.next((m) => ev(m) === 'OriginateResponse');
    c.action({ Action: 'CoreShowChannels', ActionID: 'csc' });
    const list = await c.upTo((m) => ev(m) === 'CoreShowChannelsComplete');
    const items = list.filter((m) => ev(m) === 'CoreShowChannel').map((m) => getHeader(m, 'Uniqueid'));
    assert.deepEqual(items.sort(), [id, `${id};2`]);
  });
});

describe('AMI emulator: controls', () => {
  const orderOf = (ms: readonly AmiMessage[]): string[] =>
    ms
      .filter((m) => getHeader(m, 'Event') !== undefined)
      .map((m) => `${ev(m)}${getHeader(m, 'Uniqueid')?.endsWith(';2') === true ? ';2' : ''}`);

  test('each reorder mode reorders as recorded', async () => {
    const { emu, connect } = await setup();
    const c = await connect();
    await c.login();
    await c.next((m) => ev(m) === 'FullyBooted');
    const run = async (mode: ReorderMode): Promise<string[]> => {
      emu.setReorder(mode);
      return orderOf(await jobEnd(c, originate(c)));
    };
    const none = await run('none');
    assert.deepEqual(none, [
      'Newchannel',
      'Newchannel;2',
      'LocalBridge',
      'DialBegin',
      'Newstate;2',
      'Newstate',
      'DialEnd',
      'OriginateResponse',
      'UserEvent',
      'SoftHangupRequest',
      'HangupRequest;2',
      'Hangup',
      'SoftHangupRequest;2',
      'Hangup;2',
    ]);
    assert.equal((await run('originateresponse-first'))[0], 'OriginateResponse');
    const ue = await run('userevent-first');
    assert.ok(ue.indexOf('UserEvent') < ue.indexOf('OriginateResponse'));
    const h2 = await run('hangup2-first');
    assert.ok(h2.indexOf('Hangup;2') < h2.indexOf('Hangup'));
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) seen.add((await run('random')).join());
    assert.ok(seen.size >= 3, `random gave ${seen.size} orders`);
  });

  test('ping exten, invalid JOB_ID, sox missing (APPERROR: the step never printed OK), outcome override', async () => {
    const { emu, connect } = await setup({ mode: 'real', soxPath: '/nonexistent/sox' });
    const c = await connect();
    await c.login();
    assert.equal(detail(await jobEnd(c, originate(c, { exten: 'ping' }))), 'pong');
    assert.equal(detail(await jobEnd(c, originate(c, { job: 'bad job;id' }))), 'invalid-job-id');
    const failed = await jobEnd(c, originate(c));
    assert.equal(detail(failed), 'APPERROR');
    assert.deepEqual(
      readdirSync(path.join(root, 'wav')).filter((f) => f.includes('.tmp-')),
      [],
      'no temp file left',
    );
    emu.setOutcomeOverride(() => 'input-missing');
    assert.equal(detail(await jobEnd(c, originate(c))), 'input-missing');
  });

  test('goSilent: Ping unanswered; answers resume after', async () => {
    const { emu, connect } = await setup();
    const c = await connect();
    await c.login();
    emu.goSilent(true);
    c.action({ Action: 'Ping', ActionID: 'p1' });
    await assert.rejects(
      c.next((m) => getHeader(m, 'ActionID') === 'p1', 300),
      /timed out/,
    );
    emu.goSilent(false);
    c.action({ Action: 'Ping', ActionID: 'p2' });
    assert.equal(getHeader(await c.next((m) => getHeader(m, 'ActionID') === 'p2'), 'Ping'), 'Pong');
  });

  test('dropAfterOriginates: the n-th Originate is answered, then every connection closes', async () => {
    const { emu, connect } = await setup();
    const [c, other] = await Promise.all([connect(), connect()]);
    await c.login();
    emu.dropAfterOriginates(2);
    await jobEnd(c, originate(c));
    const id = originate(c);
    await c.onClose();
    await other.onClose();
    assert.equal(getHeader(c.messages.at(-1)!, 'Message'), 'Originate successfully queued');
    assert.ok(!c.messages.some((m) => getHeader(m, 'Uniqueid') === id), 'none of its events');
  });

  test('dropConnections: sockets close without Shutdown; Asterisk lives on and later events reach a new session', async () => {
    const { emu, connect } = await setup({ conversionTimeoutMs: 300 });
    emu.hangConversions(true);
    const c = await connect();
    await c.login();
    const id = originate(c);
    await c.next((m) => ev(m) === 'OriginateResponse');
    emu.dropConnections();
    await c.onClose();
    assert.ok(!c.messages.some((m) => ev(m) === 'Shutdown'));
    const again = await connect();
    await again.login();
    assert.equal(detail(await jobEnd(again, id)), 'APPERROR');
  });

  test('setDialplan: missing convert context → "Extension does not exist."; missing hold context → queued, then Failure', async () => {
    const { emu, connect } = await setup();
    const c = await connect();
    await c.login();
    emu.setDialplan({ convertContextPresent: false });
    originate(c);
    assert.equal(getHeader(await c.next((m) => getHeader(m, 'Response') !== undefined), 'Message'), 'Extension does not exist.');
    emu.setDialplan({ convertContextPresent: true, holdContextPresent: false });
    const id = originate(c);
    const failed = await c.upTo((m) => isEnd(id)(m));
    assert.deepEqual(names(failed.slice(-5)), ['Newchannel', 'Newchannel', 'Hangup', 'OriginateResponse', 'Hangup']);
  });

  test('a ChannelId that is a case-insensitive prefix of a live one is refused', async () => {
    const { emu, connect } = await setup();
    emu.hangConversions(true);
    const c = await connect();
    await c.login();
    originate(c, { channelId: 'abcdef-1234' });
    await c.next((m) => ev(m) === 'OriginateResponse');
    originate(c, { channelId: 'ABCDEF' });
    assert.equal(getHeader(await c.next((m) => ev(m) === 'OriginateResponse'), 'Response'), 'Failure');
  });

  test('forbidden bytes: CR inside a value and metacharacters in a path are counted', async () => {
    const { emu, connect } = await setup();
    const c = await connect();
    await c.login();
    c.send('Action: Ping\r\nActionID: a\rb\r\n\r\n');
    await c.next((m) => getHeader(m, 'Ping') !== undefined);
    await jobEnd(c, originate(c, { gsm: `${root}/gsm/x.gsm|id` }));
    assert.equal(emu.stats.forbiddenBytes, 2);
  });

  test('instant mode keeps up with thousands of jobs a second', async () => {
    const { emu, connect } = await setup();
    const c = await connect();
    await c.login();
    const n = 3000;
    const started = performance.now();
    let text = '';
    for (let i = 0; i < n; i++)
      text += `Action: Originate\r\nChannel: Local/s@audio-convert-hold\r\nContext: audio-convert\r\nExten: convert\r\nPriority: 1\r\nChannelId: bench-${i}\r\nVariable: JOB_ID=bench-${i}\r\nVariable: GSM_PATH=${root}/gsm/in.gsm\r\nVariable: WAV_PATH=${root}/wav/o.wav\r\nAsync: true\r\nActionID: b${i}\r\n\r\n`;
    const ended = once(emu, 'jobEnd');
    c.send(text);
    await ended;
    await c.next((m) => isEnd(`bench-${n - 1};2`)(m), 20_000);
    const perSecond = n / ((performance.now() - started) / 1000);
    assert.equal(emu.stats.conversionsFinished, n);
    assert.ok(perSecond > 1000, `${Math.round(perSecond)} jobs/s`);
  });
});

describe('the shipped dialplan and the emulator agree', () => {
  const file = readFileSync(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../config/asterisk/extensions.conf'), 'utf8');
  const stepSox = readFileSync(
    path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../config/asterisk/variants/step-sox.conf'),
    'utf8',
  );
  /** context → exten → [priority, application line] from the `exten =>` / `same =>` lines. */
  const plan = new Map<string, [number, string][]>();
  let key = '';
  for (const raw of file.split('\n')) {
    const line = raw.replace(/;.*$/, '').trim();
    const ctx = /^\[(.+)\]$/.exec(line);
    const ext = /^exten => ([^,]+),1,(.*)$/.exec(line);
    const same = /^same => n(?:\([a-z]+\))?,(.*)$/.exec(line);
    if (ctx !== null) key = ctx[1]!;
    else if (ext !== null) plan.set((key = `${key.split('/')[0]}/${ext[1]}`), [[1, ext[2]!]]);
    else if (same !== null) plan.get(key)!.push([plan.get(key)!.length + 1, same[1]!]);
  }
  const priorityOf = (exten: string, needle: string): number => plan.get(exten)!.find(([, app]) => app.includes(needle))![0];

  test('UserEvent priorities, the Hangup after each, the hold and h extensions', () => {
    assert.equal(priorityOf('audio-convert/convert', 'Detail: invalid-job-id'), PRIORITY.invalidJobId);
    assert.equal(priorityOf('audio-convert/convert', 'Detail: invalid-path'), PRIORITY.invalidPath);
    assert.equal(priorityOf('audio-convert/convert', 'Detail: input-missing'), PRIORITY.inputMissing);
    assert.equal(priorityOf('audio-convert/convert', 'Detail: ${STEP_STATUS}'), PRIORITY.result);
    assert.equal(priorityOf('audio-convert/ping', 'Detail: pong'), PRIORITY.ping);
    for (const p of [PRIORITY.invalidJobId, PRIORITY.invalidPath, PRIORITY.inputMissing, PRIORITY.result]) {
      assert.equal(plan.get('audio-convert/convert')![p]![1], 'Hangup()');
    }
    assert.deepEqual(
      plan.get('audio-convert-hold/s')!.map(([, app]) => app.split('(')[0]),
      ['Answer', 'Wait', 'Hangup'],
    );
    assert.equal(plan.get('audio-convert/h')!.length, 1);
  });

  test('the path REGEXes, the decoder command lines and the temp name', () => {
    const rules = pathRules('/var/local/auditorai');
    assert.ok(file.includes(`\nAUDIOCONVERT_GSM_ROOT=${rules.roots.gsm}\n`));
    assert.ok(file.includes(`\nAUDIOCONVERT_WAV_ROOT=${rules.roots.wav}\n`));
    assert.ok(file.includes(`REGEX("^\${AUDIOCONVERT_GSM_ROOT}${DIALPLAN_PATH_TAIL.gsm}" \${GSM_PATH})`));
    assert.ok(file.includes(`REGEX("^\${AUDIOCONVERT_WAV_ROOT}${DIALPLAN_PATH_TAIL.wav}" \${WAV_PATH})`));
    for (const root of ['GSM', 'WAV']) assert.ok(file.includes(`REGEX("${DIALPLAN_ROOT_PATTERN}" \${AUDIOCONVERT_${root}_ROOT})`));
    // The shipped perl step: untoast from the GSM (stdin) into the temp file, renamed onto the target only
    // with the whole output; the paths as perl's arguments.
    assert.ok(file.includes(`exec "untoast", "-l") || exit 127\\;`));
    assert.ok(file.includes(`-s $tmp == 44 + $n && rename($tmp, $wav) && print "OK\\n"' -- \${GSM_PATH} \${TMP_PATH} \${WAV_PATH})})`));
    // The emulator converts with sox, as the step-sox variant does (the same WAV bytes: test/asterisk/step-guarantees).
    const perlList = ['sox', ...soxArgs('$gsm', '$tmp')].map((a) => (a.startsWith('$') ? a : `"${a}"`)).join(', ');
    assert.ok(stepSox.includes(`exec ${perlList} or exit 127\\;`));
    assert.ok(file.includes('Set(TMP_PATH=${WAV_PATH}.tmp-${JOB_ID}.wav)'));
  });

  test('the output directory: priority 8 jumps to 18, mkdir only when STAT(d) says it is missing, back to run', () => {
    const convert = plan.get('audio-convert/convert')!;
    assert.equal(findLabel({ convertContextPresent: true, holdContextPresent: true }, 'audio-convert', 'convert', 'outdir'), 18);
    assert.equal(convert.length, 30);
    assert.equal(
      convert[7]![1],
      'GotoIf($[${STAT(e,${GSM_PATH})} & (${LEN(${GSM_PATH2})} = 0 | ${STAT(e,${GSM_PATH2})})]?${IF(${IFMODULE(app_convert.so)}?app:outdir)})',
    );
    assert.equal(convert[17]![1], 'Set(WAV_DIR=${CUT(WAV_PATH,/,1-$[${FIELDQTY(WAV_PATH,/)} - 1])})');
    assert.equal(convert[18]![1], 'GotoIf(${STAT(d,${WAV_DIR})}?${IF($[${LEN(${GSM_PATH2})} = 0]?run:legs)})');
    assert.equal(convert[19]![1], `TrySystem(mkdir -p -m ${WAV_DIR_MODE.toString(8)} \${WAV_DIR})`);
    assert.equal(convert[20]![1], 'Goto(${IF($[${LEN(${GSM_PATH2})} = 0]?run:legs)})');
    assert.equal(wavDirOf('/var/local/auditorai/wav/2026/12/02/a.wav'), '/var/local/auditorai/wav/2026/12/02');
    assert.ok(
      plan
        .get('audio-convert/ping')![0]![1]
        .endsWith(
          'GsmRoot: ${AUDIOCONVERT_GSM_ROOT},WavRoot: ${AUDIOCONVERT_WAV_ROOT},Step: ${IF(${IFMODULE(app_convert.so)}?Convert:perl)})',
        ),
    );
  });

  test('Convert(): priority 8 jumps to 22 when app_convert is loaded; its UserEvent (23) is the one the emulator sends', () => {
    const convert = plan.get('audio-convert/convert')!;
    assert.equal(findLabel({ convertContextPresent: true, holdContextPresent: true }, 'audio-convert', 'convert', 'app'), 22);
    assert.equal(convert[21]![1], 'Convert(${GSM_PATH}${IF($[${LEN(${GSM_PATH2})} > 0]?&${GSM_PATH2})},${WAV_PATH},d)');
    assert.equal(PRIORITY.convertAppResult, 23);
    assert.equal(
      convert[22]![1],
      'UserEvent(AudioConvert,JobId: ${JOB_ID},Status: ${IF($["${CONVERT_STATUS}" = "SUCCESS"]?OK:FAILED)},Detail: ${CONVERT_DETAIL},Reason: ${CONVERT_REASON},WavBytes: ${CONVERT_BYTES},InputSha256: ${CONVERT_INPUT_SHA256},WavSha256: ${CONVERT_WAV_SHA256},Audio: ${CONVERT_AUDIO})',
    );
    assert.equal(convert[23]![1], 'Hangup()');
    assert.equal(findLabel({ convertContextPresent: true, holdContextPresent: true }, 'audio-convert', 'convert', 'legs'), 25);
    assert.equal(PRIORITY.legsStep, 26);
    // (the plan reader stops a line at its first `;`, escaped or not: dialplan-doc.test.ts checks the program)
    assert.ok(convert[25]![1].startsWith(`Set(STEP_OUT=\${SHELL(exec perl -e 'opendir D`));
    assert.ok(file.includes(`rename($tmp, $wav) && print "OK\\n"' -- \${TMP_PATH} \${WAV_PATH} \${GSM_PATH} \${GSM_PATH2})})`));
    assert.equal(convert[29]![1], 'Goto(report)');
    const body = userEventBody(
      convertAppResult('j1', { detail: 'input-empty', reason: 'the input holds no whole GSM frame (0 bytes): /x.gsm', bytes: 0 }),
    );
    assert.equal(
      body,
      'UserEvent: AudioConvert\r\nJobId: j1\r\nStatus: FAILED\r\nDetail: input-empty\r\nReason: the input holds no whole GSM frame (0 bytes): /x.gsm\r\nWavBytes: 0\r\n' +
        'InputSha256: \r\nWavSha256: \r\nAudio: \r\n',
    );
  });

  test('Variable: headers are split as Asterisk does (hdr-variable-values.txt)', () => {
    const vars = new Map<string, string>();
    for (const v of ['A=/x/one.gsm,B=/x/two.wav', 'C="/x/a,b.gsm"', 'D=/x/a\\,b.gsm', 'E=/x/it"s.gsm', 'F=/x/a=b c.gsm'])
      parseVariableHeader(v, vars);
    assert.deepEqual(Object.fromEntries(vars), {
      A: '/x/one.gsm',
      B: '/x/two.wav',
      C: '/x/a,b.gsm',
      D: '/x/a,b.gsm',
      E: '/x/its.gsm',
      F: '/x/a=b c.gsm',
    });
  });
});
