/**
 * manager.conf permission classes and the action table of Asterisk 22 (the part the emulator
 * needs): which write class each action requires, and how `Events:` masks are read.
 */

/** Asterisk's EVENT_FLAG_* bits. */
export const PERM = {
  system: 1,
  call: 2,
  log: 4,
  verbose: 8,
  command: 16,
  agent: 32,
  user: 64,
  config: 128,
  dtmf: 256,
  reporting: 512,
  cdr: 1024,
  dialplan: 2048,
  originate: 4096,
} as const;

export const ALL_PERMS = Object.values(PERM).reduce((a, b) => a | b, 0);

/** A manager.conf `read`/`write` list → bits ('all' = every class). */
export function permsOf(classes: readonly string[]): number {
  let mask = 0;
  for (const c of classes) {
    const name = c.trim().toLowerCase();
    if (name === 'all') return ALL_PERMS;
    mask |= PERM[name as keyof typeof PERM] ?? 0;
  }
  return mask;
}

const TRUE = new Set(['yes', 'true', 'y', 't', '1', 'on']);
const FALSE = new Set(['no', 'false', 'n', 'f', '0', 'off']);

/**
 * strings_to_mask(): the `Events:` header of Login / `EventMask:` of Events. Undefined = leave
 * the mask as it is (empty header); a number is used as is; on/off; else a class list.
 */
export function eventMaskOf(value: string | undefined): number | undefined {
  if (value === undefined || value === '') return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  const lower = value.toLowerCase();
  if (FALSE.has(lower)) return 0;
  if (TRUE.has(lower)) return ALL_PERMS;
  return permsOf(lower.split(','));
}

const P = PERM;

/** Canonical action name (lower-case key) → the write classes that allow it (0 = anyone logged in). */
export const ACTIONS: ReadonlyMap<string, { name: string; authority: number }> = new Map(
  (
    [
      ['Login', 0],
      ['Logoff', 0],
      ['Challenge', 0],
      ['Ping', 0],
      ['Events', 0],
      ['ListCommands', 0],
      ['WaitEvent', 0],
      ['Originate', P.originate],
      ['Command', P.command],
      ['Hangup', P.system | P.call],
      ['Status', P.system | P.call | P.reporting],
      ['CoreShowChannels', P.system | P.reporting],
      ['CoreShowChannelMap', P.system | P.reporting],
      ['CoreStatus', P.system | P.reporting],
      ['CoreSettings', P.system | P.reporting],
      ['Getvar', P.call | P.reporting],
      ['Setvar', P.call],
      ['Redirect', P.call],
      ['Atxfer', P.call],
      ['AbsoluteTimeout', P.system | P.call],
      ['SendText', P.call],
      ['PlayDTMF', P.call],
      ['ExtensionState', P.call | P.reporting],
      ['UserEvent', P.user],
      ['Reload', P.system | P.config],
      ['GetConfig', P.system | P.config],
      ['UpdateConfig', P.config],
      ['ShowDialPlan', P.config | P.reporting],
      ['DialplanExtensionAdd', P.system],
      ['DialplanExtensionRemove', P.system],
      ['Filter', P.system],
      ['ModuleCheck', P.system],
      ['ModuleLoad', P.system],
      ['LoggerRotate', P.system | P.reporting],
    ] as const
  ).map(([name, authority]) => [name.toLowerCase(), { name, authority }]),
);

/** What the audio-convert bridge is expected to send; anything else is noted in stats.unexpectedActions. */
export const EXPECTED_ACTIONS = new Set(['login', 'challenge', 'logoff', 'ping', 'originate', 'events', 'coreshowchannels']);

/** Applications a user without `system` write may not originate into (message from hdr-crlf-injection.txt). */
export function originateForbidden(app: string, data: string): boolean {
  const a = app.toLowerCase();
  return (
    ['system', 'exec', 'agi', 'mixmonitor', 'externalivr', 'originate'].some((bad) => a.includes(bad)) ||
    data.includes('SHELL') ||
    data.includes('EVAL')
  );
}
