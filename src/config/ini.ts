/**
 * PURE: INI text → ordered entries with line numbers. Imports nothing of ours.
 *
 * Written here rather than taken from the `ini` package because the `ini` package cuts a value at
 * ANY `#` or `;` (a secret like `pa#ss` is silently truncated), turns `true`/`false` into booleans,
 * nests sections whose names contain dots, lets a repeated key silently win, and keeps no line numbers.
 * This dialect is the one the seed's file (and Python's configparser) uses:
 *
 * - `[Section]` headers; `Key = value` lines; blank lines and lines starting
 *   with `#` or `;` are comments.
 * - An inline comment starts at ` #` or ` ;` (whitespace before it), so `a#b` stays a value.
 * - A value wrapped in double or single quotes is taken literally between the quotes (an inline
 *   comment may follow the closing quote); this is how a secret containing ` #` is written.
 */

/** One `Key = value` line. */
export interface IniEntry {
  /** The key as written (case preserved). */
  readonly key: string;
  /** The value, trimmed, inline comment removed, surrounding quotes removed. */
  readonly value: string;
  /** 1-based line number in the text. */
  readonly line: number;
}

/** One `[Section]` (headers repeated later in the file are merged into the first). */
export interface IniSection {
  /** The section name as first written (case preserved). */
  readonly name: string;
  /** 1-based line number of the first header. */
  readonly line: number;
  readonly entries: IniEntry[];
}

/** A line that is not a comment, a header or `Key = value`. */
export interface IniSyntaxProblem {
  readonly line: number;
  readonly text: string;
  readonly reason: string;
}

export interface IniDocument {
  /** Sections in file order. Section names compare case-insensitively. */
  readonly sections: IniSection[];
  /** Lines that could not be read; the caller decides whether they matter (e.g. inside an ignored section). */
  readonly problems: { readonly section: IniSection | undefined; readonly problem: IniSyntaxProblem }[];
}

const HEADER = /^\[([^\]]+)\]\s*(?:[#;].*)?$/;
const KEY_VALUE = /^([^=\s[][^=]*?)\s*=(.*)$/;

/** Parse INI text. Never throws: unreadable lines are returned as `problems`. */
export function parseIni(text: string): IniDocument {
  const sections: IniSection[] = [];
  const byName = new Map<string, IniSection>();
  const problems: IniDocument['problems'][number][] = [];
  let current: IniSection | undefined;

  // A UTF-8 BOM (Windows editors) is not part of the first line.
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) return;

    const header = HEADER.exec(trimmed);
    if (header) {
      const name = (header[1] ?? '').trim();
      const key = name.toLowerCase();
      current = byName.get(key);
      if (!current) {
        current = { name, line, entries: [] };
        byName.set(key, current);
        sections.push(current);
      }
      return;
    }

    const kv = KEY_VALUE.exec(trimmed);
    if (!kv) {
      problems.push({ section: current, problem: { line, text: trimmed, reason: 'expected "Key = value" or "[Section]"' } });
      return;
    }
    const value = readValue(kv[2] ?? '');
    if (value === undefined) {
      problems.push({ section: current, problem: { line, text: trimmed, reason: 'a quoted value is not closed' } });
      return;
    }
    if (!current) {
      problems.push({ section: undefined, problem: { line, text: trimmed, reason: 'a key before any [Section] header' } });
      return;
    }
    current.entries.push({ key: (kv[1] ?? '').trim(), value, line });
  });
  return { sections, problems };
}

/** The value part of a line: quotes removed or inline comment stripped; undefined when a quote is not closed. */
function readValue(rest: string): string | undefined {
  const text = rest.trim();
  const quote = text[0];
  if (quote === '"' || quote === "'") {
    const end = text.indexOf(quote, 1);
    if (end < 0) return undefined;
    const after = text.slice(end + 1).trim();
    // Only a comment may follow the closing quote; anything else means the quotes were part of the value.
    if (after === '' || after.startsWith('#') || after.startsWith(';')) return text.slice(1, end);
  }
  if (text.startsWith('#') || text.startsWith(';')) return '';
  const comment = /\s[#;]/.exec(text);
  return (comment ? text.slice(0, comment.index) : text).trim();
}
