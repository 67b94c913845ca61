/**
 * The shipped dialplan (config/asterisk/extensions.conf) as the emulator runs it: which contexts
 * and extensions exist, the checks of exten `convert` in their order, the names it builds, and
 * the UserEvent each outcome sends. Pure: no sockets, no files, no timers.
 */
import { DIALPLAN_PATH_TAIL, isDialplanRoot, isJobId } from '../characters.js';

/** Priorities of the UserEvent lines in extensions.conf; the Hangup() after each is +1. */
export const PRIORITY = {
  invalidJobId: 3,
  invalidPath: 6,
  inputMissing: 9,
  result: 16,
  /** The UserEvent after Convert() (priority 22), when app_convert is loaded. */
  convertAppResult: 23,
  /** Priority 26: the perl step's two-leg program (a two-leg job where app_convert is not loaded). */
  legsStep: 26,
  ping: 1,
} as const;

/** Which conversion step priority 8 picks: Convert() when app_convert.so is loaded, else the perl step. */
export type ConversionStep = 'perl' | 'convert-app';

/** [audio-convert-hold] exten s: Answer() is 1, Wait() is 2. */
export const HOLD_ANSWER_PRIORITY = 1;
export const HOLD_WAIT_PRIORITY = 2;
/** Answer() on the ;2 half waits up to 500 ms for media before Wait() starts (alt-job-on-2.txt). */
export const ANSWER_HOLD_MS = 500;

export const HOLD_CONTEXT = 'audio-convert-hold';
export const CONVERT_CONTEXT = 'audio-convert';

/** What exists in the dialplan right now (setDialplan can remove either context). */
export interface DialplanState {
  convertContextPresent: boolean;
  holdContextPresent: boolean;
}

/** Extensions and their priority labels, per context, as loaded from the shipped file. */
const EXTENSIONS: Record<string, Record<string, { last: number; labels: Record<string, number> }>> = {
  [HOLD_CONTEXT]: { s: { last: 3, labels: {} } },
  [CONVERT_CONTEXT]: {
    convert: { last: 30, labels: { paths: 5, input: 8, run: 11, report: 16, outdir: 18, app: 22, legs: 25 } },
    ping: { last: 2, labels: {} },
    h: { last: 1, labels: {} },
  },
};

function contextOf(state: DialplanState, context: string): (typeof EXTENSIONS)[string] | undefined {
  if (context === HOLD_CONTEXT && !state.holdContextPresent) return undefined;
  if (context === CONVERT_CONTEXT && !state.convertContextPresent) return undefined;
  return EXTENSIONS[context];
}

/** ast_exists_extension(context, exten, priority). */
export function extensionExists(state: DialplanState, context: string, exten: string, priority: number): boolean {
  const ext = contextOf(state, context)?.[exten];
  return ext !== undefined && priority >= 1 && priority <= ext.last;
}

/** ast_findlabel_extension: a named priority, or -1. */
export function findLabel(state: DialplanState, context: string, exten: string, label: string): number {
  return contextOf(state, context)?.[exten]?.labels[label] ?? -1;
}

/**
 * Splits one `Variable:` value the way Asterisk does (ast_app_separate_args with quote and
 * backslash removal): commas separate variables unless inside quotes, () or []; `"` is dropped;
 * `\x` is a literal x. Each piece is split at its first `=`; pieces without one are ignored.
 * hdr-variable-values.txt shows every rule.
 */
export function parseVariableHeader(value: string, into: Map<string, string>): void {
  let cur = '';
  let paren = 0;
  let bracket = 0;
  let quote = false;
  const flush = (): void => {
    const eq = cur.indexOf('=');
    if (eq > 0) into.set(cur.slice(0, eq), cur.slice(eq + 1));
    cur = '';
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!;
    if (c === '"') quote = !quote;
    else if (c === '\\') cur += value[++i] ?? '';
    else if (c === ',' && paren === 0 && bracket === 0 && !quote) flush();
    else {
      if (c === '(') paren++;
      else if (c === ')' && paren > 0) paren--;
      else if (c === '[') bracket++;
      else if (c === ']' && bracket > 0) bracket--;
      cur += c;
    }
  }
  flush();
}

/** The dialplan's [globals] AUDIOCONVERT_GSM_ROOT and AUDIOCONVERT_WAV_ROOT for a data root. */
export function dialplanRoots(root: string): { gsm: string; wav: string } {
  const r = root.replace(/\/+$/, '');
  return { gsm: `${r}/gsm`, wav: `${r}/wav` };
}

export interface PathRulesOfDialplan {
  readonly gsm: RegExp;
  readonly wav: RegExp;
  /** What [globals] sets; exten ping reports them. */
  readonly roots: { readonly gsm: string; readonly wav: string };
}

/** The path rules of priority 5 for a data root (default /var/local/auditorai); never matches when a root is malformed. */
export function pathRules(root: string): PathRulesOfDialplan {
  const roots = dialplanRoots(root);
  // The dialplan pastes the root into the REGEX unescaped; isDialplanRoot guarantees it holds no metacharacter.
  const never = /(?!)/;
  const ok = isDialplanRoot(roots.gsm) && isDialplanRoot(roots.wav);
  return {
    gsm: ok ? new RegExp(`^${roots.gsm}${DIALPLAN_PATH_TAIL.gsm}`) : never,
    wav: ok ? new RegExp(`^${roots.wav}${DIALPLAN_PATH_TAIL.wav}`) : never,
    roots,
  };
}

