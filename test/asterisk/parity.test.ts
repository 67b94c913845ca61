/**
 * Emulator parity: ONE list of scenarios, run through the AMI emulator (src/emulator, what every
 * other test and benchmark talks to) and through a real Asterisk running the shipped dialplan,
 * each time through the real bridge and RabbitMQ. Each scenario must end the same way on both
 * (status, error code, error message, WAV size), so the emulator cannot drift from the thing it
 * imitates. A scenario whose outcome the contract fixes also says which outcome that is, so two
 * equally wrong answers do not pass.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeDataRoot, makeStack, type DataRoot, type ExternalStack } from '../helpers/stack.js';
import { DIALPLAN_ROOT, realAsterisk, runData, type RealAsterisk, type Result } from './setup.js';

interface Scenario {
  readonly name: string;
  /** The job body, its files prepared in `data` (and `other`, an allowed root the dialplan does not know). */
  job(data: DataRoot, other: DataRoot): Record<string, unknown>;
  /** The outcome the contract fixes, when it fixes one. */
  readonly expect?: RegExp;
  /** Only for this step (a FIFO holds the perl step until its 100 s bound: hung-step.test.ts proves that). */
  readonly only?: 'convert-app';
}

const paths = (data: DataRoot, name: string): { gsm_path: string; wav_path: string } => ({
  gsm_path: path.join(data.gsmDir, `${data.prefix}${name}.gsm`),
  wav_path: data.wav(name),
});

