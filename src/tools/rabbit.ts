/**
 * Connecting to RabbitMQ from the short-lived tools (`enqueue`, `doctor`): one attempt window,
 * then a clear problem and a concrete fix instead of the service's reconnect-forever loop.
 */
import { Connection } from 'rabbitmq-client';
import { redactUrl, type Config } from '../config.js';
import { amqpTlsOptions } from '../connections.js';
import { amqpTarget } from '../queue/nodes.js';
import { errorCode, errorText } from '../errors.js';

/** Why the broker could not be used, and what to do about it. */
export class RabbitConnectError extends Error {
  constructor(
    readonly problem: string,
    readonly fix: string,
    options?: { cause?: unknown },
  ) {
    super(`${problem}\nfix: ${fix}`, options);
    this.name = 'RabbitConnectError';
  }
}

export const START_RABBITMQ = 'systemctl start rabbitmq-server (or rabbitmq-server -detached)';

/**
 * Connects within `timeoutMs` or throws a {@link RabbitConnectError}. The connection gives up
 * (closes itself) when the window passes, so nothing keeps the process alive.
 */
export async function connectRabbit(config: Config, name: string, timeoutMs = 5000): Promise<Connection> {
  const connection = new Connection({
    ...amqpTarget(config.rabbitmq),
    connectionName: name,
    connectionTimeout: timeoutMs,
    retryLow: 200,
    retryHigh: 1000,
    ...amqpTlsOptions(config.rabbitmq),
  });
  // Without a listener an 'error' event would throw; the last one says why the window passed.
  let lastError: unknown;
  connection.on('error', (error: unknown) => {
    lastError = error;
  });
  try {
    await connection.onConnect(timeoutMs);
    return connection;
  } catch (error) {
    // onConnect has closed the connection already; a second close() would never resolve.
    throw describeConnectFailure(config, lastError ?? error);
  }
}

/** Turns a connection error into a problem and a fix a person can act on. */
export function describeConnectFailure(config: Config, error: unknown): RabbitConnectError {
  const { rabbitmq, file } = config;
  const where = rabbitmq.hosts.length > 1 ? `${redactUrl(rabbitmq.url)} (or any of ${rabbitmq.hosts.join(', ')})` : redactUrl(rabbitmq.url);
  const code = errorCode(error) ?? '';
  const text = errorText(error);
  if (code === 'ACCESS_REFUSED') {
    return new RabbitConnectError(
      `RabbitMQ at ${where} refused the login of user '${rabbitmq.username}'`,
      `check [RabbitMQ] UserName/Password in ${file} (or AUDIOCONVERT_AMQP_PASSWORD); ` +
        `test them with: rabbitmqctl authenticate_user ${rabbitmq.username} PASSWORD`,
      { cause: error },
    );
  }
  if (code === 'NOT_ALLOWED') {
    return new RabbitConnectError(
      `RabbitMQ at ${where} does not let user '${rabbitmq.username}' into vhost '${rabbitmq.vhost}': ${text}`,
      `check [RabbitMQ] VirtualHost in ${file}, or create it and grant access: ` +
        `rabbitmqctl add_vhost '${rabbitmq.vhost}' && rabbitmqctl set_permissions -p '${rabbitmq.vhost}' ${rabbitmq.username} '.*' '.*' '.*'`,
      { cause: error },
    );
  }
  return new RabbitConnectError(
    `cannot connect to RabbitMQ at ${where}: ${code && !text.includes(code) ? `${code} ` : ''}${text}`,
    `start it: ${START_RABBITMQ}; then check [RabbitMQ] HostName/Port (or Url) in ${file}`,
    { cause: error },
  );
}
