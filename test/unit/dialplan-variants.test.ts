/**
 * The dialplan variants (config/asterisk/variants/, and the benchmark's bench/dialplans/) are the
 * shipped config/asterisk/extensions.conf with the conversion step changed: priorities 12 and 13.
 * Everything else — the checks, the priorities the emulator mirrors, the UserEvent — must stay the
 * same, so a variant is a drop-in replacement and a measurement of one compares only the step.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';

const REPO = path.resolve(import.meta.dirname, '../..');
const shipped = readFileSync(path.join(REPO, 'config/asterisk/extensions.conf'), 'utf8').split('\n');
const STEP = (line: string): boolean => line.startsWith(' same => n,') && /; 1[23]:/.test(line);

/** The variant's lines after its own header (the leading comment lines up to the first `;` alone). */
function body(file: string): string[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  return lines.slice(lines.indexOf(';') + 1);
}

const files = [
  ...readdirSync(path.join(REPO, 'config/asterisk/variants')).map((f) => path.join(REPO, 'config/asterisk/variants', f)),
  ...readdirSync(path.join(REPO, 'bench/dialplans')).map((f) => path.join(REPO, 'bench/dialplans', f)),
].filter((f) => f.endsWith('.conf'));

describe('dialplan variants differ from the shipped dialplan in the step (priorities 12–13) only', () => {
  test('there are variants to check', () => assert.ok(files.length >= 2));
  for (const file of files) {
    test(path.relative(REPO, file), () => {
      const lines = body(file);
      assert.equal(lines.length, shipped.length, 'same number of lines');
      const differing = lines.map((l, i) => (l === shipped[i] ? -1 : i)).filter((i) => i >= 0);
      assert.ok(differing.length >= 1 && differing.length <= 2, `one or two lines differ, got ${differing.length}`);
      for (const i of differing) assert.ok(STEP(lines[i]!) && STEP(shipped[i]!), `line ${i + 1} is not priority 12 or 13`);
    });
  }
});
