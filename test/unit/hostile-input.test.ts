// Every malformed or hostile job message we could think of. Each case asserts the error class AND
// the message (it names the field and the rule), and that the message is printable ASCII: no raw
// control character ever reaches a log line, a result or an AMQP header.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { InvalidMessageError, PathNotAllowedError } from '../../src/errors.js';
import { MAX_BODY_BYTES, idForInvalid, invalidMessageFields, parseJob, type PathRules } from '../../src/queue/message.js';
import { hasOnlyPathChars } from '../../src/characters.js';

const RULES: PathRules = { allowedRoots: ['/var/local/auditorai'], inputExtension: '.gsm', outputExtension: '.wav' };
const GSM = '/var/local/auditorai/gsm/call-123.gsm';
const WAV = '/var/local/auditorai/wav/call-123.wav';
const JOB_ID_RULE = /^[A-Za-z0-9._:-]{1,128}$/;

type ErrorClass = typeof InvalidMessageError | typeof PathNotAllowedError;

interface Case {
  readonly name: string;
  readonly body: unknown;
  readonly error: ErrorClass;
  /** What the message must say (field and rule). */
  readonly says: RegExp;
  readonly rules?: PathRules;
  /** A string the message must not contain (the raw hostile value). */
  readonly mustNotEcho?: string;
}

/** A valid job as JSON text, with fields replaced; a field set to undefined is left out. */
function job(fields: Record<string, unknown>): string {
  return JSON.stringify({ gsm_path: GSM, wav_path: WAV, job_id: 'call-123', ...fields });
}

function nestedObject(levels: number): Record<string, unknown> {
  const root: Record<string, unknown> = { gsm_path: GSM, wav_path: WAV };
  let cursor = root;
  for (let i = 0; i < levels; i++) {
    const next: Record<string, unknown> = {};
    cursor.a = next;
    cursor = next;
  }
  return root;
}

const cyclic: Record<string, unknown> = { gsm_path: GSM, wav_path: WAV };
cyclic.self = cyclic;

