/**
 * Reader for the AMI recordings in test/fixtures/ami-transcripts (README.md there describes the format).
 * Rebuilds the bytes each side sent, so tests can replay a real Asterisk byte for byte.
 *
 * Display rules reversed here: a line break is CRLF on the wire; `<LF>` (always followed by the
 * display's own line break) is a bare LF; `<CR>` is a bare CR. Each S->C block is one message and
 * ends with the empty line that ends it on the wire, except the banner block (one line + CRLF).
 * NOTE and connection headers always follow a blank line that is display only; it is not kept.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AmiParser, type AmiMessage } from '../../src/ami/protocol.js';

export type Direction = 'C->S' | 'S->C' | 'NOTE';

/** One `### …` block of a recording. `text` is the displayed text (NOTE: the annotation). */
export interface TranscriptBlock {
  readonly dir: Direction;
  readonly ms: number;
  readonly text: string;
}

export interface TranscriptConnection {
  /** The name in `######## connection "…" ########`, or 'default' for single-connection files. */
  readonly name: string;
  readonly blocks: readonly TranscriptBlock[];
}

export interface Transcript {
  readonly name: string;
  /** The `#` header lines, without the leading `# `. */
  readonly header: readonly string[];
  readonly connections: readonly TranscriptConnection[];
}

/** One C->S block: the bytes the client wrote, and what a parser makes of them. */
export interface ClientAction {
  readonly connection: number;
  readonly ms: number;
  readonly bytes: Buffer;
  /** Usually one; more when the recording injected CR/LF into a value. */
  readonly messages: readonly AmiMessage[];
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Directory of the recordings: test/fixtures/ami-transcripts in this repository. */
export function transcriptsDir(): string {
  return path.join(repoRoot, 'test', 'fixtures', 'ami-transcripts');
}

/** Recording names (file names without `.txt`), sorted. */
export function listTranscripts(): string[] {
  return readdirSync(transcriptsDir())
    .filter((file) => file.endsWith('.txt'))
    .map((file) => file.slice(0, -'.txt'.length))
    .sort();
}

const CONNECTION = /^######## connection "(.*)" ########$/;
const BLOCK = /^### (C->S|S->C|NOTE) \[\+(\d+) ms\](?: (.*))?$/;

/** Parses one recording into connections and blocks. */
export function readTranscript(name: string): Transcript {
  const lines = readFileSync(path.join(transcriptsDir(), `${name}.txt`), 'utf8').split('\n');
  if (lines.at(-1) === '') lines.pop();
  const header: string[] = [];
  const connections: { name: string; blocks: TranscriptBlock[] }[] = [];
  let current: { dir: Direction; ms: number; lines: string[] } | undefined;
  const flush = (): void => {
    if (current === undefined) return;
    let conn = connections.at(-1);
    if (conn === undefined) {
      conn = { name: 'default', blocks: [] };
      connections.push(conn);
    }
    // A NOTE is its header line; the blank lines after it are display only.
    const text = current.dir === 'NOTE' ? (current.lines[0] ?? '') : current.lines.join('\n');
    conn.blocks.push({ dir: current.dir, ms: current.ms, text });
    current = undefined;
  };
  for (const line of lines) {
    const conn = CONNECTION.exec(line);
    const block = BLOCK.exec(line);
    if (conn !== null) {
      flush();
      connections.push({ name: conn[1] ?? '', blocks: [] });
    } else if (block !== null) {
      flush();
      const dir = block[1] as Direction;
      current = { dir, ms: Number(block[2]), lines: dir === 'NOTE' ? [block[3] ?? ''] : [] };
    } else if (current !== undefined) {
      current.lines.push(line);
    } else if (line.startsWith('#')) {
      header.push(line.replace(/^# ?/, ''));
    }
  }
  flush();
  return { name, header, connections };
}

/**
 * The wire bytes of one displayed block (see the module comment for the rules). Every displayed
 * line break is CRLF on the wire, except the one right after `<LF>`; so a message block's text,
 * which ends with the one empty line that ended the message, decodes to `…\r\n\r\n`. The
 * banner is the exception: the recorder put a blank separator after it that is not data.
 */
export function blockBytes(block: TranscriptBlock, isBanner = false): Buffer {
  const lines = block.text.split('\n');
  if (isBanner) return Buffer.from(`${lines[0] ?? ''}\r\n`.replaceAll('<CR>', '\r'), 'utf8');
  let wire = '';
  for (const line of lines) {
    wire += line.endsWith('<LF>') ? `${line.slice(0, -'<LF>'.length).replaceAll('<LF>', '\n')}\n` : `${line.replaceAll('<LF>', '\n')}\r\n`;
  }
  return Buffer.from(wire.replaceAll('<CR>', '\r'), 'utf8');
}

function connectionOf(transcript: Transcript, connIndex: number): TranscriptConnection {
  const conn = transcript.connections[connIndex];
  if (conn === undefined) throw new RangeError(`${transcript.name} has no connection ${connIndex}`);
  return conn;
}

/** Non-empty S->C blocks of one connection (an S->C block with no text carries no bytes). */
export function serverBlocks(name: string, connIndex: number): TranscriptBlock[] {
  return connectionOf(readTranscript(name), connIndex).blocks.filter((b) => b.dir === 'S->C' && b.text.trim() !== '');
}

/** The bytes Asterisk sent on one connection, concatenated in order (banner first). */
export function serverStream(name: string, connIndex: number): Buffer {
  return Buffer.concat(serverBlocks(name, connIndex).map((block, i) => blockBytes(block, i === 0)));
}

/** Every message Asterisk sent (all connections, banners left out), parsed by our parser. */
export function serverMessages(name: string): AmiMessage[] {
  const transcript = readTranscript(name);
  const messages: AmiMessage[] = [];
  transcript.connections.forEach((_conn, i) => {
    const parser = new AmiParser({ expectBanner: true });
    for (const frame of parser.push(serverStream(name, i))) if (frame.kind === 'message') messages.push(frame.message);
  });
  return messages;
}

/** Every C->S block (all connections), as bytes and as parsed messages. */
export function clientActions(name: string): ClientAction[] {
  const actions: ClientAction[] = [];
  readTranscript(name).connections.forEach((conn, connection) => {
    for (const block of conn.blocks) {
      if (block.dir !== 'C->S') continue;
      const bytes = blockBytes(block);
      const parser = new AmiParser({ expectBanner: false, overlong: 'mark' });
      const messages = parser.push(bytes).flatMap((f) => (f.kind === 'message' ? [f.message] : []));
      actions.push({ connection, ms: block.ms, bytes, messages });
    }
  });
  return actions;
}
