/**
 * Hostile input through the REAL service: real RabbitMQ, the AMI emulator over TCP, the service
 * in-process. One stack takes a barrage of malformed and hostile messages — every kind the unit
 * tests (test/unit/hostile-input.test.ts, paths.test.ts) prove parseJob and checkRealPaths refuse —
 * and this file proves what the service then DOES with them: each ends dead-lettered with a
 * readable reason (DLQ headers and body) and one `failed` result, nothing forbidden reaches AMI
 * (the emulator counts forbidden bytes and unexpected actions, and we read every action it got),
 * and the service keeps converting afterwards. Recorded proof of each attack:
 * test/fixtures/ami-transcripts/{hdr-crlf-injection,hdr-variable-values,shell-injection-path,hdr-line-too-long}.txt.
 *
 * Each case is published with correlation_id `case-N`: results and dead letters carry it back,
 * so every case is matched to its own outcome whatever the order.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Connection, type AsyncMessage, type Publisher } from 'rabbitmq-client';
import { getHeader, getHeaders } from '../../src/ami/protocol.js';
import { ATTEMPTS_HEADER } from '../../src/queue/broker.js';
import { AMQP_URL, makeStack, type Stack } from '../helpers/stack.js';

type Code = 'INVALID_MESSAGE' | 'PATH_NOT_ALLOWED' | 'INPUT_MISSING';

interface Case {
  readonly name: string;
  /** Sent as is: a Buffer keeps `contentType` from props; an object is sent as application/json. */
  readonly body: unknown;
  readonly props?: Record<string, unknown>;
  readonly code: Code;
  /** What the reason must say. */
  readonly says: RegExp;
  /** The `job_id` the failed result must carry (else: any valid id). */
  readonly jobId?: string;
  /** True when the message is valid and so legitimately reaches Asterisk (input missing). */
  readonly reachesAmi?: boolean;
}

interface Result {
  job_id: string;
  status: string;
  gsm_path?: string;
  wav_path?: string;
  attempts: number;
  error?: { code: string; message: string };
}

interface DeadBody {
  job_id: string;
  error: { code: string; reason: string };
  attempts: number;
  original_queue: string;
  message_id?: string;
  body_encoding: 'utf8' | 'base64';
  original_body: string;
  original_body_bytes: number;
  original_body_truncated: boolean;
}

const JOB_ID_RULE = /^[A-Za-z0-9._:-]{1,128}$/;
const PRINTABLE = /^[\x20-\x7e]+$/;
/** What a Variable value sent to Asterisk may contain (NAME=value). */
const VARIABLE_VALUE = /^[A-Za-z0-9._/=-]+$/;
const TEST = { timeout: 40_000 };

let stack: Stack;
let outside: string;
/** Our own producer: a 128 KiB frame_max (rabbitmq-client's default, 8 KiB, cannot carry the big headers). */
let producer: Connection;
let publisher: Publisher;

before(async () => {
  stack = await makeStack({ config: { worker: { Concurrency: '8' } } });
  outside = mkdtempSync(path.join(tmpdir(), 'ac-outside-'));
  makeSymlinks(stack.data.root, outside);
  producer = new Connection({ url: AMQP_URL, frameMax: 131_072 });
  producer.on('error', () => undefined);
  publisher = producer.createPublisher({ confirm: true });
  await stack.startService();
});

after(async () => {
  await publisher?.close();
  await producer?.close();
  await stack?.close();
  if (outside !== undefined) rmSync(outside, { recursive: true, force: true });
});

/** Publishes to the service's input queue; a Buffer keeps the content type given in props (or none). */
async function publish(body: unknown, props: Record<string, unknown>): Promise<void> {
  await publisher.send({ routingKey: stack.config.rabbitmq.queueName, durable: true, ...props }, body);
}

