/**
 * What "Asterisk" (the emulator) saw: which attempt converted which file, and how many of those
 * conversions ran on after their AMI session or Asterisk itself was gone (orphans). The bridge
 * cannot know this; the run reports it to show that overlapping attempts on one WAV are harmless.
 */
import type { AsteriskEmulator } from '../../src/emulator/server.js';

export interface AsteriskTally {
  readonly originates: number;
  /** Conversion steps that ended OK (each renamed a complete WAV into place). */
  readonly conversionsOk: number;
  /** …of which ran on as orphans after an Asterisk restart (nobody was told of their result). */
  readonly orphanedOk: number;
  /** WAV paths that more than one attempt converted OK. */
  readonly wavsConvertedMoreThanOnce: number;
  /** Steps started but not finished (should be 0 at the end). */
  readonly stepsRunning: number;
}

export class AsteriskWatch {
  private readonly wavOf = new Map<string, string>();
  private readonly okPerWav = new Map<string, number>();
  private ok = 0;
  private orphanedOk = 0;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly emulator: AsteriskEmulator) {
    emulator.on('originate', (info) => {
      const wav = info.variables.get('WAV_PATH');
      if (wav !== undefined) this.wavOf.set(info.channelId, wav);
    });
    emulator.on('conversionEnd', (info) => {
      const wav = this.wavOf.get(info.channelId);
      if (info.status === 'OK' && wav !== undefined) {
        this.ok++;
        if (info.orphaned) this.orphanedOk++;
        this.okPerWav.set(wav, (this.okPerWav.get(wav) ?? 0) + 1);
      }
      this.wavOf.delete(info.channelId);
      if (this.running === 0) for (const wake of this.idleWaiters.splice(0)) wake();
    });
  }

  /** Conversion steps started and not yet ended. */
  get running(): number {
    const s = this.emulator.stats;
    return s.conversionsStarted - s.conversionsFinished;
  }

  /** Resolves when no conversion step is running (orphans included), or after `maxMs`. */
  onIdle(maxMs: number): Promise<boolean> {
    if (this.running === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), maxMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  tally(): AsteriskTally {
    let multi = 0;
    for (const n of this.okPerWav.values()) if (n > 1) multi++;
    return {
      originates: this.emulator.stats.originates,
      conversionsOk: this.ok,
      orphanedOk: this.orphanedOk,
      wavsConvertedMoreThanOnce: multi,
      stepsRunning: this.running,
    };
  }
}
