/**
 * The built CLI as a child process on a test stack (test/helpers/stack.ts): its config file says
 * what the stack's in-process Config says, so the stack's close() removes everything it declared.
 * Plus waiters the process tests share.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AsyncMessage } from 'rabbitmq-client';
import type { AsteriskEmulator } from '../../src/emulator/server.js';
import { BridgeProcess, type BridgeConfig } from '../../scripts/chaos/bridge.js';
import { cliRunnableBy } from './readable-app.js';
import { AMQP_URL, Collector, type Stack } from './stack.js';

/** A bridge process for the stack's queue and emulator; `after()` cleanup is the caller's (kill + remove). */
export function cliBridge(
  stack: Pick<Stack, 'config' | 'emulator' | 'data'>,
  amiPort = stack.emulator.port,
  label = 'bridge',
  extra: Pick<BridgeConfig, 'listen' | 'runAs' | 'ami' | 'rabbitmq'> = {},
): BridgeProcess & { remove(): Promise<void> } {
  const { rabbitmq, worker } = stack.config;
  const dir = mkdtempSync(path.join(tmpdir(), 'ac-cli-'));
  // Another user needs to reach the config file in it.
  if (extra.runAs !== undefined) chmodSync(dir, 0o755);
  const bridge = new BridgeProcess(
    {
      amqpUrl: AMQP_URL,
      names: { queueName: rabbitmq.queueName, resultsExchange: rabbitmq.resultsExchange, deadLetterQueue: rabbitmq.deadLetterQueue },
      amiPort,
      root: stack.data.root,
      // Same retry delays and attempts as the stack's Config: the same delay queues, which close() deletes.
      worker: {
        Concurrency: String(worker.concurrency),
        JobTimeout: `${worker.jobTimeoutMs}ms`,
        MaxAttempts: String(worker.maxAttempts),
        RetryDelay: `${worker.retryDelayMs}ms`,
        RetryMaxDelay: `${worker.retryMaxDelayMs}ms`,
        DrainTimeout: `${worker.drainTimeoutMs}ms`,
        SettleTime: `${worker.settleTimeMs}ms`,
      },
      logLevel: 'INFO',
      ...extra,
      // Another user may not reach the checkout (a clone in a 0700 folder): a copy it can run.
      ...(extra.runAs === undefined ? {} : { cli: cliRunnableBy(extra.runAs) }),
    },
    dir,
    label,
  );
  return Object.assign(bridge, {
    async remove() {
      await bridge.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  });
}

/** Resolves once the emulator has accepted `n` more Originates (jobs are then in flight). */
export function onOriginates(emulator: AsteriskEmulator, n: number): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    const listener = (): void => {
      if (++seen < n) return;
      emulator.off('originate', listener);
      resolve();
    };
    emulator.on('originate', listener);
  });
}

/**
 * Takes `n` messages off the stack's input queue (waiting for them: messages a dead process held
 * come back when the broker notices) and returns their job ids. Fails the test if more arrive.
 */
export async function takeFromQueue(stack: Pick<Stack, 'amqp' | 'config'>, n: number): Promise<string[]> {
  const collector: Collector = new Collector(
    stack.amqp.createConsumer(
      { queue: stack.config.rabbitmq.queueName, queueOptions: { durable: true }, qos: { prefetchCount: 1000 } },
      (m: AsyncMessage) => collector.push(m),
    ),
  );
  collector.consumer.on('error', () => {});
  await collector.onCount(n);
  await collector.consumer.close();
  const extra = await stack.amqp.basicGet({ queue: stack.config.rabbitmq.queueName, noAck: true });
  if (extra !== undefined) throw new Error(`more than ${n} messages in ${stack.config.rabbitmq.queueName}`);
  return collector.bodies<{ job_id: string }>().map((b) => b.job_id);
}
