/**
 * The edge where config becomes connection options: TLS for AMI and for AMQP. The CA files named
 * in the config are read here, when a connection is built (main.ts and the tools share this).
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { Config } from './config.js';

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