/** Real symlinks in the temp root leading out of it (and one loop, one dangling). */
function makeSymlinks(root: string, out: string): void {
  mkdirSync(path.join(out, 'wav'));
  writeFileSync(path.join(out, 'secret.gsm'), 'not yours');
  writeFileSync(path.join(out, 'target.wav'), 'overwrite me');
  symlinkSync('/etc/passwd', path.join(root, 'gsm', 'passwd.gsm'));
  symlinkSync(path.join(out, 'secret.gsm'), path.join(root, 'gsm', 'out.gsm'));
  symlinkSync(path.join(out, 'nothing-yet.gsm'), path.join(root, 'gsm', 'dangling.gsm'));
  symlinkSync(path.join(root, 'gsm', 'loop.gsm'), path.join(root, 'gsm', 'loop.gsm'));
  symlinkSync(path.join(out, 'target.wav'), path.join(root, 'wav', 'link.wav'));
  symlinkSync(path.join(out, 'wav'), path.join(root, 'wav', 'escape'));
  symlinkSync(out, path.join(root, 'gsm', 'escape'));
}

/** Every hostile case; paths are built in the stack's temp root so only the hostile part differs. */
function cases(): Case[] {
  const { root, gsmDir, wavDir } = stack.data;
  const gsm = stack.data.gsm('hostile-template');
  const wav = path.join(wavDir, 'out.wav');
  const ok = { gsm_path: gsm, wav_path: wav };
  const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
  const list: Case[] = [];
  const add = (c: Case): number => list.push(c);

  // ---- not a job-shaped JSON object ----
  add({ name: 'not JSON', body: Buffer.from('convert /etc/passwd please'), code: 'INVALID_MESSAGE', says: /^body is not valid JSON/ });
  add({ name: 'truncated JSON', body: Buffer.from(`{"gsm_path":"${gsm}"`), code: 'INVALID_MESSAGE', says: /^body is not valid JSON/ });
  add({ name: 'empty body', body: Buffer.alloc(0), code: 'INVALID_MESSAGE', says: /^body is empty/ });
  add({ name: 'JSON array', body: json([ok]), code: 'INVALID_MESSAGE', says: /^body must be a JSON object, got array$/ });
  add({ name: 'JSON string', body: json(gsm), code: 'INVALID_MESSAGE', says: /got string$/ });
  add({ name: 'JSON number', body: Buffer.from('42'), code: 'INVALID_MESSAGE', says: /got number$/ });
  add({ name: 'JSON null', body: Buffer.from('null'), code: 'INVALID_MESSAGE', says: /got null$/ });
  add({ name: 'empty object', body: json({}), code: 'INVALID_MESSAGE', says: /^gsm_path is required/ });
  add({ name: 'gsm_path missing', body: json({ wav_path: wav }), code: 'INVALID_MESSAGE', says: /^gsm_path is required/ });
  add({ name: 'wav_path missing', body: json({ gsm_path: gsm }), code: 'INVALID_MESSAGE', says: /^wav_path is required/ });
  add({
    name: 'gsm_path a number',
    body: json({ ...ok, gsm_path: 7 }),
    code: 'INVALID_MESSAGE',
    says: /^gsm_path must be a string, got number$/,
  });
  add({
    name: 'wav_path null',
    body: json({ ...ok, wav_path: null }),
    code: 'INVALID_MESSAGE',
    says: /^wav_path must be a string, got null$/,
  });
  add({ name: 'gsm_path an array', body: json({ ...ok, gsm_path: [gsm] }), code: 'INVALID_MESSAGE', says: /got array$/ });
  add({ name: 'wav_path an object', body: json({ ...ok, wav_path: { path: wav } }), code: 'INVALID_MESSAGE', says: /got object$/ });
  add({
    name: '__proto__ carrying the fields',
    body: Buffer.from(`{"__proto__":${JSON.stringify(ok)}}`),
    code: 'INVALID_MESSAGE',
    says: /^gsm_path is required/,
  });
  add({
    name: 'fields in upper case',
    body: json({ GSM_PATH: gsm, WAV_PATH: wav }),
    code: 'INVALID_MESSAGE',
    says: /^gsm_path is required/,
  });

  // ---- size, nesting, encoding ----
  add({
    name: '64 KiB + 1 byte',
    body: Buffer.alloc(64 * 1024 + 1, 0x20),
    code: 'INVALID_MESSAGE',
    says: /^body is 65537 bytes; the limit is 65536/,
  });
  add({
    name: '5 MB JSON (no content type)',
    body: json({ ...ok, pad: 'x'.repeat(5_000_000) }),
    code: 'INVALID_MESSAGE',
    says: /^body is \d{7} bytes; the limit is 65536/,
  });
  add({
    name: '5 MB JSON as application/json',
    body: json({ ...ok, pad: 'x'.repeat(5_000_000) }),
    props: { contentType: 'application/json' },
    code: 'INVALID_MESSAGE',
    says: /^body is (larger than the 65536-byte|\d+ bytes)/,
  });
  add({ name: '5 MB of 0xFF bytes', body: Buffer.alloc(5_000_000, 0xff), code: 'INVALID_MESSAGE', says: /^body is 5000000 bytes/ });
  add({
    name: '10,000 nested arrays',
    body: Buffer.from(`${'['.repeat(10_000)}${']'.repeat(10_000)}`),
    code: 'INVALID_MESSAGE',
    says: /^body nests deeper than 32 levels$/,
  });
  // rabbitmq-client parses application/json itself: the service gets a 10,000-level object, which
  // JSON.stringify (the dead-letter record wants the original body back) cannot walk.
  const deep = `{"gsm_path":"${gsm}","a":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`;
  add({
    name: '10,000 nested objects as application/json',
    body: Buffer.from(deep),
    props: { contentType: 'application/json' },
    code: 'INVALID_MESSAGE',
    says: /^body nests deeper than 32 levels$/,
  });
  add({
    name: '10,000 nested arrays as application/json',
    body: Buffer.from(`${'['.repeat(10_000)}${']'.repeat(10_000)}`),
    props: { contentType: 'application/json' },
    code: 'INVALID_MESSAGE',
    says: /^body must be a JSON object, got array$|nests deeper/,
  });
  add({
    name: 'invalid UTF-8 in a path',
    body: Buffer.concat([Buffer.from(`{"gsm_path":"${gsmDir}/a`), Buffer.from([0xff, 0xfe]), Buffer.from(`.gsm","wav_path":"${wav}"}`)]),
    code: 'INVALID_MESSAGE',
    says: /^body is not valid UTF-8$/,
  });
  // The same bytes as text/plain or application/json: rabbitmq-client decodes them lossily (U+FFFD); the path rule still holds.
  for (const contentType of ['text/plain', 'application/json']) {
    add({
      name: `invalid UTF-8 in a path as ${contentType}`,
      body: Buffer.concat([Buffer.from(`{"gsm_path":"${gsmDir}/a`), Buffer.from([0xff]), Buffer.from(`.gsm","wav_path":"${wav}"}`)]),
      props: { contentType },
      code: 'PATH_NOT_ALLOWED',
      says: /^gsm_path contains U\+FFFD\b.* at offset \d+/,
    });
  }
  add({
    name: 'UTF-16 body',
    body: Buffer.from(`\ufeff${JSON.stringify(ok)}`, 'utf16le'),
    code: 'INVALID_MESSAGE',
    says: /^body is not valid UTF-8$/,
  });
  add({
    name: 'byte order mark',
    body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), json(ok)]),
    code: 'INVALID_MESSAGE',
    says: /byte order mark/,
  });

  // ---- injection through the paths (each would reach AMI or the dialplan's shell verbatim) ----
  const inGsm = (name: string): string => `${gsmDir}/${name}`;
  const pathCase = (name: string, field: 'gsm_path' | 'wav_path', value: string, says: RegExp, props?: Record<string, unknown>): void => {
    add({ name, body: json({ ...ok, [field]: value }), code: 'PATH_NOT_ALLOWED', says, ...(props === undefined ? {} : { props }) });
  };
  pathCase(
    'CRLF + Action: Command (hdr-crlf-injection)',
    'wav_path',
    `${wav}\r\nAction: Command\r\nCommand: core show version`,
    /^wav_path contains U\+000D \(carriage return\)/,
  );
  pathCase(
    'CRLF CRLF + Originate Application System',
    'wav_path',
    `${wav}\r\n\r\nAction: Originate\r\nChannel: Local/s@audio-convert-hold\r\nApplication: System\r\nData: touch /tmp/injected`,
    /^wav_path contains U\+000D/,
  );
  pathCase(
    'LF LF + Command',
    'gsm_path',
    `${gsm}\n\nAction: Command\nCommand: core show uptime`,
    /^gsm_path contains U\+000A \(line feed\)/,
  );
  pathCase('bare CR', 'gsm_path', `${gsm}\rAction: Command`, /^gsm_path contains U\+000D/);
  pathCase('NUL', 'gsm_path', `${gsm}\u0000.wav`, /^gsm_path contains U\+0000 \(NUL\)/);
  pathCase('CRLF injection as text/plain', 'gsm_path', `${gsm}\r\nAction: Command`, /^gsm_path contains U\+000D/, {
    contentType: 'text/plain',
  });
  pathCase('CRLF injection as application/json', 'gsm_path', `${gsm}\r\nAction: Command`, /^gsm_path contains U\+000D/, {
    contentType: 'application/json',
  });
  pathCase(
    'comma splitting Variable (hdr-variable-values)',
    'gsm_path',
    `${inGsm('one.gsm')},WAV_PATH=/etc/x.wav`,
    /^gsm_path contains U\+002C ','/,
  );
  pathCase('double quote', 'gsm_path', inGsm('it"s.gsm'), /^gsm_path contains U\+0022/);
  pathCase('single quote', 'gsm_path', inGsm("it's.gsm"), /^gsm_path contains U\+0027/);
  pathCase('backslash', 'wav_path', `${wavDir}/a\\,b.wav`, /^wav_path contains U\+005C \(backslash\)/);
  pathCase(
    'semicolon: shell command (shell-injection-path)',
    'gsm_path',
    `${inGsm('t1.gsm')};touch /tmp/pwned;#`,
    /^gsm_path contains U\+003B ';'/,
  );
  pathCase('$(...) substitution', 'gsm_path', inGsm('$(id).gsm'), /^gsm_path contains U\+0024 '\$'/);
  pathCase('backticks', 'wav_path', `${wavDir}/\`id\`.wav`, /^wav_path contains U\+0060/);
  pathCase('pipe', 'gsm_path', inGsm('a|nc.gsm'), /^gsm_path contains U\+007C/);
  pathCase('ampersand', 'gsm_path', inGsm('a&b.gsm'), /^gsm_path contains U\+0026/);
  pathCase('redirect', 'wav_path', `${wavDir}/a>b.wav`, /^wav_path contains U\+003E/);
  pathCase('${SHELL()} dialplan function', 'gsm_path', '${SHELL(id)}', /^gsm_path contains U\+0024/);
  pathCase('space', 'gsm_path', inGsm('a b.gsm'), /^gsm_path contains U\+0020 \(space\)/);
  pathCase('glob', 'gsm_path', inGsm('*.gsm'), /^gsm_path contains U\+002A/);
  pathCase('fullwidth solidus look-alike', 'gsm_path', `${root}\uff0f..\uff0fetc.gsm`, /^gsm_path contains U\+FF0F/);
  pathCase('division slash look-alike', 'gsm_path', `${gsmDir}\u2215x.gsm`, /^gsm_path contains U\+2215/);
  pathCase('one-dot leaders as ..', 'gsm_path', `${gsmDir}/\u2024\u2024/x.gsm`, /^gsm_path contains U\+2024/);
  pathCase('Cyrillic a', 'gsm_path', inGsm('c\u0430ll.gsm'), /^gsm_path contains U\+0430/);
  pathCase('zero-width space', 'wav_path', `${wavDir}/a\u200b.wav`, /^wav_path contains U\+200B/);
  pathCase('percent-encoded ..', 'gsm_path', `${gsmDir}/%2e%2e/x.gsm`, /^gsm_path contains U\+0025/);

  // ---- where the paths point ----
  pathCase('.. out of the root', 'gsm_path', `${gsmDir}/../../../../etc/passwd.gsm`, /^gsm_path contains a '\.\.' segment/);
  pathCase('.. staying inside', 'wav_path', `${wavDir}/../wav/x.wav`, /^wav_path contains a '\.\.' segment/);
  pathCase('relative path', 'gsm_path', 'gsm/a.gsm', /^gsm_path must be an absolute path/);
  pathCase('double slash', 'gsm_path', `${gsmDir}//a.gsm`, /^gsm_path contains '\/\/'/);
  pathCase('outside the roots', 'gsm_path', '/etc/passwd.gsm', /^gsm_path \/etc\/passwd\.gsm is outside the allowed roots/);
  pathCase('root-prefix trick', 'gsm_path', `${root}-evil/gsm/a.gsm`, /is outside the allowed roots/);
  pathCase('/dev/zero', 'gsm_path', '/dev/zero', /^gsm_path \/dev\/zero is outside the allowed roots/);
  pathCase('wrong extension', 'gsm_path', inGsm('a.wav'), /^gsm_path must end with \.gsm \(case-sensitive\)/);
  pathCase('upper-case extension', 'wav_path', `${wavDir}/a.WAV`, /^wav_path must end with \.wav/);
  pathCase('doubled extension', 'gsm_path', inGsm('a.wav.gsm'), /^gsm_path has a doubled extension/);
  pathCase('leading dash (option injection)', 'gsm_path', inGsm('-rf.gsm'), /^gsm_path has a name starting with '-'/);
  pathCase('hidden file', 'wav_path', `${wavDir}/.x.wav`, /^wav_path has a name starting with '\.'/);
  pathCase(
    'a line over 1024 bytes on AMI (hdr-line-too-long)',
    'gsm_path',
    inGsm(`${'a'.repeat(250)}/${'a'.repeat(250)}/${'a'.repeat(250)}/${'a'.repeat(250)}/${'a'.repeat(100)}.gsm`),
    /^gsm_path is \d{4} bytes long; the limit is 512$/,
  );
  pathCase('a name over 255 bytes', 'gsm_path', inGsm(`${'a'.repeat(300)}.gsm`), /^gsm_path has a name of 304 bytes; the limit is 255$/);
  add({
    name: 'wav_path = gsm_path',
    body: json({ gsm_path: gsm, wav_path: gsm }),
    code: 'PATH_NOT_ALLOWED',
    says: /^wav_path must end with \.wav|must not be the same file/,
  });

  // ---- symlinks made in the temp root (checkRealPaths) ----
  pathCase('symlink to /etc/passwd', 'gsm_path', inGsm('passwd.gsm'), /resolves to a file outside the allowed roots \(a symlink\?\)$/);
  pathCase('symlink to a .gsm outside', 'gsm_path', inGsm('out.gsm'), /resolves to a file outside the allowed roots/);
  pathCase('dangling symlink', 'gsm_path', inGsm('dangling.gsm'), /is a symlink to a file that does not exist$/);
  pathCase('symlink loop', 'gsm_path', inGsm('loop.gsm'), /is a symlink loop$/);
  pathCase(
    'symlinked directory out of the root (input)',
    'gsm_path',
    `${gsmDir}/escape/secret.gsm`,
    /resolves to a file outside the allowed roots/,
  );
  pathCase('wav_path is a symlink out', 'wav_path', `${wavDir}/link.wav`, /is a symlink; the conversion would write through it$/);
  pathCase(
    'wav_path in a symlinked directory out',
    'wav_path',
    `${wavDir}/escape/x.wav`,
    /directory .* resolves outside the allowed roots/,
  );

  // ---- job ids and AMQP properties ----
  const jobIdCase = (name: string, jobId: unknown, says: RegExp, messageId?: string): void => {
    add({
      name,
      body: json({ ...ok, job_id: jobId }),
      code: 'INVALID_MESSAGE',
      says,
      ...(messageId === undefined ? {} : { props: { messageId }, jobId: messageId }),
    });
  };
  jobIdCase('job_id with CRLF (result falls back to message_id)', 'j\r\nAction: Command', /^job_id contains U\+000D/, 'mid-ok-1');
  jobIdCase('job_id of 129 characters', 'a'.repeat(129), /^job_id is 129 characters long; the limit is 128$/, 'mid-ok-2');
  jobIdCase('job_id empty', '', /^job_id must not be empty/);
  jobIdCase('job_id a number', 123, /^job_id must be a string, got number$/);
  jobIdCase('job_id with a slash', '../../x', /^job_id contains U\+002F/);
  jobIdCase('job_id with a look-alike', 'c\u0430ll-1', /^job_id contains U\+0430/);
  jobIdCase('job_id ${SHELL()}', '${SHELL(id)}', /^job_id contains U\+0024/);
  add({
    name: 'message_id with CRLF and a bad path',
    body: json({ ...ok, gsm_path: '/etc/x.gsm' }),
    props: { messageId: 'm\r\nAction: Command' },
    code: 'PATH_NOT_ALLOWED',
    says: /outside the allowed roots/,
  });
  add({
    name: 'a 60 KB header',
    body: json({ ...ok, gsm_path: '/etc/x.gsm', job_id: 'hdr-big' }),
    props: { headers: { 'x-big': 'h'.repeat(60_000) } },
    code: 'PATH_NOT_ALLOWED',
    says: /outside the allowed roots/,
    jobId: 'hdr-big',
  });
  add({
    name: '2,000 headers, nested tables',
    body: json({ ...ok, wav_path: `${wavDir}/a;b.wav`, job_id: 'hdr-many' }),
    props: { headers: manyHeaders() },
    code: 'PATH_NOT_ALLOWED',
    says: /^wav_path contains U\+003B/,
    jobId: 'hdr-many',
  });
  for (const forged of [999, -1, 'abc', 1e300, '\r\n']) {
    add({
      name: `forged ${ATTEMPTS_HEADER} = ${JSON.stringify(forged)}`,
      body: json({ ...ok, gsm_path: inGsm('a;b.gsm') }),
      props: { headers: { [ATTEMPTS_HEADER]: forged } },
      code: 'PATH_NOT_ALLOWED',
      says: /^gsm_path contains U\+003B/,
    });
  }
  // Valid jobs whose input is missing do reach Asterisk (only the dialplan can tell), whatever the forged header says.
  for (const forged of [999, 'abc']) {
    const name = `missing-forged-${String(forged)}`;
    add({
      name: `input missing, forged ${ATTEMPTS_HEADER} = ${JSON.stringify(forged)}`,
      body: json({ gsm_path: inGsm(`${name}.gsm`), wav_path: `${wavDir}/${name}.wav`, job_id: name }),
      props: { headers: { [ATTEMPTS_HEADER]: forged } },
      code: 'INPUT_MISSING',
      says: /input/i,
      jobId: name,
      reachesAmi: true,
    });
  }
  return list;
}

