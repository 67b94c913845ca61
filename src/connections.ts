/**
 * The edge where config becomes connection options: TLS for AMI and for AMQP. The CA files named
 * in the config are read here, when a connection is built (main.ts and the tools share this).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { ConnectionOptions as AmqpOptions } from 'rabbitmq-client';
import type { Config } from './config.js';
import { amqpTarget } from './queue/nodes.js';

/** TLS to AMI (Asterisk's `tlsenable`), when configured. The CA file is read here, at the edge. */
export function amiTlsOptions(ami: Config['ami']): TlsOptions | undefined {
  if (!ami.tls) return undefined;
  return {
    // SNI takes a host name only: an IP address there is deprecated (DEP0123) and ignored anyway.
    ...(isIP(ami.host) === 0 ? { servername: ami.host } : {}),
    rejectUnauthorized: ami.tlsRejectUnauthorized,
    ...(ami.tlsCaFile === undefined ? {} : { ca: readFileSync(ami.tlsCaFile) }),
  };
}

/**
 * amqps with a private CA ([RabbitMQ] TLSCAFile), read here at the edge. rabbitmq-client turns TLS
 * on for an amqps:// URL by itself; it must not be given TLS options for a plain amqp:// URL.
 */
export function amqpTlsOptions(rabbitmq: Config['rabbitmq']): { tls?: TlsOptions } {
  if (!rabbitmq.tls || rabbitmq.tlsCaFile === undefined) return {};
  return { tls: { ca: readFileSync(rabbitmq.tlsCaFile) } };
}

/**
 * The service's AMQP connection.
 * - noDelay: Nagle's algorithm off. A job ends in small writes close together (the result's publish,
 *   then its ack); with Nagle on, the second waits for the broker's delayed ACK of the first, up to
 *   40 ms, and the freed slot waits with it (docs/benchmarks.md: 1.5–2× the jobs/s at C ≤ 4).
 * - acquireTimeout 5 s (library default 20 s): while the broker is away, a publish or a consumer
 *   close gives up after 5 s instead of 20; the job is simply redelivered, and a stop stays short.
 */
export function amqpServiceOptions(rabbitmq: Config['rabbitmq']): AmqpOptions {
  return {
    ...amqpTarget(rabbitmq),
    connectionName: 'audio-convert',
    noDelay: true,
    retryLow: 250,
    retryHigh: 15000,
    acquireTimeout: 5000,
    ...amqpTlsOptions(rabbitmq),
  };
}
