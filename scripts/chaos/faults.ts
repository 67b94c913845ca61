/**
 * The faults a chaos run injects, one at a time, each awaited to its end (a restart is over when
 * the port is open again, a SIGTERM when the process has exited and a new one started).
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { AsteriskEmulator } from '../../src/emulator/server.js';
import type { BridgeProcess } from './bridge.js';
import type { Prng } from './prng.js';

const run = promisify(execFile);

export const FAULT_KINDS = [
  'ami-drop', // the AMI socket closes under the bridge; Asterisk lives on (orphaned calls keep running)
  'asterisk-restart', // `core restart now`: teardown events, Event: Shutdown, port closed for a while
  'asterisk-kill', // kill -9: sockets just close, port closed for a while
  'ami-silence', // Asterisk hangs: reads, answers nothing, sends no events
  'hung-conversions', // conversion steps hang past the job deadline
  'bridge-sigkill', // the bridge is killed; systemd starts it again
  'bridge-sigterm', // a clean stop (drain, requeue the rest, exit 0), then a start
  'bridge-double-signal', // SIGTERM then SIGINT at once: exits now, unacked messages go back
  'broker-drop', // rabbitmqctl close_all_connections
  'broker-restart', // rabbitmqctl stop_app … start_app
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults that leave RabbitMQ alone (the ones `npm test` may use). */
export const LOCAL_FAULTS: readonly FaultKind[] = FAULT_KINDS.filter((k) => !k.startsWith('broker-'));

/** How long faults last, in ms: [min, max] per knob. */
export interface FaultTiming {
  readonly asteriskDownMs: readonly [number, number];
  readonly silenceMs: readonly [number, number];
  readonly hangMs: readonly [number, number];
  readonly bridgeDownMs: readonly [number, number];
  readonly brokerDownMs: readonly [number, number];
  /** How long a SIGTERM'd bridge may take to exit before it counts as an anomaly. */
  readonly termExitMs: number;
}

export const FULL_TIMING: FaultTiming = {
  asteriskDownMs: [200, 3000],
  silenceMs: [500, 4000],
  hangMs: [1000, 5000],
  bridgeDownMs: [0, 1500],
  brokerDownMs: [500, 4000],
  termExitMs: 20_000,
};

export interface FaultContext {
  readonly emulator: AsteriskEmulator;
  readonly bridge: BridgeProcess;
  readonly prng: Prng;
  readonly timing: FaultTiming;
  /** `rabbitmqctl -n NODE`; undefined: the default node. */
  readonly rabbitNode: string | undefined;
  /** Something that should not happen (a SIGTERM exit code other than 0, a slow exit). */
  anomaly(text: string): void;
}

function pause(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function between(ctx: FaultContext, range: readonly [number, number]): number {
  return ctx.prng.int(range[0], range[1]);
}

export async function rabbitmqctl(node: string | undefined, ...args: string[]): Promise<void> {
  await run('rabbitmqctl', [...(node === undefined ? [] : ['-n', node]), ...args], { timeout: 60_000 });
}

/** Injects one fault of `kind` and resolves when it is over (the system may still be recovering). */
export async function inject(kind: FaultKind, ctx: FaultContext): Promise<void> {
  const { emulator, bridge, timing } = ctx;
  switch (kind) {
    case 'ami-drop':
      emulator.dropConnections();
      return;
    case 'asterisk-restart':
    case 'asterisk-kill':
      await emulator.restart({ graceful: kind === 'asterisk-restart', downMs: between(ctx, timing.asteriskDownMs) });
      return;
    case 'ami-silence':
      emulator.goSilent(true);
      await pause(between(ctx, timing.silenceMs));
      emulator.goSilent(false);
      return;
    case 'hung-conversions':
      emulator.hangConversions(true);
      await pause(between(ctx, timing.hangMs));
      emulator.hangConversions(false);
      return;
    case 'bridge-sigkill':
      await bridge.kill();
      await pause(between(ctx, timing.bridgeDownMs));
      bridge.start();
      return;
    case 'bridge-sigterm':
      await stopBridge(ctx, ['SIGTERM']);
      bridge.start();
      return;
    case 'bridge-double-signal':
      await stopBridge(ctx, ['SIGTERM', 'SIGINT']);
      bridge.start();
      return;
    case 'broker-drop':
      await rabbitmqctl(ctx.rabbitNode, 'close_all_connections', 'chaos');
      return;
    case 'broker-restart':
      await rabbitmqctl(ctx.rabbitNode, 'stop_app');
      try {
        await pause(between(ctx, timing.brokerDownMs));
      } finally {
        await rabbitmqctl(ctx.rabbitNode, 'start_app');
      }
      return;
  }
}

/**
 * Sends the signals (the second right after the first) and waits for the exit. One SIGTERM must
 * end in exit code 0 within the drain deadline; a second signal exits at once, non-zero allowed.
 */
async function stopBridge(ctx: FaultContext, signals: readonly NodeJS.Signals[]): Promise<void> {
  const { bridge } = ctx;
  // A signal during node's own startup (before cli.ts runs) just kills it: wait until it can drain.
  await bridge.onStarted();
  if (!bridge.running) return;
  const wasStarted = bridge.hasStarted;
  const exit = bridge.onExit();
  for (const signal of signals) bridge.signal(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ctx.timing.termExitMs)));
  const result = await Promise.race([exit, late]);
  clearTimeout(timer);
  if (result === 'late') {
    ctx.anomaly(`${signals.join('+')}: the bridge did not exit within ${ctx.timing.termExitMs} ms; killed`);
    await bridge.kill();
    return;
  }
  if (signals.length === 1 && result !== undefined && result.code !== 0) {
    ctx.anomaly(
      `SIGTERM: the bridge exited with code ${String(result.code)} (signal ${String(result.signal)}), not 0 (after ${String(result.afterSignalMs)} ms; started: ${wasStarted})`,
    );
  }
}
