/**
 * Text that is safe to show: characters named instead of written raw, anything outside printable
 * ASCII escaped. For error messages, logs and headers that may quote what a client sent.
 */

/** `U+000A (line feed)`, `U+003B ';'`: a character named without writing it raw. */
export function describeCodePoint(cp: number): string {
  const hex = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  const name = CHAR_NAMES.get(cp);
  if (name !== undefined) return `${hex} (${name})`;
  if (cp > 0x20 && cp < 0x7f) return `${hex} '${String.fromCodePoint(cp)}'`;
  return hex;
}

/** `text` with every character outside printable ASCII written as `<U+XXXX>`: safe for logs and headers. */
export function asciiSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, (ch) => `<U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}>`);
}

const CHAR_NAMES = new Map<number, string>([
  [0x00, 'NUL'],
  [0x09, 'tab'],
  [0x0a, 'line feed'],
  [0x0d, 'carriage return'],
  [0x20, 'space'],
  [0x22, 'double quote'],
  [0x27, 'single quote'],
  [0x5c, 'backslash'],
  [0x60, 'backtick'],
  [0x7f, 'DEL'],
  [0x2024, 'one dot leader'],
  [0x2215, 'division slash'],
  [0xfeff, 'byte order mark'],
  [0xfffd, 'replacement character'],
  [0xff0f, 'fullwidth solidus'],
]);

/** What JSON calls the value: null, array, or its typeof. */
export function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}
