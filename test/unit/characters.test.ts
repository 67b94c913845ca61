// The character rules of characters.ts: what each accepts and refuses, at the edges.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DIALPLAN_PATH_TAIL,
  DIALPLAN_ROOT_PATTERN,
  hasOnlyPathChars,
  isAbsolutePathText,
  isDialplanRoot,
  isJobId,
  JOB_ID_CHAR,
  MAX_JOB_ID_LENGTH,
  PATH_CHAR,
  toJobIdChars,
} from '../../src/characters.js';

describe('names: the character rules', () => {
  it('a job path holds letters, digits and . _ / - only', () => {
    assert.equal(hasOnlyPathChars('/a-b_c.d/E9'), true);
    assert.equal(hasOnlyPathChars(''), true);
    for (const bad of ['/a b', '/a\u2215b', '/a:b', '/a;b', '/a\nb', '/a$b', '/a\\b', '/é']) {
      assert.equal(hasOnlyPathChars(bad), false, JSON.stringify(bad));
    }
    assert.equal(PATH_CHAR.test('/'), true);
    assert.equal(PATH_CHAR.test(':'), false);
    assert.equal(PATH_CHAR.test('😀'), false);
  });

  it('a job id holds letters, digits and . _ : -, 1 to 128 of them', () => {
    assert.equal(isJobId('call-1:a.b_c'), true);
    assert.equal(isJobId('x'.repeat(MAX_JOB_ID_LENGTH)), true);
    assert.equal(isJobId('x'.repeat(MAX_JOB_ID_LENGTH + 1)), false);
    assert.equal(isJobId(''), false);
    assert.equal(isJobId('a/b'), false);
    assert.equal(isJobId('a b'), false);
    assert.equal(JOB_ID_CHAR.test(':'), true);
    assert.equal(JOB_ID_CHAR.test('/'), false);
  });

  it('toJobIdChars replaces each run of other characters by one _', () => {
    assert.equal(toJobIdChars('llamada 2024/05 ñ!'), 'llamada_2024_05_');
    assert.equal(toJobIdChars('ok:1.2-3_4'), 'ok:1.2-3_4');
    assert.equal(isJobId(toJobIdChars('a\r\n;$(rm)b')), true);
  });

  it('an AllowedRoots entry is absolute and in the path characters', () => {
    assert.equal(isAbsolutePathText('/var/local/auditorai'), true);
    assert.equal(isAbsolutePathText('var/local'), false);
    assert.equal(isAbsolutePathText('/'), false);
    assert.equal(isAbsolutePathText('/var/a b'), false);
  });

  it('a dialplan root has no dot at all: the dialplan pastes it into a REGEX', () => {
    assert.equal(isDialplanRoot('/var/local/auditorai/gsm'), true);
    assert.equal(isDialplanRoot('/a_b-c/D9'), true);
    for (const bad of ['', '/', 'var/x', '/var/x/', '/var//x', '/var/x.y', '/var/.x', '/var/x*']) {
      assert.equal(isDialplanRoot(bad), false, JSON.stringify(bad));
    }
    assert.equal(DIALPLAN_ROOT_PATTERN, '^(/[A-Za-z0-9_-]+)+$');
  });

  it("the dialplan's path tail takes any depth of names that start with [A-Za-z0-9_]", () => {
    const gsm = new RegExp(`^/r${DIALPLAN_PATH_TAIL.gsm}`);
    for (const good of ['/r/a.gsm', '/r/2024/05/02/call-1.gsm', '/r/_x/a.b.gsm']) assert.equal(gsm.test(good), true, good);
    for (const bad of ['/r/.a.gsm', '/r/-a.gsm', '/r/../a.gsm', '/r/x/.h/a.gsm', '/r/a.wav', '/r/a b.gsm', '/r//a.gsm', '/r/.gsm']) {
      assert.equal(gsm.test(bad), false, bad);
    }
    assert.equal(new RegExp(`^/r${DIALPLAN_PATH_TAIL.wav}`).test('/r/2024/a.wav'), true);
  });
});