const bodyCases: Case[] = [
  { name: 'decoded number', body: 42, error: InvalidMessageError, says: /^body must be a JSON object, got number$/ },
  { name: 'decoded null', body: null, error: InvalidMessageError, says: /^body must be a JSON object, got null$/ },
  { name: 'undefined body', body: undefined, error: InvalidMessageError, says: /^body must be a JSON object, got undefined$/ },
  { name: 'decoded boolean', body: true, error: InvalidMessageError, says: /^body must be a JSON object, got boolean$/ },
  { name: 'decoded array', body: [GSM, WAV], error: InvalidMessageError, says: /^body must be a JSON object, got array$/ },
  { name: 'decoded bigint', body: 10n, error: InvalidMessageError, says: /^body must be a JSON object, got bigint$/ },
  {
    name: 'JSON string',
    body: '"/var/local/auditorai/gsm/a.gsm"',
    error: InvalidMessageError,
    says: /^body must be a JSON object, got string$/,
  },
  { name: 'JSON number text', body: '42', error: InvalidMessageError, says: /got number$/ },
  { name: 'JSON null text', body: Buffer.from('null'), error: InvalidMessageError, says: /got null$/ },
  { name: 'JSON array bytes', body: Buffer.from(`[${job({})}]`), error: InvalidMessageError, says: /got array$/ },
  { name: 'not JSON', body: 'gsm_path=/var/local/auditorai/gsm/a.gsm', error: InvalidMessageError, says: /^body is not valid JSON: / },
  {
    name: 'truncated JSON',
    body: Buffer.from('{"gsm_path": "/var/local/auditorai/gsm/a.gsm"'),
    error: InvalidMessageError,
    says: /^body is not valid JSON/,
  },
  { name: 'JSON with trailing garbage', body: `${job({})}x`, error: InvalidMessageError, says: /^body is not valid JSON/ },
  { name: 'JSON with comments', body: `{/* c */ "gsm_path": "${GSM}"}`, error: InvalidMessageError, says: /^body is not valid JSON/ },
  { name: 'single-quoted JSON', body: `{'gsm_path': '${GSM}'}`, error: InvalidMessageError, says: /^body is not valid JSON/ },
  {
    name: 'not JSON, with CR/LF and NUL in it',
    body: 'x\r\nAction: Command\u0000',
    error: InvalidMessageError,
    says: /^body is not valid JSON/,
  },
  { name: 'empty bytes', body: Buffer.alloc(0), error: InvalidMessageError, says: /^body is empty/ },
  { name: 'empty string', body: '', error: InvalidMessageError, says: /^body is empty/ },
  { name: 'whitespace only', body: ' \r\n\t', error: InvalidMessageError, says: /^body is empty/ },
  {
    name: 'UTF-8 BOM bytes',
    body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(job({}))]),
    error: InvalidMessageError,
    says: /^body starts with a byte order mark \(U\+FEFF\)/,
  },
  { name: 'BOM in a string', body: `\ufeff${job({})}`, error: InvalidMessageError, says: /^body starts with a byte order mark/ },
  {
    name: 'UTF-16LE bytes',
    body: Buffer.from(`\ufeff${job({})}`, 'utf16le'),
    error: InvalidMessageError,
    says: /^body is not valid UTF-8$/,
  },
  {
    name: 'invalid byte 0xFF',
    body: Buffer.concat([Buffer.from('{"gsm_path":"'), Buffer.from([0xff]), Buffer.from('"}')]),
    error: InvalidMessageError,
    says: /^body is not valid UTF-8$/,
  },
  {
    name: 'overlong encoding of /',
    body: Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')]),
    error: InvalidMessageError,
    says: /^body is not valid UTF-8$/,
  },
  {
    name: 'encoded surrogate',
    body: Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}')]),
    error: InvalidMessageError,
    says: /^body is not valid UTF-8$/,
  },
  {
    name: 'truncated multibyte sequence at the end',
    body: Buffer.concat([Buffer.from(job({})), Buffer.from([0xe2, 0x88])]),
    error: InvalidMessageError,
    says: /^body is not valid UTF-8$/,
  },
  {
    name: 'Latin-1 byte in a path',
    body: Buffer.from(job({ gsm_path: '/var/local/auditorai/gsm/caf\u00e9.gsm' }), 'latin1'),
    error: InvalidMessageError,
    says: /^body is not valid UTF-8$/,
  },
  {
    name: 'bytes over 64 KiB',
    body: Buffer.from(job({ pad: 'x'.repeat(MAX_BODY_BYTES) })),
    error: InvalidMessageError,
    says: /^body is \d+ bytes; the limit is 65536 \(64 KiB\)$/,
  },
  {
    name: 'exactly one byte over 64 KiB',
    body: Buffer.alloc(MAX_BODY_BYTES + 1, 0x20),
    error: InvalidMessageError,
    says: /^body is 65537 bytes; the limit is 65536/,
  },
  {
    name: '65 KiB of invalid UTF-8 (size wins)',
    body: Buffer.alloc(65 * 1024, 0xff),
    error: InvalidMessageError,
    says: /^body is 66560 bytes/,
  },
  {
    name: 'string over 64 KiB in bytes, under in characters',
    body: job({ pad: '\u00e9'.repeat(33_000) }),
    error: InvalidMessageError,
    says: /^body is \d+ bytes; the limit is 65536/,
  },
  {
    name: 'decoded object over 64 KiB',
    body: JSON.parse(job({ pad: 'x'.repeat(70_000) })) as unknown,
    error: InvalidMessageError,
    says: /^body is 70\d\d\d bytes; the limit is 65536 \(64 KiB\)$/,
  },
  {
    name: 'decoded array of a million elements',
    body: { ...JSON.parse(job({})), pad: new Array<number>(1_000_000).fill(0) },
    error: InvalidMessageError,
    says: /^body is \d+ bytes; the limit is 65536/,
  },
  {
    name: 'decoded object over 64 KiB only once UTF-8 encoded',
    body: JSON.parse(job({ pad: '\u00e9'.repeat(40_000) })) as unknown,
    error: InvalidMessageError,
    says: /^body is \d+ bytes; the limit is 65536/,
  },
  {
    name: '10,000 nested objects (text)',
    body: `{"gsm_path":"${GSM}","a":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`,
    error: InvalidMessageError,
    says: /^body nests deeper than 32 levels$/,
  },
  {
    name: '10,000 nested arrays (bytes)',
    body: Buffer.from(`${'['.repeat(10_000)}${']'.repeat(10_000)}`),
    error: InvalidMessageError,
    says: /^body nests deeper than 32 levels$/,
  },
  { name: '60,000 unclosed brackets', body: '['.repeat(60_000), error: InvalidMessageError, says: /^body nests deeper than 32 levels$/ },
  {
    name: '33 levels (one over)',
    body: `${'['.repeat(33)}${']'.repeat(33)}`,
    error: InvalidMessageError,
    says: /^body nests deeper than 32 levels$/,
  },
  {
    name: '10,000 nested objects (decoded)',
    body: nestedObject(10_000),
    error: InvalidMessageError,
    says: /^body nests deeper than 32 levels$/,
  },
  { name: 'cyclic decoded object', body: cyclic, error: InvalidMessageError, says: /^body nests deeper than 32 levels$/ },
  {
    name: 'a Map',
    body: new Map([['gsm_path', GSM]]),
    error: InvalidMessageError,
    says: /^body must be a JSON object, got a non-plain object$/,
  },
  { name: 'a Date', body: new Date(0), error: InvalidMessageError, says: /non-plain object$/ },
  {
    name: 'object inheriting the fields',
    body: Object.create({ gsm_path: GSM, wav_path: WAV }) as unknown,
    error: InvalidMessageError,
    says: /non-plain object$/,
  },
  {
    name: '__proto__ key carrying the fields',
    body: `{"__proto__": {"gsm_path": "${GSM}", "wav_path": "${WAV}"}}`,
    error: InvalidMessageError,
    says: /^gsm_path is required/,
  },
];

