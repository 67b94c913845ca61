/**
 * Watches the bridge's /readyz while a chaos run goes on, and holds it to the truth: the bridge's
 * own log says when it stops and starts consuming; /readyz must agree. A disagreement that lasts
 * longer than `graceMs` (a log line and an HTTP answer race by a few ms) is a lie, recorded.
 */
import http from 'node:http';

export class ReadyzWatch {
  /** What the bridge's log last said: consuming or not (undefined before its first line). */
  private consuming: boolean | undefined;
  private disagreeSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly samples = { ready: 0, notReady: 0, failed: 0 };
  /** Disagreements longer than graceMs: `<when>: /readyz said X while the bridge was Y for N ms`. */
  readonly lies: string[] = [];
  /** Times /readyz answered 503 (for the fault windows). */
  readonly notReadyAt: number[] = [];
  readonly readyAt: number[] = [];

  constructor(
    private readonly port: number,
    private readonly started: number,
    private readonly everyMs = 50,
    private readonly graceMs = 1000,
  ) {}

  /** The bridge logged 'consuming' (true) or 'not consuming' (false); a bridge that exited is not consuming. */
  bridgeSays(consuming: boolean): void {
    this.consuming = consuming;
  }

  start(): void {
    const tick = (): void => {
      if (this.stopped) return;
      void this.sample().finally(() => {
        if (!this.stopped) this.timer = setTimeout(tick, this.everyMs);
      });
    };
    tick();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Whether /readyz answered 503 at some moment in [from, to]. */
  sawNotReady(from: number, to: number): boolean {
    return this.notReadyAt.some((t) => t >= from && t <= to);
  }

  /** The first 200 from /readyz at or after `from`. */
  firstReadyAfter(from: number): number | undefined {
    return this.readyAt.find((t) => t >= from);
  }

  private async sample(): Promise<void> {
    let body = '';
    const status = await new Promise<number | undefined>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: this.port, path: '/readyz', timeout: 2000 }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(res.statusCode));
        res.on('error', () => resolve(undefined));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(undefined));
    });
    const now = Date.now();
    if (status === undefined) {
      // The process is restarting (or not yet listening): nothing to hold against it.
      this.samples.failed++;
      this.disagreeSince = undefined;
      return;
    }
    const ready = status === 200;
    if (ready) {
      this.samples.ready++;
      if (this.readyAt.length < 100_000) this.readyAt.push(now);
    } else {
      this.samples.notReady++;
      if (this.notReadyAt.length < 100_000) this.notReadyAt.push(now);
    }
    if (this.consuming === undefined || ready === this.consuming) {
      this.disagreeSince = undefined;
      return;
    }
    this.disagreeSince ??= now;
    if (now - this.disagreeSince > this.graceMs) {
      // The body names the check that is down: what to look at when this happens.
      this.lies.push(
        `${((now - this.started) / 1000).toFixed(1)} s: /readyz ${status} while the bridge logged ` +
          `${this.consuming ? 'consuming' : 'not consuming'} for ${now - this.disagreeSince} ms: ${body.replace(/\s+/g, ' ').slice(0, 300)}`,
      );
      this.disagreeSince = undefined;
    }
  }
}
