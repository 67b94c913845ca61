/**
 * Test harness: a real RabbitMQ (unique queue, exchange and DLQ per test), the AMI emulator over
 * real TCP, a temp data root with real GSM files, and the service started in-process or as the
 * built CLI. Everything created is removed by `close()`.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once, type EventEmitter } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Connection, type AsyncMessage, type Consumer } from 'rabbitmq-client';
import { parseConfig, type Config } from '../../src/config.js';
import { AsteriskEmulator, type EmulatorOptions } from '../../src/emulator/server.js';
import { createLogger, nullLogger, type Logger } from '../../src/log.js';
import { start, type Service, type ServiceEventMap } from '../../src/main.js';
import { brokerNames, mainQueueDeclare, publisherQueues } from '../../src/queue/broker.js';
import { serviceQueues } from '../../src/worker/lanes.js';

export const AMQP_URL = process.env['AUDIOCONVERT_TEST_AMQP_URL'] ?? 'amqp://guest:guest@127.0.0.1:5672';

/** Fails (never skips) with a message saying how to start RabbitMQ when it is not reachable. */
export async function requireRabbit(): Promise<void> {
  const conn = new Connection({ url: AMQP_URL, connectionTimeout: 3000, retryLow: 100, retryHigh: 200 });
  conn.on('error', () => {});
  try {
    await conn.onConnect(5000);
  } catch (error) {
    // onConnect has closed the connection already: a second close() would never resolve, and
    // the test process would end with this promise pending instead of this message.
    assert.fail(
      `RabbitMQ is not reachable at ${AMQP_URL} (${String(error)}). The integration tests need a real broker: ` +
        `start it with 'rabbitmq-server -detached' (or 'systemctl start rabbitmq-server'; install: apt-get install rabbitmq-server), ` +
        `or point AUDIOCONVERT_TEST_AMQP_URL at one. .ci/run does this for you.`,
    );
  }
  await conn.close();
}

/** A connection to the test broker; fails (never skips) with how to start RabbitMQ. Close it yourself. */
export async function openRabbit(): Promise<Connection> {
  await requireRabbit();
  const conn = new Connection({ url: AMQP_URL, retryLow: 200, retryHigh: 1000 });
  conn.on('error', () => undefined);
  await conn.onConnect(5000);
  return conn;
}

/** Resolves when the stack's service emits `event` with `value` (listener registered now). */
export function onServiceEvent<K extends keyof ServiceEventMap>(
  stack: Pick<Stack, 'service'>,
  event: K,
  value: ServiceEventMap[K][0],
): Promise<void> {
  // The typed map is checked at the call site; here the emitter is used by name.
  const events = stack.service?.events as EventEmitter | undefined;
  return new Promise((resolve) => {
    const listener = (v: unknown): void => {
      if (v !== value) return;
      events?.off(event, listener);
      resolve();
    };
    events?.on(event, listener);
  });
}

export interface DataRoot {
  readonly root: string;
  readonly gsmDir: string;
  readonly wavDir: string;
  /** Put before every file name (empty for a temp root of its own). */
  readonly prefix: string;
  /** Writes a real GSM file of `seconds` seconds (sox) and returns its path. */
  gsm(name: string, seconds?: number): string;
  wav(name: string): string;
  remove(): void;
}

export interface DataRootOptions {
  /** An existing root to use (e.g. /var/local/auditorai for a real Asterisk): gsm/ and wav/ are created in it if missing. */
  readonly root?: string;
  /** Put before every file name, so that runs sharing a root never meet; remove() deletes only these files. */
  readonly prefix?: string;
}

/** A temp data root laid out like /var/local/auditorai: gsm/ and wav/ (or a shared root, see options). */
export function makeDataRoot(options: DataRootOptions = {}): DataRoot {
  const shared = options.root !== undefined;
  const root = options.root ?? mkdtempSync(path.join(tmpdir(), 'ac-root-'));
  const prefix = options.prefix ?? '';
  // Without a prefix, remove() on a shared root would delete every other run's files.
  if (shared && prefix === '') throw new Error(`makeDataRoot: a shared root (${root}) needs a file-name prefix`);
  const gsmDir = path.join(root, 'gsm');
  const wavDir = path.join(root, 'wav');
  mkdirSync(gsmDir, { recursive: true });
  mkdirSync(wavDir, { recursive: true });
  let template: string | undefined;
  return {
    root,
    gsmDir,
    wavDir,
    prefix,
    gsm(name, seconds = 1) {
      const file = path.join(gsmDir, `${prefix}${name}.gsm`);
      if (seconds === 1) {
        // One sox run, then copies: 200 files must not cost 200 process spawns.
        template ??= synthGsm(path.join(shared ? gsmDir : root, `${prefix}template.gsm`), 1);
        execFileSync('cp', [template, file]);
      } else {
        synthGsm(file, seconds);
      }
      return file;
    },
    wav: (name) => path.join(wavDir, `${prefix}${name}.wav`),
    remove() {
      if (!shared) return rmSync(root, { recursive: true, force: true });
      for (const dir of [gsmDir, wavDir]) {
        for (const f of readdirSync(dir)) if (f.startsWith(prefix)) rmSync(path.join(dir, f), { recursive: true, force: true });
      }
    },
  };
}