const shapeCases: Case[] = [
  { name: 'empty object', body: '{}', error: InvalidMessageError, says: /^gsm_path is required: an absolute path ending in \.gsm$/ },
  { name: 'gsm_path missing', body: job({ gsm_path: undefined }), error: InvalidMessageError, says: /^gsm_path is required/ },
  {
    name: 'wav_path missing',
    body: job({ wav_path: undefined }),
    error: InvalidMessageError,
    says: /^wav_path is required: an absolute path ending in \.wav$/,
  },
  {
    name: 'fields in the wrong case',
    body: JSON.stringify({ GSM_PATH: GSM, WAV_PATH: WAV }),
    error: InvalidMessageError,
    says: /^gsm_path is required/,
  },
  {
    name: 'camelCase fields',
    body: JSON.stringify({ gsmPath: GSM, wavPath: WAV }),
    error: InvalidMessageError,
    says: /^gsm_path is required/,
  },
];
for (const [field, ok] of [
  ['gsm_path', GSM],
  ['wav_path', WAV],
] as const) {
  for (const [type, value] of [
    ['number', 1],
    ['null', null],
    ['boolean', false],
    ['array', [ok]],
    ['object', { path: ok }],
  ] as const) {
    shapeCases.push({
      name: `${field} as ${type}`,
      body: job({ [field]: value }),
      error: InvalidMessageError,
      says: new RegExp(`^${field} must be a string, got ${type}$`),
    });
  }
  shapeCases.push({
    name: `${field} empty`,
    body: job({ [field]: '' }),
    error: InvalidMessageError,
    says: new RegExp(`^${field} must not be empty$`),
  });
}
for (const [type, value] of [
  ['number', 123],
  ['null', null],
  ['boolean', true],
  ['array', ['a']],
  ['object', { id: 'a' }],
] as const) {
  shapeCases.push({
    name: `job_id as ${type}`,
    body: job({ job_id: value }),
    error: InvalidMessageError,
    says: new RegExp(`^job_id must be a string, got ${type}$`),
  });
}
const badJobIds: Array<[string, string, RegExp]> = [
  ['empty', '', /^job_id must not be empty/],
  ['129 characters', 'a'.repeat(129), /^job_id is 129 characters long; the limit is 128$/],
  ['10,000 characters with CR/LF', `${'a'.repeat(9_989)}\r\nAction: X`, /^job_id is 10000 characters long/],
  ['a space', 'call 123', /^job_id contains U\+0020 \(space\) at offset 4; allowed: A-Z a-z 0-9 \. _ : -$/],
  ['a slash', 'calls/123', /^job_id contains U\+002F '\/' at offset 5/],
  ['a backslash', 'a\\b', /^job_id contains U\+005C \(backslash\)/],
  ['CR LF', 'call\r\nAction: Command', /^job_id contains U\+000D \(carriage return\) at offset 4/],
  ['LF', 'call\n', /^job_id contains U\+000A \(line feed\)/],
  ['NUL', 'call\u0000', /^job_id contains U\+0000 \(NUL\)/],
  ['tab', '\tcall', /^job_id contains U\+0009 \(tab\) at offset 0/],
  ['a comma', 'a,b', /^job_id contains U\+002C ','/],
  ['a semicolon', 'a;b', /^job_id contains U\+003B ';'/],
  ['a shell substitution', '$(id)', /^job_id contains U\+0024 '\$'/],
  ['a non-ASCII letter', 'caf\u00e9', /^job_id contains U\+00E9 at offset 3/],
  ['an emoji', 'call-\u{1f600}', /^job_id contains U\+1F600 at offset 5/],
  ['a Cyrillic look-alike', 'c\u0430ll', /^job_id contains U\+0430 at offset 1/],
  ['a lone surrogate', 'a\ud800', /^job_id contains U\+D800 at offset 1/],
  ['a zero-width space', 'a\u200bb', /^job_id contains U\+200B/],
];
for (const [name, id, says] of badJobIds) {
  shapeCases.push({
    name: `job_id with ${name}`,
    body: job({ job_id: id }),
    error: InvalidMessageError,
    says,
    ...(id === '' ? {} : { mustNotEcho: id }),
  });
}

