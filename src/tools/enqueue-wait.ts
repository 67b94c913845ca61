/**
 * `enqueue --wait`: an exclusive, auto-delete reply queue (the service publishes each job's result
 * to the job's reply_to as well), the results collected by job id, and the progress shown on
 * stderr: a bar on a terminal, a plain line every few results otherwise.
 */
import cliProgress from 'cli-progress';
import type { AsyncMessage, Channel, Connection } from 'rabbitmq-client';
import type { Output } from './output.js';
import { parseResult, type ResultView } from './summary.js';

/** How waiting ended: every result in, the deadline, or why results can no longer arrive. */
export type WaitOutcome = 'complete' | 'timeout' | `lost ${string}`;

export class ReplyCollector {
  /** Results by job id; the first one wins (delivery is at-least-once: a job can report twice). */
  readonly results = new Map<string, ResultView>();
  /** When the last expected result arrived (ms since epoch). */
  lastAt: number | undefined;
  private readonly expected: Set<string>;
  private readonly progress: Progress;
  private settle: ((outcome: WaitOutcome) => void) | undefined;
  private ended: WaitOutcome | undefined;
  private closing = false;

  private constructor(
    private readonly channel: Channel,
    readonly queue: string,
    jobIds: readonly string[],
    stderr: Output,
  ) {
    this.expected = new Set(jobIds);
    this.progress = new Progress(jobIds.length, stderr);
  }

  /** Declares the reply queue and starts consuming it, before any job is published. */
  static async open(connection: Connection, jobIds: readonly string[], stderr: Output): Promise<ReplyCollector> {
    const channel = await connection.acquire();
    // Server-named, exclusive, auto-delete: gone with this process, whatever happens to it.
    const { queue } = await channel.queueDeclare({ queue: '', exclusive: true, autoDelete: true });
    const collector = new ReplyCollector(channel, queue, jobIds, stderr);
    channel.on('close', () => {
      if (!collector.closing) collector.end('lost the RabbitMQ connection while waiting');
    });
    await channel.basicConsume({ queue, noAck: true }, (message) => collector.onMessage(message));
    return collector;
  }

  /** Resolves when every result is in, or at the deadline, or when the channel is lost. Closes the channel. */
  async wait(timeoutMs: number): Promise<WaitOutcome> {
    this.progress.start(this.results.size);
    const outcome =
      this.ended ??
      (await new Promise<WaitOutcome>((resolve) => {
        const timer = setTimeout(() => this.end('timeout'), timeoutMs);
        this.settle = (o) => {
          clearTimeout(timer);
          resolve(o);
        };
      }));
    await this.close();
    return outcome;
  }

  async close(): Promise<void> {
    this.progress.stop();
    if (this.closing) return;
    this.closing = true;
    await this.channel.close().catch(() => undefined);
  }

  private onMessage(message: AsyncMessage): void {
    const result = parseResult(message.body);
    // The correlation id is ours; the body's job_id is the service's (the same unless the job was invalid).
    const id = [message.correlationId, result?.job_id].find((i) => i !== undefined && this.expected.has(i));
    if (result === undefined || id === undefined || this.results.has(id)) return;
    this.results.set(id, result);
    this.lastAt = Date.now();
    this.progress.update(this.results.size, result.status);
    if (this.results.size === this.expected.size) this.end('complete');
  }

  private end(outcome: WaitOutcome): void {
    if (this.ended !== undefined) return;
    this.ended = outcome;
    this.settle?.(outcome);
  }
}

/**
 * A bar when stderr is a terminal; else a line every ~10 % of the jobs. Shown from start() on
 * (after the jobs are queued, so no other line cuts through the bar); results before it are counted.
 */
class Progress {
  private bar: cliProgress.SingleBar | undefined;
  private started = false;
  private readonly every: number;
  private converted = 0;
  private failed = 0;
  private stopped = false;

  constructor(
    private readonly total: number,
    private readonly stream: Output,
  ) {
    this.every = Math.max(1, Math.ceil(total / 10));
  }

  start(done: number): void {
    if (this.started || this.stopped) return;
    this.started = true;
    if (this.stream.isTTY !== true) {
      if (done > 0) this.line(done);
      return;
    }
    this.bar = new cliProgress.SingleBar(
      {
        stream: this.stream,
        format: 'converting {bar} {value}/{total} | {converted} converted, {failed} failed | {duration_formatted}',
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(this.total, done, this.counts());
  }

  update(done: number, status: 'converted' | 'failed'): void {
    if (status === 'converted') this.converted++;
    else this.failed++;
    if (this.bar !== undefined) this.bar.update(done, this.counts());
    // Lines only once started: results that beat the end of publishing show in the first line.
    else if (this.started && (done % this.every === 0 || done === this.total)) this.line(done);
  }

  private line(done: number): void {
    this.stream.write(`progress: ${done}/${this.total} (${this.converted} converted, ${this.failed} failed)\n`);
  }

  private counts(): { converted: number; failed: number } {
    return { converted: this.converted, failed: this.failed };
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.bar?.stop();
  }
}