/** The dialplan's result: the UserEvent it sends (body lines) and where, or none. */
export interface DialplanOutcome {
  /** Priority of the UserEvent; the SoftHangupRequest shows priority + 1. */
  readonly priority: number;
  readonly status: 'OK' | 'FAILED';
  readonly detail: string;
  readonly jobId: string | undefined;
  readonly wavBytes: number | undefined;
  /** Convert()'s CONVERT_REASON (priority 23), between Detail and WavBytes. */
  readonly reason?: string;
  /** Convert()'s CONVERT_INPUT_SHA256, CONVERT_WAV_SHA256 and CONVERT_AUDIO, after WavBytes (priority 23). */
  readonly facts?: { readonly inputSha256: string; readonly wavSha256: string; readonly audio: string };
  /** Header lines after the others (exten ping's roots). */
  readonly extra?: string;
}

/** The UserEvent application's lines, in the order extensions.conf writes them. */
export function userEventBody(o: DialplanOutcome): string {
  const job = o.jobId === undefined ? '' : `JobId: ${o.jobId}\r\n`;
  const bytes = o.wavBytes === undefined ? '' : `WavBytes: ${o.wavBytes}\r\n`;
  const reason = o.reason === undefined ? '' : `Reason: ${o.reason}\r\n`;
  const f =
    o.facts === undefined ? '' : `InputSha256: ${o.facts.inputSha256}\r\nWavSha256: ${o.facts.wavSha256}\r\nAudio: ${o.facts.audio}\r\n`;
  return `UserEvent: AudioConvert\r\n${job}Status: ${o.status}\r\nDetail: ${o.detail}\r\n${reason}${bytes}${f}${o.extra ?? ''}`;
}

/** Priorities 1–10 of exten convert: a refusal, or the validated names the step needs. */
export type ConvertCheck =
  | { readonly kind: 'refused'; readonly outcome: DialplanOutcome }
  | {
      readonly kind: 'check-input';
      readonly jobId: string;
      readonly gsmPath: string;
      /** GSM_PATH2, the second leg of a two-leg job ('' for one input). */
      readonly gsmPath2: string;
      readonly wavPath: string;
    };

export function checkConvert(vars: ReadonlyMap<string, string>, rules: Pick<PathRulesOfDialplan, 'gsm' | 'wav'>): ConvertCheck {
  const jobId = vars.get('JOB_ID') ?? '';
  if (!isJobId(jobId)) {
    return refused({ priority: PRIORITY.invalidJobId, status: 'FAILED', detail: 'invalid-job-id', jobId: undefined, wavBytes: undefined });
  }
  const gsmPath = vars.get('GSM_PATH') ?? '';
  const wavPath = vars.get('WAV_PATH') ?? '';
  const gsmPath2 = vars.get('GSM_PATH2') ?? '';
  if (!rules.gsm.test(gsmPath) || !rules.wav.test(wavPath) || (gsmPath2 !== '' && !rules.gsm.test(gsmPath2))) {
    return refused({ priority: PRIORITY.invalidPath, status: 'FAILED', detail: 'invalid-path', jobId, wavBytes: undefined });
  }
  return { kind: 'check-input', jobId, gsmPath, gsmPath2, wavPath };
}

const refused = (outcome: DialplanOutcome): ConvertCheck => ({ kind: 'refused', outcome });

/** Priority 9: the input does not exist. */
export const inputMissing = (jobId: string): DialplanOutcome => ({
  priority: PRIORITY.inputMissing,
  status: 'FAILED',
  detail: 'input-missing',
  jobId,
  wavBytes: undefined,
});

/** Priority 16, from the step's SYSTEMSTATUS and STAT(s,WAV_PATH) (0 when the file is absent). */
export const stepResult = (jobId: string, systemStatus: 'SUCCESS' | 'APPERROR' | 'FAILURE', wavBytes: number): DialplanOutcome => ({
  priority: PRIORITY.result,
  status: systemStatus === 'SUCCESS' ? 'OK' : 'FAILED',
  detail: systemStatus,
  jobId,
  wavBytes,
});

/** Priority 23, from Convert()'s CONVERT_* variables (the hashes and the audio facts are empty on failure). */
export const convertAppResult = (
  jobId: string,
  result: { detail: string; reason: string; bytes: number; inputSha256?: string; wavSha256?: string; audio?: string },
): DialplanOutcome => ({
  priority: PRIORITY.convertAppResult,
  status: result.detail === 'converted' ? 'OK' : 'FAILED',
  detail: result.detail,
  reason: result.reason,
  jobId,
  wavBytes: result.bytes,
  facts: { inputSha256: result.inputSha256 ?? '', wavSha256: result.wavSha256 ?? '', audio: result.audio ?? '' },
});

/** Exten ping: `UserEvent(AudioConvert,JobId: ${JOB_ID},Status: OK,Detail: pong,GsmRoot: …,WavRoot: …,Step: Convert|perl)`. */
export const pong = (vars: ReadonlyMap<string, string>, roots: PathRulesOfDialplan['roots'], step: ConversionStep): DialplanOutcome => ({
  priority: PRIORITY.ping,
  status: 'OK',
  detail: 'pong',
  jobId: vars.get('JOB_ID') ?? '',
  wavBytes: undefined,
  extra: `GsmRoot: ${roots.gsm}\r\nWavRoot: ${roots.wav}\r\nStep: ${step === 'convert-app' ? 'Convert' : 'perl'}\r\n`,
});

/** Priorities 18–21: WAV_PATH less its last name (CUT … FIELDQTY), created with mode 2775 when missing. */
export const wavDirOf = (wavPath: string): string => wavPath.slice(0, wavPath.lastIndexOf('/'));
export const WAV_DIR_MODE = 0o2775;
