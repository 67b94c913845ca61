// checkRealPaths against real files, directories and symlinks in a temporary directory.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PathNotAllowedError } from '../../src/errors.js';
import { type Job, type PathRules, checkRealPaths } from '../../src/queue/message.js';

let base = '';
let root = '';
let outside = '';
let rules: PathRules;

function job(gsm: string, wav: string): Job {
  return { jobId: 'j', gsmPath: join(root, gsm), wavPath: join(root, wav) };
}

async function refused(promise: Promise<unknown>, says: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof PathNotAllowedError, `expected PathNotAllowedError, got ${String(error)}`);
    assert.match(error.message, says);
    assert.equal(error.code, 'PATH_NOT_ALLOWED');
    return true;
  });
}

before(async () => {
  base = await mkdtemp(join(tmpdir(), 'audioconvert-paths-'));
  root = join(base, 'root');
  outside = join(base, 'outside');
  rules = { allowedRoots: [root], inputExtension: '.gsm', outputExtension: '.wav' };
  for (const dir of ['gsm', 'wav', 'wav/existing-dir.wav', 'gsm/dir.gsm', 'other']) await mkdir(join(root, dir), { recursive: true });
  await mkdir(join(outside, 'wav'), { recursive: true });
  await writeFile(join(root, 'gsm/a.gsm'), 'gsm');
  await writeFile(join(root, 'gsm/not-a-dir'), 'x');
  await writeFile(join(root, 'secret.txt'), 'x');
  await writeFile(join(root, 'other/b.gsm'), 'gsm');
  await writeFile(join(root, 'wav/old.wav'), 'wav');
  await writeFile(join(outside, 'secret.gsm'), 'outside');
  await writeFile(join(outside, 'target.wav'), 'outside');
  await symlink(join(outside, 'secret.gsm'), join(root, 'gsm/out.gsm'));
  await symlink('../other/b.gsm', join(root, 'gsm/in.gsm'));
  await symlink(join(root, 'secret.txt'), join(root, 'gsm/txt.gsm'));
  await symlink(outside, join(root, 'gsm-out'));
  await symlink(join(root, 'gsm/loop.gsm'), join(root, 'gsm/loop.gsm'));
  await symlink(join(outside, 'not-yet.gsm'), join(root, 'gsm/dangling.gsm'));
  await symlink(join(outside, 'target.wav'), join(root, 'wav/link.wav'));
  await symlink(join(root, 'wav/old.wav'), join(root, 'wav/inner-link.wav'));
  await symlink(join(outside, 'wav'), join(root, 'wav-out'));
  await symlink(root, join(base, 'root-link'));
});

after(async () => {
  await rm(base, { recursive: true, force: true });
});

describe('checkRealPaths: accepted', () => {
  it('a real GSM and a new WAV inside the root', async () => {
    await checkRealPaths(job('gsm/a.gsm', 'wav/new.wav'), rules);
  });

  it('a missing GSM (the dialplan reports input-missing)', async () => {
    await checkRealPaths(job('gsm/missing.gsm', 'wav/new.wav'), rules);
  });

  it('a GSM under a missing directory, or under a file', async () => {
    await checkRealPaths(job('nope/x.gsm', 'wav/new.wav'), rules);
    await checkRealPaths(job('gsm/not-a-dir/x.gsm', 'wav/new.wav'), rules);
  });

  it('a GSM symlink to another .gsm inside the root', async () => {
    await checkRealPaths(job('gsm/in.gsm', 'wav/new.wav'), rules);
  });

  it('an existing regular WAV (a retry overwrites it)', async () => {
    await checkRealPaths(job('gsm/a.gsm', 'wav/old.wav'), rules);
  });

  it('a WAV directly in the root, or in a missing directory', async () => {
    await checkRealPaths(job('gsm/a.gsm', 'x.wav'), rules);
    await checkRealPaths(job('gsm/a.gsm', 'no-such-dir/x.wav'), rules);
  });

  it('a WAV in a dated tree that does not exist yet (the dialplan creates it)', async () => {
    await checkRealPaths(job('gsm/a.gsm', 'wav/2026/12/02/new.wav'), rules);
    await checkRealPaths(job('gsm/a.gsm', 'wav/existing-dir.wav/2026/new.wav'), rules);
  });

  it('a root that is itself a symlink, written with a trailing slash', async () => {
    const viaLink = join(base, 'root-link');
    const linked: PathRules = { ...rules, allowedRoots: [`${viaLink}/`] };
    await checkRealPaths({ jobId: 'j', gsmPath: join(viaLink, 'gsm/a.gsm'), wavPath: join(viaLink, 'wav/new.wav') }, linked);
  });

  it('a root that does not exist', async () => {
    const missing = join(base, 'missing-root');
    const gone: PathRules = { ...rules, allowedRoots: [missing] };
    await checkRealPaths({ jobId: 'j', gsmPath: join(missing, 'a.gsm'), wavPath: join(missing, 'a.wav') }, gone);
  });

  it('a symlink from one allowed root into another', async () => {
    const both: PathRules = { ...rules, allowedRoots: [root, outside] };
    await checkRealPaths(job('gsm/out.gsm', 'wav-out/x.wav'), both);
  });
});

