/**
 * docs/asterisk.md §2 lays the step's perl program out readably, with comments. It must stay the
 * program config/asterisk/extensions.conf runs: without its comments, each line trimmed, the lines
 * joined with one space and every `;` written `\;`.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const REPO = path.resolve(import.meta.dirname, '../..');

test('the perl program in docs/asterisk.md §2 is the one priority 12 runs', () => {
  const doc = readFileSync(path.join(REPO, 'docs/asterisk.md'), 'utf8');
  const listing = /```perl\n([\s\S]*?)```/.exec(doc)?.[1];
  assert.ok(listing !== undefined, 'docs/asterisk.md has a perl listing');
  const fromDoc = listing
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .join(' ')
    .replaceAll(';', '\\;');
  const conf = readFileSync(path.join(REPO, 'config/asterisk/extensions.conf'), 'utf8');
  const inConf = /SHELL\(exec perl -e '(.*?)' -- /.exec(conf)?.[1];
  assert.ok(inConf !== undefined, 'priority 12 runs perl -e');
  assert.equal(fromDoc, inConf);
});