function synthGsm(file: string, seconds: number): string {
  execFileSync('sox', ['-n', '-r', '8000', '-c', '1', '-t', 'gsm', file, 'synth', String(seconds), 'sine', '440']);
  return file;
}

export interface ConfigOverrides {
  readonly worker?: Record<string, string>;
  readonly ami?: Record<string, string>;
  readonly rabbitmq?: Record<string, string>;
  readonly metrics?: string;
}

/** A Config for one test: unique queue, exchange and DLQ; AMI at the emulator; the temp root allowed. */
export function testConfig(root: string, amiPort: number, overrides: ConfigOverrides = {}): Config {
  const id = randomUUID().slice(0, 8);
  const section = (name: string, values: Record<string, string>): string =>
    `[${name}]\n${Object.entries(values)
      .map(([k, v]) => `${k} = ${v}`)
      .join('\n')}\n`;
  // A HostName (e.g. a list of nodes) replaces the Url: the test broker's credentials go in the parts.
  const url = new URL(AMQP_URL);
  const broker =
    overrides.rabbitmq?.['HostName'] === undefined
      ? { Url: AMQP_URL }
      : { UserName: decodeURIComponent(url.username || 'guest'), Password: decodeURIComponent(url.password || 'guest') };
  const text = [
    section('RabbitMQ', {
      ...broker,
      QueueName: `test.${id}`,
      ResultsExchange: `test.${id}.results`,
      DeadLetterQueue: `test.${id}.dead`,
      ...overrides.rabbitmq,
    }),
    section('AsteriskAMI', {
      Addr: '127.0.0.1',
      Port: String(amiPort),
      User: 'auditorai',
      Secret: 'simulator',
      PingInterval: '1',
      ...overrides.ami,
    }),
    section('Worker', {
      Concurrency: '4',
      JobTimeout: '10',
      MaxAttempts: '3',
      RetryDelay: '50ms',
      RetryMaxDelay: '200ms',
      DrainTimeout: '5',
      // Test inputs are written whole just before their job: no settle wait (settle tests set their own).
      SettleTime: '0',
      AllowedRoots: root,
      ...overrides.worker,
    }),
    section('Metrics', { Listen: overrides.metrics ?? '127.0.0.1:0' }),
    section('Logging', { MinimumLevel: 'ERROR' }),
  ].join('\n');
  return parseConfig(text, `<test ${id}>`, {});
}

/** Collects every message of a queue (a test's own queue bound to an exchange, or the DLQ). */
export class Collector {
  readonly messages: AsyncMessage[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];
  constructor(readonly consumer: Consumer) {}

  push(message: AsyncMessage): void {
    this.messages.push(message);
    this.waiters = this.waiters.filter((w) => (this.messages.length >= w.n ? (w.resolve(), false) : true));
  }

