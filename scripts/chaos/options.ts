/** What a chaos run is asked to do, and what it reports. */
import type { FaultKind, FaultTiming } from './faults.js';
import type { Tally } from './ledger.js';
import type { AsteriskTally } from './watch.js';

export interface ChaosOptions {
  readonly jobs: number;
  readonly seed: number;
  /** Faults are injected until every job has ended, or for at most this long (ms). */
  readonly faultPhaseMs: number;
  /** Jobs are published evenly over this long (ms). */
  readonly publishOverMs: number;
  /** Mean gap between faults (ms). */
  readonly faultEveryMs: number;
  /** After the fault phase, how long every job may take to end (ms). */
  readonly settleMs: number;
  readonly kinds: readonly FaultKind[];
  /** Go on injecting, even once every job has ended, until each kind has been injected this many times. */
  readonly minRounds?: number;
  readonly timing: FaultTiming;
  /** 'real': sox converts every file and every WAV is checked; 'instant': results only. */
  readonly mode: 'real' | 'instant';
  /** Extra time per conversion in the emulator, so jobs are in flight when faults land. */
  readonly latencyMs: number;
  readonly amqpUrl: string;
  readonly rabbitNode: string | undefined;
  /** [RabbitMQ] QueueType of the bridge; default classic. */
  readonly queueType?: 'classic' | 'quorum';
  /** Quorum only: the bridge's [RabbitMQ] DeliveryLimit (the input queue's x-delivery-limit; default 20). */
  readonly deliveryLimit?: number | undefined;
  /** [Worker] overrides for the bridge (Concurrency, JobTimeout, MaxAttempts, …). */
  readonly worker: Record<string, string>;
  /** The emulator's bound on a step (the dialplan's 100 s); hung steps end after it. Must exceed JobTimeout. */
  readonly conversionTimeoutMs: number;
  /** Where the bridge's log lines go (all processes, appended); none when undefined. */
  readonly bridgeLog?: string | undefined;
  readonly log: (line: string) => void;
}

export interface ChaosReport {
  readonly tally: Tally;
  readonly asterisk: AsteriskTally;
  readonly faults: Record<string, number>;
  readonly anomalies: readonly string[];
  readonly bridgeStarts: number;
  /** Converted WAVs that are not complete valid files (real mode), with why; must be empty. */
  readonly badWavs: readonly string[];
  readonly wavsChecked: number;
  /** Temp files of attempts left in the WAV directory at the end; must be empty. */
  readonly tempFilesLeft: readonly string[];
  /** Messages left in the input and delay queues after the final SIGTERM (duplicates only). */
  readonly leftInQueues: number;
  /** The most frequent error/crit lines of the bridge, with counts. */
  readonly bridgeErrors: readonly string[];
  readonly queueType: 'classic' | 'quorum';
  readonly wallMs: number;
  readonly ok: boolean;
}
