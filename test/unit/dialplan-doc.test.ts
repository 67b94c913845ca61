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

const doc = readFileSync(path.join(REPO, 'docs/asterisk.md'), 'utf8');
const conf = readFileSync(path.join(REPO, 'config/asterisk/extensions.conf'), 'utf8');
/** The perl listings of docs/asterisk.md §2, as extensions.conf writes them. */
const listings = [...doc.matchAll(/```perl\n([\s\S]*?)```/g)].map((m) =>
  m[1]!
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .join(' ')
    .replaceAll(';', '\\;'),
);
/** The programs the dialplan's SHELL() steps run, in the file's order: priority 12, then 26. */
const programs = [...conf.matchAll(/SHELL\(exec perl -e '(.*?)' -- /g)].map((m) => m[1]!);

test('the perl program in docs/asterisk.md §2 is the one priority 12 runs', () => {
  assert.ok(listings[0] !== undefined, 'docs/asterisk.md has a perl listing');
  assert.ok(programs[0] !== undefined, 'priority 12 runs perl -e');
  assert.equal(listings[0], programs[0]);
});

test('the two-leg perl program in docs/asterisk.md §2 is the one priority 26 runs', () => {
  assert.equal(listings.length, 2, 'two perl listings');
  assert.equal(programs.length, 2, 'two SHELL(exec perl) steps');
  assert.equal(listings[1], programs[1]);
});
