/**
 * The local 3-node cluster of scripts/rabbit-cluster/, seen from a chaos run: which node a client
 * is connected to, which node leads a quorum queue, and stopping, killing and starting one node.
 * Management-free: rabbitmqctl only (as root; the Debian wrapper runs it as the rabbitmq user).
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './bridge.js';

const run = promisify(execFile);

/** Node numbers 1..3 ↔ names and AMQP ports, as scripts/rabbit-cluster/env.sh defines them. */
export class ClusterNodes {
  readonly numbers = [1, 2, 3] as const;

  constructor(readonly portBase = Number(process.env['AC_CLUSTER_PORT_BASE'] ?? 5690)) {}

  name(n: number): string {
    return `acx${n}@localhost`;
  }

  port(n: number): number {
    return this.portBase + n;
  }

  /** `host:port` of every node, for [RabbitMQ] HostName. */
  hosts(): string[] {
    return this.numbers.map((n) => `127.0.0.1:${this.port(n)}`);
  }

  private async ctl(n: number, ...args: string[]): Promise<string> {
    const { stdout } = await run('rabbitmqctl', ['-q', '-n', this.name(n), ...args], { timeout: 60_000, maxBuffer: 16 << 20 });
    return stdout;
  }

  /** scripts/rabbit-cluster/node.sh start|stop|kill N; resolves when it is done (start: the node runs). */
  async node(action: 'start' | 'stop' | 'kill', n: number): Promise<void> {
    await run(path.join(repoRoot(), 'scripts', 'rabbit-cluster', 'node.sh'), [action, String(n)], { timeout: 180_000 });
  }

  /** Whether node n answers (its app running). */
  async running(n: number): Promise<boolean> {
    try {
      await this.ctl(n, 'await_startup', '--timeout', '5');
      return true;
    } catch {
      return false;
    }
  }

  /** A node that answers, asking them in order; throws when none does. */
  async anyRunning(except?: number): Promise<number> {
    for (const n of this.numbers) if (n !== except && (await this.running(n))) return n;
    throw new Error('no node of the cluster answers');
  }

  /**
   * The node the client named `connectionName` is connected to (by the server port of its
   * connection), or undefined while it has none. list_connections covers the whole cluster.
   */
  async connectedNode(connectionName: string, ask?: number): Promise<number | undefined> {
    const via = ask ?? (await this.anyRunning());
    const rows = JSON.parse(await this.ctl(via, 'list_connections', 'port', 'client_properties', '--formatter', 'json')) as {
      port: number;
      client_properties: unknown;
    }[];
    const named = JSON.stringify(connectionName);
    const row = rows.find(
      (r) =>
        JSON.stringify(r.client_properties).includes(`"connection_name","longstr",${named}`) ||
        JSON.stringify(r.client_properties).includes(`${named}]`),
    );
    return row === undefined ? undefined : this.numbers.find((n) => this.port(n) === row.port);
  }

  /** The node leading quorum queue `queue` (`list_queues name leader`). */
  async leaderOf(queue: string, ask?: number): Promise<number | undefined> {
    const via = ask ?? (await this.anyRunning());
    const rows = JSON.parse(await this.ctl(via, 'list_queues', 'name', 'leader', '--formatter', 'json')) as {
      name: string;
      leader: string;
    }[];
    const leader = rows.find((r) => r.name === queue)?.leader;
    return this.numbers.find((n) => this.name(n) === leader);
  }

  /**
   * Waits until every quorum queue whose name starts with `prefix` has all its members online again
   * (`list_queues name members online`), so the next fault does not take a queue's majority.
   * Resolves false after maxMs.
   */
  async onMembersOnline(prefix: string, maxMs = 300_000): Promise<boolean> {
    const end = Date.now() + maxMs;
    while (Date.now() < end) {
      try {
        const via = await this.anyRunning();
        const rows = JSON.parse(await this.ctl(via, 'list_queues', 'name', 'members', 'online', '--formatter', 'json')) as {
          name: string;
          members?: unknown;
          online?: unknown;
        }[];
        const ours = rows.filter((r) => r.name.startsWith(prefix));
        const whole = (r: (typeof ours)[number]): boolean =>
          Array.isArray(r.members) &&
          Array.isArray(r.online) &&
          r.members.length === this.numbers.length &&
          r.online.length === r.members.length;
        if (ours.length > 0 && ours.every(whole)) return true;
      } catch {
        // a node still booting: ask again
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    return false;
  }
}
