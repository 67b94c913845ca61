/**
 * Which RabbitMQ node(s) a connection tries. rabbitmq-client takes the credentials, vhost and TLS
 * from the URL and, when `hosts` is given, tries those nodes round-robin instead of the URL's host:
 * the first that answers is used; when it goes away the next reconnect goes to the next node.
 */

/** What `new Connection({...})` needs to reach the broker: the URL, and every node of a cluster. */
export interface AmqpTarget {
  readonly url: string;
  readonly hosts?: string[];
}

/** `hosts` only for a list of two or more (one host is the URL's, IPv6 literals included). */
export function amqpTarget(rabbitmq: { readonly url: string; readonly hosts: readonly string[] }): AmqpTarget {
  return rabbitmq.hosts.length > 1 ? { url: rabbitmq.url, hosts: [...rabbitmq.hosts] } : { url: rabbitmq.url };
}