describe('checkRealPaths: refused', () => {
  it('a GSM symlink to a file outside the roots', async () => {
    await refused(
      checkRealPaths(job('gsm/out.gsm', 'wav/new.wav'), rules),
      /^gsm_path .*\/gsm\/out\.gsm resolves to a file outside the allowed roots/,
    );
  });

  it('a GSM under a directory symlinked out of the root', async () => {
    await refused(
      checkRealPaths(job('gsm-out/secret.gsm', 'wav/new.wav'), rules),
      /^gsm_path .* resolves to a file outside the allowed roots/,
    );
  });

  it('a GSM symlink to a file without the .gsm extension', async () => {
    await refused(checkRealPaths(job('gsm/txt.gsm', 'wav/new.wav'), rules), /^gsm_path .* resolves to a file without the \.gsm extension/);
  });

  it('a GSM that is a directory', async () => {
    await refused(checkRealPaths(job('gsm/dir.gsm', 'wav/new.wav'), rules), /^gsm_path .*dir\.gsm is not a regular file$/);
  });

  it('a GSM symlink loop', async () => {
    await refused(checkRealPaths(job('gsm/loop.gsm', 'wav/new.wav'), rules), /^gsm_path .*loop\.gsm is a symlink loop$/);
  });

  it('a dangling GSM symlink (its target could appear anywhere)', async () => {
    await refused(
      checkRealPaths(job('gsm/dangling.gsm', 'wav/new.wav'), rules),
      /^gsm_path .*dangling\.gsm is a symlink to a file that does not exist$/,
    );
  });

  it('a WAV that is a symlink out of the root', async () => {
    await refused(
      checkRealPaths(job('gsm/a.gsm', 'wav/link.wav'), rules),
      /^wav_path .*link\.wav is a symlink; the conversion would write through it$/,
    );
  });

  it('a WAV that is a symlink even inside the root', async () => {
    await refused(checkRealPaths(job('gsm/a.gsm', 'wav/inner-link.wav'), rules), /^wav_path .* is a symlink/);
  });

  it('a WAV whose directory is symlinked out of the root', async () => {
    await refused(
      checkRealPaths(job('gsm/a.gsm', 'wav-out/x.wav'), rules),
      /^wav_path's directory .*wav-out resolves outside the allowed roots/,
    );
  });

  it('a WAV in a directory to create under a directory symlinked out of the root', async () => {
    await refused(
      checkRealPaths(job('gsm/a.gsm', 'wav-out/2026/12/x.wav'), rules),
      /^wav_path's directory .*wav-out\/2026\/12 would be created in .*wav-out, which resolves outside the allowed roots/,
    );
  });

  it('a WAV in a directory to create under a dangling symlink', async () => {
    await symlink(join(outside, 'not-yet-dir'), join(root, 'wav/dangling-dir'));
    await refused(
      checkRealPaths(job('gsm/a.gsm', 'wav/dangling-dir/2026/x.wav'), rules),
      /^wav_path's directory .*dangling-dir is a symlink to something that does not exist$/,
    );
  });

  it('a WAV in a directory to create under a file', async () => {
    await refused(
      checkRealPaths(job('gsm/a.gsm', 'wav/old.wav/2026/x.wav'), rules),
      /^wav_path's directory .*old\.wav is not a directory$/,
    );
  });

  it('a WAV that exists as a directory', async () => {
    await refused(checkRealPaths(job('gsm/a.gsm', 'wav/existing-dir.wav'), rules), /^wav_path .* exists and is not a regular file$/);
  });

  it('a root-prefix sibling reached through a symlink', async () => {
    // root2 shares root's prefix: a link from root into root2 must not count as inside.
    const sibling = `${root}2`;
    await mkdir(sibling, { recursive: true });
    await writeFile(join(sibling, 'c.gsm'), 'x');
    await symlink(join(sibling, 'c.gsm'), join(root, 'gsm/sibling.gsm'));
    await refused(checkRealPaths(job('gsm/sibling.gsm', 'wav/new.wav'), rules), /outside the allowed roots/);
  });
});