  /** Resolves when at least n messages have arrived. */
  onCount(n: number): Promise<void> {
    if (this.messages.length >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  bodies<T = Record<string, unknown>>(): T[] {
    return this.messages.map((m) => (Buffer.isBuffer(m.body) ? JSON.parse(m.body.toString()) : m.body) as T);
  }
}

export interface Stack {
  readonly config: Config;
  readonly emulator: AsteriskEmulator;
  readonly data: DataRoot;
  readonly amqp: Connection;
  readonly results: Collector;
  readonly dead: Collector;
  service: Service | undefined;
  /** Starts the service in-process. */
  startService(): Promise<Service>;
  /** Publishes a job (object bodies as JSON) to the input queue. */
  publish(body: unknown, props?: Record<string, unknown>): Promise<void>;
  /** Messages waiting in the input queue (ready, not unacked). */
  queueDepth(): Promise<number>;
  close(): Promise<void>;
}

export interface StackOptions {
  readonly emulator?: EmulatorOptions;
  readonly config?: ConfigOverrides;
  /** The data root (default: a fresh temp one, removed by close()). */
  readonly data?: DataRoot;
  /** false: nothing consumes the dead-letter queue (records stay there; `dead` stays empty). Default true. */
  readonly collectDeadLetters?: boolean;
}

/** Brings up broker objects, emulator and data root; the service is started by startService(). */
export async function makeStack(options: StackOptions = {}): Promise<Stack> {
  await requireRabbit();
  const data = options.data ?? makeDataRoot();
  const emulator = await AsteriskEmulator.start({ port: 0, root: data.root, mode: 'real', ...options.emulator });
  const config = testConfig(data.root, emulator.port, options.config);
  return assemble(config, data, { emulator }, () => emulator.close(), options.collectDeadLetters ?? true);
}

/** An AMI the stack does not own (a real Asterisk): where it is and the bridge's login. */
export interface ExternalAmi {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly secret: string;
}

/** A stack whose service talks to an AMI it did not start. */
export type ExternalStack = Omit<Stack, 'emulator'>;

/** Like makeStack, but the service logs in to `ami` (e.g. a real Asterisk) instead of an emulator. */
export async function makeStackOn(ami: ExternalAmi, options: Omit<StackOptions, 'emulator'> = {}): Promise<ExternalStack> {
  await requireRabbit();
  const data = options.data ?? makeDataRoot();
  const amiKeys = { Addr: ami.host, User: ami.user, Secret: ami.secret, ...options.config?.ami };
  const config = testConfig(data.root, ami.port, { ...options.config, ami: amiKeys });
  return assemble(config, data, {}, () => Promise.resolve(), options.collectDeadLetters ?? true);
}

async function assemble<E extends object>(
  config: Config,
  data: DataRoot,
  extra: E,
  closeAmi: () => Promise<void>,
  collectDead: boolean,
): Promise<Omit<Stack, 'emulator'> & E> {
  const names = brokerNames(config);
  const amqp = new Connection(AMQP_URL);
  amqp.on('error', () => {});
  const resultsQueue = `${config.rabbitmq.queueName}.observed-results`;
  const results: Collector = new Collector(
    amqp.createConsumer(
      {
        queue: resultsQueue,
        queueOptions: { exclusive: true, autoDelete: true },
        exchanges: [{ exchange: names.resultsExchange, type: 'topic', durable: true }],
        queueBindings: [{ exchange: names.resultsExchange, queue: resultsQueue, routingKey: '#' }],
      },
      (m) => results.push(m),
    ),
  );
  if (!collectDead) await amqp.queueDeclare({ queue: names.deadLetterQueue, durable: true });
  const dead: Collector = new Collector(
    // Declared as the service declares it (a quorum DLQ has arguments).
    amqp.createConsumer(
      {
        queue: collectDead ? names.deadLetterQueue : `${names.deadLetterQueue}.unused`,
        queueOptions: collectDead
          ? (publisherQueues(names)[0] ?? { durable: true })
          : { durable: false, exclusive: true, autoDelete: true },
      },
      (m) => dead.push(m),
    ),
  );
  results.consumer.on('error', () => {});
  dead.consumer.on('error', () => {});
  await Promise.all([once(results.consumer, 'ready'), once(dead.consumer, 'ready')]);
  const publisher = amqp.createPublisher({ confirm: true });
  await amqp.queueDeclare(mainQueueDeclare(names));

  const stack: Omit<Stack, 'emulator'> & E = {
    ...extra,
    config,
    data,
    amqp,
    results,
    dead,
    service: undefined,
    async startService() {
      stack.service = await start(config, { logger: testLogger(), version: 'test' });
      return stack.service;
    },
    async publish(body, props = {}) {
      await publisher.send({ routingKey: names.queueName, durable: true, ...props }, body);
    },
    async queueDepth() {
      return (await amqp.queueDeclare({ queue: names.queueName, passive: true })).messageCount;
    },
    async close() {
      await stack.service?.close();
      await Promise.allSettled([results.consumer.close(), dead.consumer.close(), publisher.close()]);
      for (const q of serviceQueues(names)) {
        await amqp.queueDelete({ queue: q }).catch(() => {});
      }
      await amqp.exchangeDelete({ exchange: names.resultsExchange }).catch(() => {});
      await amqp.close();
      await closeAmi();
      data.remove();
    },
  };
  return stack;
}

/** Silent, unless AUDIOCONVERT_TEST_LOG names a level (debugging a failing test). */
function testLogger(): Logger {
  const level = process.env['AUDIOCONVERT_TEST_LOG'];
  return level ? createLogger({ level: level as 'debug', format: 'text' }) : nullLogger();
}

/** A valid job body for `name` in the stack's data root (the GSM file is created unless told not to). */
export function job(stack: Pick<Stack, 'data'>, name: string, createInput = true): { job_id: string; gsm_path: string; wav_path: string } {
  const gsm = createInput ? stack.data.gsm(name) : path.join(stack.data.gsmDir, `${name}.gsm`);
  return { job_id: name, gsm_path: gsm, wav_path: stack.data.wav(name) };
}

/** Writes a file (helper for tests that need odd inputs). */
export function writeFile(file: string, content: string | Buffer): void {
  writeFileSync(file, content);
}
