/**
 * Backfilling an archive with `enqueue --dir --recursive`: the tree is mirrored under --out and
 * converted by the real service (emulator, real sox) into directories that did not exist; a re-run
 * with --skip-existing enqueues nothing for what is converted, and only what is missing otherwise;
 * --dry-run lists the jobs and sends nothing.
 */
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import type { EnqueueArgs } from '../../src/tools/enqueue-plan.js';
import { runEnqueue } from '../../src/tools/enqueue.js';
import { makeStack, type Stack } from '../helpers/stack.js';
import { capture } from '../helpers/capture.js';
import { readWav } from '../helpers/wav.js';

/** An archive under gsm/: dated directories, a hidden one, a symlinked one (neither is read). */
function archive(stack: Stack): string[] {
  const rels = ['2026/11/30/a.gsm', '2026/12/01/b.gsm', '2026/12/01/c.gsm', '2026/12/02/d.gsm', 'top.gsm'];
  for (const rel of [...rels, '.trash/x.gsm']) {
    const file = path.join(stack.data.gsmDir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    renameSync(stack.data.gsm(`tmp-${rel.replaceAll('/', '-')}`), file);
  }
  symlinkSync(path.join(stack.data.gsmDir, '2026'), path.join(stack.data.gsmDir, 'linked'));
  return rels;
}

const args = (stack: Stack, more: Partial<EnqueueArgs>): EnqueueArgs => ({
  positionals: [],
  dir: stack.data.gsmDir,
  out: stack.data.wavDir,
  recursive: true,
  ...more,
});

describe('backfill an archive', () => {
  it('--recursive mirrors the tree, converts into new directories; a re-run with --skip-existing queues nothing', async () => {
    const stack = await makeStack();
    after(() => stack.close());
    const rels = archive(stack);
    await stack.startService();

    const dry = capture();
    assert.equal(await runEnqueue(stack.config, args(stack, { dryRun: true }), dry.io), 0, dry.err());
    const listed = dry.out().trim().split('\n');
    assert.deepEqual(
      listed.map((l) => l.split(' → ')[1]),
      rels.map((r) => path.join(stack.data.wavDir, r.replace(/\.gsm$/, '.wav'))),
      'sorted, mirrored, no hidden or symlinked directory',
    );
    assert.match(listed[0]!, /^would queue a-[0-9a-f]{6} \S+\/gsm\/2026\/11\/30\/a\.gsm → /);
    assert.equal(await stack.queueDepth(), 0, 'a dry run sends nothing');

    const first = capture();
    assert.equal(await runEnqueue(stack.config, args(stack, { wait: true, skipExisting: true }), first.io), 0, first.err());
    for (const rel of rels)
      assert.ok(Math.abs(readWav(path.join(stack.data.wavDir, rel.replace(/\.gsm$/, '.wav'))).seconds - 1) < 0.05, rel);

    const again = capture();
    assert.equal(await runEnqueue(stack.config, args(stack, { skipExisting: true }), again.io), 0, again.err());
    assert.equal(again.out(), '');
    assert.equal(again.err(), `nothing to enqueue: all ${rels.length} recordings have their WAV already\n`);
    assert.equal(await stack.queueDepth(), 0);

    // One WAV lost: only that one is queued again.
    rmSync(path.join(stack.data.wavDir, '2026/12/01/c.wav'));
    const partial = capture();
    assert.equal(await runEnqueue(stack.config, args(stack, { skipExisting: true, dryRun: true }), partial.io), 0);
    assert.match(partial.out(), /^would queue c-[0-9a-f]{6} \S+\/gsm\/2026\/12\/01\/c\.gsm → \S+\/wav\/2026\/12\/01\/c\.wav\n$/);
    assert.equal(partial.err(), `dry run: would queue 1 job (skipped ${rels.length - 1} whose WAV exists); nothing sent\n`);
  });

  it('--bulk queues on the bulk queue; the service converts it as class bulk', async () => {
    const stack = await makeStack();
    after(() => stack.close());
    const rels = archive(stack);
    const service = await stack.startService();
    const c = capture();
    assert.equal(await runEnqueue(stack.config, args(stack, { bulk: true, wait: true }), c.io), 0, c.err());
    assert.match(c.err(), new RegExp(`^queued ${rels.length} jobs on '${stack.config.rabbitmq.queueName}\\.bulk'; waiting`, 'm'));
    const text = await service.metrics.registry.metrics();
    assert.match(text, new RegExp(`^audioconvert_jobs_completed_total\\{class="bulk",result="converted"\\} ${rels.length}$`, 'm'));
    assert.match(text, /^audioconvert_jobs_completed_total\{class="live",result="converted"\} 0$/m);
  });

  it('without --recursive only the top directory is read', async () => {
    const stack = await makeStack();
    after(() => stack.close());
    archive(stack);
    const c = capture();
    assert.equal(await runEnqueue(stack.config, args(stack, { recursive: false, dryRun: true }), c.io), 0);
    assert.match(c.out(), /^would queue top-[0-9a-f]{6} \S+\/gsm\/top\.gsm → \S+\/wav\/top\.wav\n$/);
  });
});