/** Characters a path must never carry: AMI, Asterisk's Variable parser, the shell, and look-alikes. */
const forbidden: Array<[string, string]> = [
  ['\r', 'U+000D'],
  ['\n', 'U+000A'],
  ['\r\n', 'U+000D'],
  ['\u0000', 'U+0000'],
  ['\t', 'U+0009'],
  [' ', 'U+0020'],
  [',', 'U+002C'],
  ['"', 'U+0022'],
  ["'", 'U+0027'],
  ['\\', 'U+005C'],
  ['(', 'U+0028'],
  [')', 'U+0029'],
  ['[', 'U+005B'],
  [']', 'U+005D'],
  ['{', 'U+007B'],
  ['}', 'U+007D'],
  [';', 'U+003B'],
  ['$', 'U+0024'],
  ['`', 'U+0060'],
  ['|', 'U+007C'],
  ['&', 'U+0026'],
  ['>', 'U+003E'],
  ['<', 'U+003C'],
  ['*', 'U+002A'],
  ['?', 'U+003F'],
  ['~', 'U+007E'],
  ['#', 'U+0023'],
  ['!', 'U+0021'],
  ['=', 'U+003D'],
  ['%', 'U+0025'],
  ['+', 'U+002B'],
  ['@', 'U+0040'],
  ['^', 'U+005E'],
  [':', 'U+003A'],
  ['\u007f', 'U+007F'],
  ['\u0085', 'U+0085'],
  ['\u2215', 'U+2215'],
  ['\uff0f', 'U+FF0F'],
  ['\u2024', 'U+2024'],
  ['\u0430', 'U+0430'],
  ['\u00e9', 'U+00E9'],
  ['\ufeff', 'U+FEFF'],
  ['\u200b', 'U+200B'],
  ['\u2028', 'U+2028'],
  ['\ufffd', 'U+FFFD'],
  ['\u{1f600}', 'U+1F600'],
  ['\ud800', 'U+D800'],
  ['\u00a0', 'U+00A0'],
];

