/**
 * Start-up and its failures (issue #10 items 2 and 4): the whole topology exists before the
 * service consumes, so a downstream service can bind to the results exchange as soon as /readyz
 * is 200; a start that fails (HTTP port taken) closes the AMQP and AMI connections it had opened;
 * the CLI says so in one line and exits 1.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import { after, describe, it } from 'node:test';
import { AsteriskEmulator } from '../../src/emulator/server.js';
import { StartupError } from '../../src/errors.js';
import { nullLogger } from '../../src/log.js';
import { start } from '../../src/main.js';
import { brokerNames, publisherQueues } from '../../src/queue/broker.js';
import { cliBridge } from '../helpers/cli-bridge.js';
import { makeDataRoot, makeStack, openRabbit, requireRabbit, testConfig } from '../helpers/stack.js';

/** A port that is taken for the test's duration. */
async function takenPort(): Promise<Server & { port: number }> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  return Object.assign(server, { port: typeof address === 'object' && address !== null ? address.port : 0 });
}

/** Open TCP sockets of this process (public API: process.getActiveResourcesInfo). */
function openSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap' || r === 'TLSSocketWrap').length;
}

describe('start-up', { timeout: 60_000 }, () => {
  it('declares the input, delay and dead-letter queues and the results exchange before /readyz is 200', async () => {
    await requireRabbit();
    const data = makeDataRoot();
    after(() => data.remove());
    const emulator = await AsteriskEmulator.start({ port: 0, root: data.root, mode: 'instant' });
    after(() => emulator.close());
    const config = testConfig(data.root, emulator.port, { worker: { MaxAttempts: '4' } });
    const names = brokerNames(config);
    const rabbit = await openRabbit();
    after(async () => {
      for (const q of [names.queueName, names.deadLetterQueue, ...publisherQueues(names).map((d) => d.queue)])
        await rabbit.queueDelete({ queue: q }).catch(() => undefined);
      await rabbit.exchangeDelete({ exchange: names.resultsExchange }).catch(() => undefined);
      await rabbit.close();
    });
    await assert.rejects(
      rabbit.exchangeDeclare({ exchange: names.resultsExchange, type: 'topic', passive: true }),
      /NOT_FOUND/,
      'a fresh exchange name',
    );

    const service = await start(config, { logger: nullLogger(), version: 'test' });
    after(() => service.close());
    if (!service.readiness().ready) await once(service.events, 'consuming');
    const readyz = await fetch(`http://127.0.0.1:${service.httpPort}/readyz`);
    assert.equal(readyz.status, 200);

    // A downstream service binds to the results exchange now, before any job ran.
    const downstream = `${names.queueName}.downstream`;
    await rabbit.queueDeclare({ queue: downstream, exclusive: true });
    await rabbit.queueBind({ queue: downstream, exchange: names.resultsExchange, routingKey: '#' });
    await rabbit.exchangeDeclare({ exchange: names.resultsExchange, type: 'topic', passive: true });
    await rabbit.queueDeclare({ queue: names.deadLetterQueue, passive: true });
    const delays = publisherQueues(names).filter((d) => d.queue !== names.deadLetterQueue);
    assert.equal(delays.length, 3, 'MaxAttempts 4: three delay queues');
    for (const d of delays) await rabbit.queueDeclare({ queue: d.queue, passive: true });
  });

  it('start() with the HTTP port taken rejects with one clear error and leaves no AMQP or AMI socket open', async () => {
    const port = await takenPort();
    after(() => port.close());
    const stack = await makeStack({ config: { metrics: `127.0.0.1:${port.port}` } });
    after(() => stack.close());
    const before = openSockets();
    const attempt = start(stack.config, { logger: nullLogger(), version: 'test' });
    await assert.rejects(attempt, (error: unknown) => {
      assert.ok(error instanceof StartupError, String(error));
      assert.match(error.message, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port.port} for /metrics: EADDRINUSE`));
      return true;
    });
    assert.equal(openSockets(), before, 'the AMQP and AMI sockets start() had opened are closed');
  });

  it('the CLI with the HTTP port taken prints one line, no stack trace, and exits 1', async () => {
    const port = await takenPort();
    after(() => port.close());
    const stack = await makeStack();
    after(() => stack.close());
    const bridge = cliBridge(stack, stack.emulator.port, 'port-taken', { listen: `127.0.0.1:${port.port}` });
    after(() => bridge.remove());
    const lines: string[] = [];
    bridge.on('log', (line: Record<string, unknown>) => lines.push(String(line['message'])));
    const exit = new Promise<{ code: number | null }>((resolve) => bridge.once('exit', resolve));
    bridge.start();
    const { code } = await exit;
    assert.equal(code, 1);
    // Nothing was taken: no drain to announce, only the connections it had opened to close.
    assert.deepEqual(
      lines.filter((l) => /jobs in flight|drain/.test(l)),
      [],
      `a failed start logs no drain wording:\n${lines.join('\n')}`,
    );
    assert.ok(lines.includes('start failed: closing the connections it had opened'), lines.join('\n'));
    assert.equal(bridge.stray.length, 1, `one line that is not a log line: ${JSON.stringify(bridge.stray)}`);
    assert.match(
      bridge.stray[0] ?? '',
      /^audio-convert: cannot listen on 127\.0\.0\.1:\d+ for \/metrics: EADDRINUSE \(another process uses the port: change \[Metrics\] Listen\)$/,
    );
  });
});
