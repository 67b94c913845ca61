/**
 * What `enqueue --dir` reads: the recordings of one directory, or of a whole tree (`--recursive`,
 * mirrored under `--out`), and which of them already have their WAV (`--skip-existing`).
 */
import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errorCode } from '../errors.js';

/** The directory could not be read; the message names it. */
export class TreeError extends Error {}

/**
 * Paths relative to `dir` of the regular files (or links to files) named *<ext>, sorted by code
 * point (the same order on every machine). With `recursive`, subdirectories at any depth too —
 * real directories only (a symlinked directory could loop or leave the tree) and never hidden ones
 * (a leading dot: the service would refuse the path anyway).
 */
export async function gsmFiles(dir: string, ext: string, recursive: boolean): Promise<string[]> {
  const found: string[] = [];
  const pending: string[] = [''];
  for (let rel = pending.pop(); rel !== undefined; rel = pending.pop()) {
    for (const entry of await entriesOf(dir, rel)) {
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) {
        if (recursive && !entry.name.startsWith('.')) pending.push(path);
      } else if (entry.name.endsWith(ext) && entry.name !== ext && (await isFile(join(dir, path), entry))) {
        found.push(path);
      }
    }
  }
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function entriesOf(dir: string, rel: string): Promise<Dirent[]> {
  const where = rel === '' ? dir : join(dir, rel);
  try {
    return await readdir(where, { withFileTypes: true });
  } catch (error) {
    const code = errorCode(error);
    const why = code === 'ENOENT' ? 'no such directory' : code === 'ENOTDIR' ? 'not a directory' : (error as Error).message;
    throw new TreeError(`--dir ${where}: ${why}`, { cause: error });
  }
}

async function isFile(path: string, entry: Dirent): Promise<boolean> {
  if (entry.isFile()) return true;
  return entry.isSymbolicLink() && (await stat(path).catch(() => undefined))?.isFile() === true;
}

/**
 * Whether a WAV is already there. The dialplan writes it to a temporary name and renames it into
 * place, so a file at the final name is a complete conversion, never a partial one.
 */
export async function wavExists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isFile() === true;
}

/** Runs `test` over `items` with at most `width` at once; returns the flags in order. */
export async function mapBounded<T>(items: readonly T[], width: number, test: (item: T) => Promise<boolean>): Promise<boolean[]> {
  const out: boolean[] = new Array<boolean>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let i = next++; i < items.length; i = next++) out[i] = await test(items[i]!);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return out;
}