const pathCases: Case[] = [];
for (const [field, ext, dir] of [
  ['gsm_path', '.gsm', 'gsm'],
  ['wav_path', '.wav', 'wav'],
] as const) {
  const base = `/var/local/auditorai/${dir}`;
  const refuse = (name: string, path: string, says: RegExp, extra: Partial<Case> = {}): void => {
    pathCases.push({ name: `${field}: ${name}`, body: job({ [field]: path }), error: PathNotAllowedError, says, ...extra });
  };
  for (const [ch, code] of forbidden) {
    const path = `${base}/a${ch}b${ext}`;
    const offset = base.length + 2;
    refuse(
      `contains ${code}`,
      path,
      new RegExp(`^${field} contains ${code.replace('+', '\\+')}\\b.* at offset ${offset}; allowed: A-Z a-z 0-9 \\. _ / -$`),
      { mustNotEcho: path },
    );
  }
  const injections: Array<[string, string, string]> = [
    ['shell injection (shell-injection-path.txt)', `${base}/t1${ext};touch /tmp/pwned;#`, 'U+003B'],
    ['header injection (hdr-crlf-injection.txt)', `${base}/x${ext}\r\nAction: Command\r\nCommand: core show version`, 'U+000D'],
    ['double CRLF + Originate', `${base}/x${ext}\r\n\r\nAction: Originate\r\nApplication: System\r\nData: touch /tmp/x`, 'U+000D'],
    ['bare LF + LF', `${base}/x${ext}\n\nAction: Command`, 'U+000A'],
    ['Variable splitting (hdr-variable-values.txt)', `${base}/one${ext},B=/x/two.wav`, 'U+002C'],
    ['dialplan function', '${SHELL(id)}', 'U+0024'],
    ['command substitution', `${base}/$(reboot)${ext}`, 'U+0024'],
    ['backticks', `${base}/\`id\`${ext}`, 'U+0060'],
    ['glob', `${base}/*${ext}`, 'U+002A'],
    ['home directory', `~/x${ext}`, 'U+007E'],
    ['Windows separators', `C:\\x${ext}`, 'U+003A'],
    ['fullwidth solidus as a separator', `/var/local/auditorai\uff0f..\uff0fetc${ext}`, 'U+FF0F'],
    ['division slash as a separator', `/var/local/auditorai\u2215..\u2215x${ext}`, 'U+2215'],
    ['one dot leaders as ..', `${base}/\u2024\u2024/x${ext}`, 'U+2024'],
    ['Cyrillic a in the root', `/v\u0430r/local/auditorai/x${ext}`, 'U+0430'],
    ['percent-encoded ..', `${base}/%2e%2e/x${ext}`, 'U+0025'],
  ];
  for (const [name, path, code] of injections) {
    refuse(name, path, new RegExp(`^${field} contains ${code.replace('+', '\\+')}\\b`), { mustNotEcho: path });
  }
  refuse('relative path', `var/local/auditorai/${dir}/x${ext}`, new RegExp(`^${field} must be an absolute path \\(starting with /\\)`));
  refuse('./ relative path', `./x${ext}`, new RegExp(`^${field} must be an absolute path`));
  refuse('bare file name', `x${ext}`, new RegExp(`^${field} must be an absolute path`));
  refuse('trailing slash', `${base}/`, new RegExp(`^${field} ends with '/': it must name a file$`));
  refuse('the root directory', '/', new RegExp(`^${field} ends with '/'`));
  refuse('double slash inside', `/var/local//auditorai/${dir}/x${ext}`, new RegExp(`^${field} contains '//': send the normalised path$`));
  refuse('double slash at the start', `//var/local/auditorai/${dir}/x${ext}`, new RegExp(`^${field} contains '//'`));
  refuse(
    '.. escaping the root',
    `${base}/../../../../etc/passwd${ext}`,
    new RegExp(`^${field} contains a '\\.\\.' segment: send the normalised path$`),
  );
  refuse(
    '.. staying inside the root',
    `/var/local/auditorai/../auditorai/${dir}/x${ext}`,
    new RegExp(`^${field} contains a '\\.\\.' segment`),
  );
  refuse('.. at the end', `${base}/x${ext}/..`, new RegExp(`^${field} contains a '\\.\\.' segment`));
  refuse('. segment', `/var/local/auditorai/./${dir}/x${ext}`, new RegExp(`^${field} contains a '\\.' segment`));
  refuse(
    'outside the root',
    `/etc/passwd${ext}`,
    new RegExp(`^${field} /etc/passwd\\${ext} is outside the allowed roots \\(/var/local/auditorai\\)$`),
  );
  refuse(
    'root-prefix trick',
    `/var/local/auditorai2/${dir}/x${ext}`,
    new RegExp(`^${field} /var/local/auditorai2/.* is outside the allowed roots`),
  );
  refuse('root-prefix trick with a dash', `/var/local/auditorai-evil/x${ext}`, new RegExp(`^${field} .* is outside the allowed roots`));
  refuse('a parent of the root', `/var/local/x${ext}`, new RegExp(`^${field} .* is outside the allowed roots`));
  refuse('the root itself', '/var/local/auditorai', new RegExp(`^${field} /var/local/auditorai is outside the allowed roots`));
  refuse('/dev/zero', '/dev/zero', new RegExp(`^${field} /dev/zero is outside the allowed roots`));
  refuse(
    'wrong extension',
    `${base}/x${ext === '.gsm' ? '.wav' : '.gsm'}`,
    new RegExp(`^${field} must end with \\${ext} \\(case-sensitive\\): x\\.`),
  );
  refuse('upper-case extension', `${base}/x${ext.toUpperCase()}`, new RegExp(`^${field} must end with \\${ext} \\(case-sensitive\\)`));
  refuse('no extension', `${base}/x`, new RegExp(`^${field} must end with \\${ext}`));
  refuse('extension without its dot', `${base}/x${ext.slice(1)}`, new RegExp(`^${field} must end with \\${ext}`));
  refuse('extension on a directory', `${base}${ext}/x`, new RegExp(`^${field} must end with \\${ext}`));
  refuse('other extension last', `${base}/x${ext}.txt`, new RegExp(`^${field} must end with \\${ext}`));
  refuse('doubled extension', `${base}/x${ext}${ext}`, new RegExp(`^${field} has a doubled extension: x\\${ext}\\${ext}$`));
  refuse('swapped double extension', `${base}/x${ext === '.gsm' ? '.wav' : '.gsm'}${ext}`, new RegExp(`^${field} has a doubled extension`));
  refuse('extension only (hidden file)', `${base}/${ext}`, new RegExp(`^${field} has a name starting with '\\.': \\${ext}$`));
  refuse('hidden file', `${base}/.x${ext}`, new RegExp(`^${field} has a name starting with '\\.'`));
  refuse('hidden directory', `/var/local/auditorai/.cache/x${ext}`, new RegExp(`^${field} has a name starting with '\\.': \\.cache$`));
  refuse('leading dash (option injection)', `${base}/-rf${ext}`, new RegExp(`^${field} has a name starting with '-': -rf\\${ext}$`));
  refuse('leading double dash', `${base}/--help${ext}`, new RegExp(`^${field} has a name starting with '-'`));
  refuse('leading dash in a directory', `/var/local/auditorai/-o/x${ext}`, new RegExp(`^${field} has a name starting with '-': -o$`));
  const long = `${base}/${'a'.repeat(200)}/${'b'.repeat(200)}/${'c'.repeat(100)}${ext}`;
  refuse(`path of ${long.length} bytes`, long, new RegExp(`^${field} is ${long.length} bytes long; the limit is 512$`));
  refuse(
    'path of 513 bytes',
    `${base}/${'a'.repeat(250)}/${'b'.repeat(513 - base.length - 256)}${ext}`,
    new RegExp(`^${field} is 513 bytes long; the limit is 512$`),
  );
  const hdrLong = `${base}/${'a'.repeat(1100)}${ext}`; // hdr-line-too-long.txt: Asterisk refused this Originate
  refuse(
    'the path Asterisk refused as a line too long',
    hdrLong,
    new RegExp(`^${field} is ${hdrLong.length} bytes long; the limit is 512$`),
    { mustNotEcho: hdrLong },
  );
  refuse(
    'one name over 255 bytes',
    `${base}/${'a'.repeat(256)}${ext}`,
    new RegExp(`^${field} has a name of ${256 + ext.length} bytes; the limit is 255$`),
  );
}
pathCases.push(
  {
    name: 'wav_path equal to gsm_path',
    body: JSON.stringify({ gsm_path: '/var/local/auditorai/x.au', wav_path: '/var/local/auditorai/x.au' }),
    rules: { ...RULES, inputExtension: '.au', outputExtension: '.au' },
    error: PathNotAllowedError,
    says: /^wav_path must not be the same file as gsm_path$/,
  },
  {
    name: 'no allowed roots configured',
    body: job({}),
    rules: { ...RULES, allowedRoots: [] },
    error: PathNotAllowedError,
    says: /^gsm_path .* is outside the allowed roots \(none configured\)$/,
  },
  {
    name: 'a relative root never matches',
    body: job({ gsm_path: '/gsm/x.gsm' }),
    rules: { ...RULES, allowedRoots: ['gsm'] },
    error: PathNotAllowedError,
    says: /^gsm_path \/gsm\/x\.gsm is outside the allowed roots \(gsm\)$/,
  },
  {
    name: 'decoded object with a CR in gsm_path',
    body: { gsm_path: `${GSM}\r\nX: y`, wav_path: WAV },
    error: PathNotAllowedError,
    says: /^gsm_path contains U\+000D \(carriage return\) at offset 37/,
  },
);

