/**
 * `npm run demo`: the product's main job on this machine, start to finish. Starts the built-in
 * Asterisk simulator (real sox conversions) and the bridge against the local RabbitMQ, makes a few
 * real GSM recordings, enqueues them with `audio-convert enqueue --wait` (plus one whose input is
 * missing, to show a failure), prints what happened, and cleans up after itself.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.js';
import { AsteriskEmulator } from '../src/emulator/server.js';
import { createLogger } from '../src/log.js';
import { start } from '../src/main.js';
import { brokerNames } from '../src/queue/broker.js';
import { runEnqueue } from '../src/tools/enqueue.js';
import { connectRabbit, RabbitConnectError } from '../src/tools/rabbit.js';
import { serviceQueues } from '../src/worker/lanes.js';

// Not under the checkout: the dialplan (and the emulator, which follows it) accepts only roots made of
// [A-Za-z0-9_-] names, and a checkout's path may hold a dot or a hidden directory.
const root = path.join(os.tmpdir(), 'audio-convert-demo');
const say = (text: string): void => void process.stdout.write(`\n== ${text}\n`);

/** A few "calls" of different lengths: tones and noise, encoded as GSM by sox. */
const RECORDINGS: [name: string, seconds: number, synth: string[]][] = [
  ['call-1001', 2, ['sine', '440']],
  ['call-1002', 4, ['sine', '300-3000']],
  ['call-1003', 1, ['pinknoise']],
  ['call-1004', 3, ['square', '220']],
  ['call-1005', 5, ['sine', '880', 'vol', '0.3']],
];

function makeRecordings(): void {
  rmSync(root, { recursive: true, force: true });
  for (const dir of ['gsm', 'wav']) mkdirSync(path.join(root, dir), { recursive: true });
  for (const [name, seconds, synth] of RECORDINGS) {
    const file = path.join(root, 'gsm', `${name}.gsm`);
    execFileSync('sox', ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', file, 'synth', String(seconds), ...synth]);
    process.stdout.write(`  ${file}  ${statSync(file).size} bytes, ${seconds} s\n`);
  }
}

function writeConfig(amiPort: number): string {
  const file = path.join(root, 'transcoding.conf');
  writeFileSync(
    file,
    [
      '[RabbitMQ]',
      'HostName = 127.0.0.1',
      'QueueName = AudioConvert.Demo',
      'ResultsExchange = AudioConvert.Demo.results',
      'DeadLetterQueue = AudioConvert.Demo.dead',
      '[AsteriskAMI]',
      'Addr = 127.0.0.1',
      `Port = ${amiPort}`,
      'User = auditorai',
      'Secret = simulator',
      '[Worker]',
      'Concurrency = 4',
      'JobTimeout = 30',
      // The demo writes its recordings whole just before it queues them: no need to wait for them to settle.
      'SettleTime = 0',
      `AllowedRoots = ${root}`,
      '[Metrics]',
      'Listen = 127.0.0.1:0',
      '[Logging]',
      'MinimumLevel = INFO',
      'Format = text',
    ].join('\n') + '\n',
    { mode: 0o600 },
  );
  return file;
}

/** What the demo needs and this machine lacks, one line with the fix; undefined when all is there. */
function missingTool(): string | undefined {
  const sox = spawnSync('sox', ['--version'], { stdio: 'ignore' });
  if (sox.error !== undefined)
    return `the demo needs sox (it makes the GSM recordings; the simulator converts with it), and ${(sox.error as NodeJS.ErrnoException).code === 'ENOENT' ? 'it is not installed' : sox.error.message}: npm run setup (or: sudo apt-get install sox)`;
  return undefined;
}

async function main(): Promise<number> {
  const missing = missingTool();
  if (missing !== undefined) {
    process.stderr.write(`${missing}\n`);
    return 1;
  }
  say('making 5 GSM recordings (sox)');
  makeRecordings();

  say('starting the Asterisk simulator (AMI on loopback; converts with sox: the same WAV the shipped dialplan writes with untoast)');
  const emulator = await AsteriskEmulator.start({ port: 0, root, mode: 'real' });
  process.stdout.write(`  AMI on ${emulator.host}:${emulator.port}\n`);
  const config = loadConfig(writeConfig(emulator.port), {});

  try {
    (await connectRabbit(config, 'audio-convert demo check')).close().catch(() => {});
  } catch (error) {
    const problem = error instanceof RabbitConnectError ? `${error.problem}; fix: ${error.fix}` : String(error);
    process.stderr.write(`\nRabbitMQ is needed for the demo: ${problem} (npm run setup starts a local one)\n`);
    await emulator.close();
    return 1;
  }

  say('starting the bridge (RabbitMQ queue AudioConvert.Demo → AMI Originate → result)');
  const logger = createLogger({ level: 'info', format: 'text' });
  const service = await start(config, { logger, version: 'demo' });
  const io = { stdout: process.stdout, stderr: process.stderr };
  let code = 0;
  try {
    say(`enqueue --dir ${root}/gsm --out ${root}/wav --wait`);
    code = await runEnqueue(
      config,
      { positionals: [], dir: path.join(root, 'gsm'), out: path.join(root, 'wav'), wait: true, timeout: '60' },
      io,
    );

    say('and one job whose recording does not exist (it is dead-lettered with a reason, not retried)');
    await runEnqueue(
      config,
      { positionals: [path.join(root, 'gsm', 'missing.gsm'), path.join(root, 'wav', 'missing.wav')], wait: true, timeout: '30' },
      io,
    );

    say('the WAV files Asterisk wrote');
    for (const [name] of RECORDINGS) {
      const wav = path.join(root, 'wav', `${name}.wav`);
      const info = execFileSync('soxi', [wav], { encoding: 'utf8' });
      const pick = (key: string): string => new RegExp(`${key}\\s*:\\s*([^=\\n]*)`).exec(info)?.[1]?.trim() ?? '?';
      process.stdout.write(`  ${wav}  ${pick('Sample Rate')} Hz, ${pick('Channels')} ch, ${pick('Precision')}, ${pick('Duration')}\n`);
    }
    const ready = await fetch(`http://127.0.0.1:${service.httpPort}/readyz`);
    say(`/readyz → ${ready.status}; metrics: http://127.0.0.1:${service.httpPort}/metrics`);
    const metrics = await service.metrics.registry.getSingleMetricAsString('audioconvert_jobs_completed_total');
    process.stdout.write(
      metrics
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .map((l) => `  ${l}\n`)
        .join(''),
    );
  } finally {
    say('stopping (drain, Logoff, close) and removing the demo queues');
    await service.close();
    await emulator.close();
    await removeDemoQueues(config);
  }
  say(code === 0 ? 'demo finished: every recording converted' : 'demo finished with failures (see above)');
  return code;
}

async function removeDemoQueues(config: ReturnType<typeof loadConfig>): Promise<void> {
  const names = brokerNames(config);
  const conn = await connectRabbit(config, 'audio-convert demo cleanup');
  for (const q of serviceQueues(names)) {
    await conn.queueDelete({ queue: q }).catch(() => {});
  }
  await conn.exchangeDelete({ exchange: names.resultsExchange }).catch(() => {});
  await conn.close();
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