function manyHeaders(): Record<string, unknown> {
  const headers: Record<string, unknown> = {};
  for (let i = 0; i < 2000; i++) headers[`h${i}`] = i % 2 === 0 ? `v${i}\r\n` : { nested: { deeper: [i, 'x'] } };
  return headers;
}

/** The message in `collector` carrying `correlationId`, exactly one. */
function only(messages: readonly AsyncMessage[], correlationId: string, what: string): AsyncMessage {
  const found = messages.filter((m) => m.correlationId === correlationId);
  assert.equal(found.length, 1, `${correlationId}: expected one ${what}, got ${found.length}`);
  return found[0]!;
}

/**
 * `promise`, or a failure naming what is missing once `ms` have passed: a message that loops
 * (requeued forever) must fail the test with its name, not hang it.
 */
async function withinDeadline<T>(promise: Promise<T>, ms: number, missing: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(missing())), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function bodyOf<T>(message: AsyncMessage): T {
  return (Buffer.isBuffer(message.body) ? JSON.parse(message.body.toString()) : message.body) as T;
}

void describe('hostile input through the real service', () => {
  let list: Case[] = [];

  it('every hostile message is dead-lettered with a readable reason and a failed result', TEST, async () => {
    list = cases();
    for (const [i, c] of list.entries()) await publish(c.body, { ...c.props, correlationId: `case-${i}` });
    await withinDeadline(Promise.all([stack.dead.onCount(list.length), stack.results.onCount(list.length)]), 20_000, () => {
      const done = new Set(stack.dead.messages.map((m) => m.correlationId));
      return `cases with no dead letter yet: ${list.flatMap((c, i) => (done.has(`case-${i}`) ? [] : [`case-${i} (${c.name})`])).join('; ')}`;
    });

    for (const [i, c] of list.entries()) {
      const id = `case-${i}`;
      const label = `${id} (${c.name})`;
      const result = bodyOf<Result>(only(stack.results.messages, id, 'result'));
      assert.equal(result.status, 'failed', label);
      assert.equal(result.error?.code, c.code, `${label}: ${result.error?.message}`);
      assert.match(result.error?.message ?? '', c.says, label);
      assert.match(result.error?.message ?? '', PRINTABLE, `${label}: the reason is printable ASCII`);
      assert.match(result.job_id, JOB_ID_RULE, label);
      if (c.jobId !== undefined) assert.equal(result.job_id, c.jobId, label);
      for (const p of [result.gsm_path, result.wav_path])
        if (p !== undefined) assert.match(p, /^[A-Za-z0-9._/-]+$/, `${label}: echoed path`);
      // Attempts: 0 for a message refused before any attempt, 1 for one that reached Asterisk; a
      // forged header below 1000 is believed (it can only shorten that job's own retries), anything else ignored.
      const forged = c.props?.['headers'] === undefined ? undefined : (c.props['headers'] as Record<string, unknown>)[ATTEMPTS_HEADER];
      const before = forged === 999 ? 999 : 0;
      assert.equal(result.attempts, before + (c.reachesAmi === true ? 1 : 0), `${label}: attempts`);

      const dead = only(stack.dead.messages, id, 'dead letter');
      const headers = dead.headers ?? {};
      assert.equal(headers['x-audioconvert-error-code'], c.code, label);
      const reason = String(headers['x-audioconvert-reason'] ?? '');
      assert.match(reason, PRINTABLE, `${label}: reason header printable`);
      assert.ok(reason.length > 10 && reason.length <= 1000, `${label}: reason header length ${reason.length}`);
      assert.match(reason, c.says, label);
      assert.equal(headers['x-audioconvert-job-id'], result.job_id, label);
      assert.equal(headers['x-audioconvert-attempts'], result.attempts, label);
      const record = bodyOf<DeadBody>(dead);
      assert.equal(record.error.code, c.code, label);
      assert.equal(record.error.reason, result.error?.message, label);
      assert.equal(record.original_queue, stack.config.rabbitmq.queueName, label);
      assert.ok(record.original_body_bytes >= 0 && typeof record.original_body === 'string', label);
      if (c.name.startsWith('10,000 nested objects as')) assert.match(record.original_body, /nested too deep/, label);
      if (Buffer.isBuffer(c.body) && c.props?.['contentType'] === undefined) {
        // The original bytes are kept (up to 1 MiB), so a person can see what was sent.
        assert.equal(record.original_body_bytes, c.body.length, label);
        const kept =
          record.body_encoding === 'base64' ? Buffer.from(record.original_body, 'base64') : Buffer.from(record.original_body, 'utf8');
        assert.ok(c.body.subarray(0, kept.length).equals(kept), `${label}: original body kept`);
      }
    }
  });

  it('nothing forbidden reached Asterisk: no forbidden byte, no unexpected action, only safe Variable values', () => {
    const emu = stack.emulator;
    assert.equal(emu.stats.forbiddenBytes, 0);
    assert.deepEqual(emu.stats.unexpectedActions, []);
    const actions = emu.received.map((m) => getHeader(m, 'Action') ?? '<none>');
    assert.ok(
      actions.every((a) => ['Login', 'Originate', 'Ping', 'Logoff'].includes(a)),
      `actions: ${[...new Set(actions)].join(', ')}`,
    );
    const originates = emu.received.filter((m) => getHeader(m, 'Action') === 'Originate');
    assert.equal(originates.length, list.filter((c) => c.reachesAmi === true).length, 'only valid jobs were originated');
    for (const m of originates) {
      for (const [key, value] of m.pairs) assert.doesNotMatch(`${key}${value}`, /[\r\n\0]/);
      const variables = getHeaders(m, 'Variable');
      assert.deepEqual(
        variables.map((v) => v.split('=')[0]),
        ['JOB_ID', 'GSM_PATH', 'WAV_PATH'],
      );
      for (const v of variables) assert.match(v, VARIABLE_VALUE, v);
    }
    // Nothing was written through the symlinks, and no injected command ran.
    assert.equal(stack.emulator.stats.conversionsStarted, 0);
  });

  it('the service keeps running: valid jobs convert afterwards, whatever the content type', TEST, async () => {
    const service = stack.service!;
    assert.equal(service.readiness().ready, true, JSON.stringify(service.readiness().checks));
    const before = stack.results.messages.length;
    const variants: Array<[string, unknown, Record<string, unknown>]> = [];
    for (const [i, contentType] of ['application/json', 'text/plain', undefined, 'application/octet-stream'].entries()) {
      const body = { gsm_path: stack.data.gsm(`after-${i}`), wav_path: stack.data.wav(`after-${i}`), job_id: `after-${i}` };
      variants.push([`after-${i}`, Buffer.from(JSON.stringify(body)), contentType === undefined ? {} : { contentType }]);
    }
    // A forged attempts header grants nothing and breaks nothing on a valid job.
    const forged = { gsm_path: stack.data.gsm('after-forged'), wav_path: stack.data.wav('after-forged'), job_id: 'after-forged' };
    variants.push(['after-forged', forged, { headers: { [ATTEMPTS_HEADER]: 999 } }]);
    for (const [id, body, props] of variants) await publish(body, { ...props, correlationId: id });
    await withinDeadline(stack.results.onCount(before + variants.length), 15_000, () => 'valid jobs after the barrage got no result');
    for (const [id] of variants) {
      const result = bodyOf<Result>(only(stack.results.messages, id, 'result'));
      assert.equal(result.status, 'converted', `${id}: ${JSON.stringify(result.error)}`);
      assert.equal(result.job_id, id);
    }
    assert.equal(stack.emulator.stats.forbiddenBytes, 0);
    assert.deepEqual(stack.emulator.stats.unexpectedActions, []);
    assert.equal(await stack.queueDepth(), 0, 'nothing left behind or requeued');
  });
});