function runCase(c: Case): void {
  let caught: unknown;
  try {
    parseJob(c.body, 'mid-1', c.rules ?? RULES);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof c.error, `expected ${c.error.name}, got ${String(caught)}`);
  // The other class must not match either: the class carries the result code.
  const other = c.error === InvalidMessageError ? PathNotAllowedError : InvalidMessageError;
  assert.ok(!(caught instanceof other));
  assert.match(caught.message, c.says);
  assert.match(caught.message, /^[\x20-\x7e]+$/, `message is not printable ASCII: ${JSON.stringify(caught.message)}`);
  assert.ok(caught.message.length <= 300, `message too long (${caught.message.length})`);
  if (c.mustNotEcho !== undefined) assert.ok(!caught.message.includes(c.mustNotEcho), 'message echoes the hostile value');
}

describe('hostile input: body', () => {
  for (const c of bodyCases) it(c.name, () => runCase(c));
});

describe('hostile input: shape and job_id', () => {
  for (const c of shapeCases) it(c.name, () => runCase(c));
});

describe('hostile input: paths', () => {
  for (const c of pathCases) it(c.name, () => runCase(c));
});

describe('hostile input: a polluted Object.prototype', () => {
  it('does not supply a missing field', () => {
    // Some other library set Object.prototype.gsm_path: a message without the field must still be refused.
    Object.defineProperty(Object.prototype, 'gsm_path', { value: GSM, configurable: true, writable: true });
    try {
      runCase({ name: 'polluted', body: JSON.stringify({ wav_path: WAV }), error: InvalidMessageError, says: /^gsm_path is required/ });
    } finally {
      delete (Object.prototype as Record<string, unknown>).gsm_path;
    }
  });
});

describe('hostile input: the failed result of each case', () => {
  it('always gets a valid id and never an unsafe path', () => {
    for (const c of [...bodyCases, ...shapeCases, ...pathCases]) {
      const fields = invalidMessageFields(c.body, undefined);
      assert.match(fields.jobId, JOB_ID_RULE, c.name);
      for (const path of [fields.gsmPath, fields.wavPath]) {
        if (path !== undefined) assert.ok(hasOnlyPathChars(path) && path.length <= 512, `${c.name}: ${JSON.stringify(path)}`);
      }
      // Bodies here carry job_id 'call-123' or none/a bad one: the id is that, or the valid message_id.
      const id = idForInvalid(c.body, 'mid-ok');
      assert.ok(id === 'call-123' || id === 'mid-ok', `${c.name}: ${id}`);
      if (c.name.startsWith('job_id ')) assert.equal(id, 'mid-ok', c.name);
    }
  });
});