const SCENARIOS: readonly Scenario[] = [
  { name: 'converted', job: (d) => ({ gsm_path: d.gsm('ok'), wav_path: d.wav('ok') }), expect: /^converted wav_bytes=16044$/ },
  { name: 'input missing', job: (d) => paths(d, 'missing'), expect: /^failed INPUT_MISSING / },
  {
    name: 'path in an allowed root the dialplan does not know (invalid-path)',
    job: (_, o) => ({ gsm_path: o.gsm('elsewhere'), wav_path: o.wav('elsewhere') }),
    expect: /^failed PATH_NOT_ALLOWED .*invalid-path/,
  },
  {
    name: 'shell metacharacters in a path (refused by the bridge before AMI)',
    job: (d) => ({ ...paths(d, 'inj'), gsm_path: `${d.gsmDir}/${d.prefix}a.gsm;touch${d.wavDir}/pwned` }),
    expect: /^failed PATH_NOT_ALLOWED /,
  },
  {
    name: '`..` in a path (refused by the bridge)',
    job: (d) => ({ ...paths(d, 'dots'), gsm_path: `${d.gsmDir}/../gsm/${d.prefix}dots.gsm` }),
    expect: /^failed PATH_NOT_ALLOWED /,
  },
  {
    name: 'invalid job_id (refused by the bridge)',
    job: (d) => ({ ...paths(d, 'badid'), job_id: 'bad id' }),
    expect: /^failed INVALID_MESSAGE /,
  },
  {
    name: 'input in a subdirectory of gsm/',
    job: (d) => {
      const dir = path.join(d.gsmDir, `${d.prefix}sub`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(path.join(dir, 'x.gsm'), '');
      return { gsm_path: path.join(dir, 'x.gsm'), wav_path: d.wav('sub') };
    },
  },
  {
    name: 'empty GSM input',
    job: (d) => {
      writeFileSync(path.join(d.gsmDir, `${d.prefix}empty.gsm`), '');
      return paths(d, 'empty');
    },
  },
  {
    name: 'input that is not GSM',
    job: (d) => {
      writeFileSync(path.join(d.gsmDir, `${d.prefix}text.gsm`), 'this is not audio\n'.repeat(100));
      return paths(d, 'text');
    },
  },
  {
    name: 'a cut-short last frame (the whole frames convert)',
    job: (d) => {
      writeFileSync(path.join(d.gsmDir, `${d.prefix}cut.gsm`), readFileSync(d.gsm('cut-src')).subarray(0, 33 * 20 + 5));
      return paths(d, 'cut');
    },
    expect: /^converted wav_bytes=6444$/,
  },
  {
    name: 'a corrupt frame in the middle',
    job: (d) => {
      const b = readFileSync(d.gsm('bad-src'));
      b[33 * 10] = 0;
      writeFileSync(path.join(d.gsmDir, `${d.prefix}bad.gsm`), b);
      return paths(d, 'bad');
    },
  },
  {
    name: 'output in a new dated directory',
    job: (d) => ({ gsm_path: d.gsm('dated'), wav_path: path.join(d.wavDir, `${d.prefix}2026`, '12', '07', 'dated.wav') }),
    expect: /^converted wav_bytes=16044$/,
  },
  {
    name: 'a FIFO named .gsm',
    only: 'convert-app',
    job: (d) => {
      execFileSync('mkfifo', [path.join(d.gsmDir, `${d.prefix}fifo.gsm`)]);
      return paths(d, 'fifo');
    },
  },
  {
    name: 'a directory named .gsm',
    only: 'convert-app',
    job: (d) => {
      mkdirSync(path.join(d.gsmDir, `${d.prefix}dir.gsm`));
      return paths(d, 'dir');
    },
  },
  {
    name: 'WAV already there (a job run twice)',
    job: (d) => {
      writeFileSync(d.wav('twice'), 'old');
      return { gsm_path: d.gsm('twice'), wav_path: d.wav('twice') };
    },
    expect: /^converted wav_bytes=16044$/,
  },
];

const DEPLOYMENT = 'unknown extension in [AsteriskAMI] Exten (deployment error)';

/** One line per outcome; names that differ between runs (file prefix, temp roots, UUIDs) made generic. */
function describeResult(r: Result | undefined, data: DataRoot, other: DataRoot): string {
  if (r === undefined) return 'no result';
  const text =
    r.status === 'converted'
      ? `converted wav_bytes=${r.wav_bytes}`
      : `${r.status} ${r.error?.code} ${r.error?.message} attempts=${r.attempts}`;
  return generic(text, data, other);
}

function generic(text: string, data: DataRoot, other: DataRoot): string {
  return text
    .replaceAll(other.root, '<other-root>')
    .replaceAll(data.prefix, '<run>-')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>');
}

/** Runs every scenario through one stack; then the deployment error through another. */
async function runAll(
  scenarios: readonly Scenario[],
  open: (data: DataRoot, other: DataRoot, exten?: string) => Promise<ExternalStack>,
): Promise<Map<string, string>> {
  const outcomes = new Map<string, string>();
  const other = makeDataRoot();
  try {
    const data = runData();
    const stack = await open(data, other);
    await stack.startService();
    for (const [i, s] of scenarios.entries()) {
      await stack.publish({ job_id: `s${i}`, ...s.job(data, other) }, { messageId: `s${i}` });
    }
    await stack.results.onCount(scenarios.length);
    const byId = new Map(stack.results.bodies<Result>().map((r) => [r.job_id, r]));
    scenarios.forEach((s, i) => outcomes.set(s.name, describeResult(byId.get(`s${i}`), data, other)));
    await stack.close();

    const broken = await open(runData(), other, 'no-such-exten');
    const service = await broken.startService();
    // The deployment error shows in readiness (the event says "look again"): waiting for consuming to
    // turn false would wait forever when the second lane had not subscribed yet, so consuming never was true.
    const refused = new Promise<void>((resolve) => {
      const check = (): void => {
        if (service.readiness().checks['dialplan']?.ok !== false) return;
        service.events.off('readiness', check);
        resolve();
      };
      service.events.on('readiness', check);
    });
    await broken.publish({ job_id: 'deploy', gsm_path: broken.data.gsm('deploy'), wav_path: broken.data.wav('deploy') });
    await refused;
    // The nack that hands the job back follows the pause: wait for the broker to hold it again (bounded).
    for (const deadline = Date.now() + 10_000; (await broken.queueDepth()) < 1 && Date.now() < deadline;)
      await new Promise((r) => setTimeout(r, 50));
    const detail = service.readiness().checks['dialplan']?.detail ?? '';
    outcomes.set(
      DEPLOYMENT,
      generic(`not ready: ${detail}; queued=${await broken.queueDepth()} results=${broken.results.messages.length}`, broken.data, other),
    );
    await broken.close();
  } finally {
    other.remove();
  }
  return outcomes;
}

/**
 * Once per conversion step of the shipped dialplan: the perl step (app_convert not loaded; the
 * emulator's default) and Convert() (app_convert loaded; the emulator's `step: 'convert-app'`).
 */
for (const step of ['perl', 'convert-app'] as const) {
  describe(`emulator parity, ${step} step: the same scenarios end the same way on the emulator and on a real Asterisk`, () => {
    let real: RealAsterisk | undefined;
    let onEmulator: Map<string, string>;
    let onAsterisk: Map<string, string>;
    const scenarios = SCENARIOS.filter((s) => s.only === undefined || s.only === step);

    before(async () => {
      const roots = (other: DataRoot): string => `${DIALPLAN_ROOT}, ${other.root}`;
      onEmulator = await runAll(scenarios, (data, other, exten) =>
        makeStack({
          data,
          emulator: { mode: 'real', root: DIALPLAN_ROOT, step },
          config: { worker: { AllowedRoots: roots(other) }, ami: exten ? { Exten: exten } : {} },
        }),
      );
      real = await realAsterisk({ step });
      const asterisk = real;
      onAsterisk = await runAll(scenarios, (data, other, exten) =>
        asterisk.stack({ worker: { AllowedRoots: roots(other) }, ami: exten ? { Exten: exten } : {} }, data),
      );
    });
    after(() => real?.close());

    for (const s of [...scenarios, { name: DEPLOYMENT, expect: /^not ready: .*Extension does not exist.*; queued=1 results=0$/ }]) {
      it(s.name, (t) => {
        const onReal = onAsterisk.get(s.name);
        t.diagnostic(`real Asterisk: ${onReal}`);
        assert.equal(onEmulator.get(s.name), onReal, 'emulator (actual) vs real Asterisk (expected)');
        if (s.expect) assert.match(onReal ?? '', s.expect);
      });
    }
  });
}
