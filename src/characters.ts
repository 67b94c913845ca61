/**
 * The characters a job id, a job path and a dialplan root may hold: each rule spelled once, here.
 *
 * The bridge (queue/message.ts), the config reader (AllowedRoots), the doctor (the dialplan's
 * roots), `enqueue` (ids made from file names) and the emulator (the dialplan's REGEXes) all read
 * them from this module. The shipped extensions.conf spells the dialplan's half in its own REGEX
 * syntax; a test (emulator-controls) checks that it says the same as {@link DIALPLAN_PATH_TAIL}.
 * Imports nothing of ours.
 */

/**
 * A bracket expression: letters, digits, `_`, the `extra` characters, and `-` written last so that
 * it stays a literal (`[._-:]` would be the range `-` to `:`, which holds `/`).
 */
const chars = (extra = '', dash = true): string => `[A-Za-z0-9_${extra}${dash ? '-' : ''}]`;
/** A name inside a path: letters, digits, `_ . -`. */
const NAME_CHAR = chars('.');
/** What a name below a root must start with: no `.` (hidden, `..`) and no `-` (read as an option). */
const NAME_FIRST_CHAR = chars('', false);
/** A name of a dialplan root: no `.` at all, since the dialplan pastes the root into a REGEX. */
const ROOT_NAME_CHAR = chars();
const PATH_CHAR_CLASS = chars('./');
const JOB_ID_CHAR_CLASS = chars('.:');

/** The characters of a job path, as a person reads them. */
export const PATH_CHARS_TEXT = 'A-Z a-z 0-9 . _ / -';
/** The characters of a job id, as a person reads them. */
export const JOB_ID_CHARS_TEXT = 'A-Z a-z 0-9 . _ : -';

/** One character a job path may contain. */
export const PATH_CHAR = new RegExp(`^${PATH_CHAR_CLASS}$`, 'u');
/** One character a job id may contain. */
export const JOB_ID_CHAR = new RegExp(`^${JOB_ID_CHAR_CLASS}$`, 'u');
/** Longest job_id (docs/messages.md "Rules"). */
export const MAX_JOB_ID_LENGTH = 128;

const PATH_TEXT = new RegExp(`^${PATH_CHAR_CLASS}*$`);
const JOB_ID = new RegExp(`^${JOB_ID_CHAR_CLASS}{1,${MAX_JOB_ID_LENGTH}}$`);
const NOT_JOB_ID_CHARS = new RegExp(`[^${JOB_ID_CHAR_CLASS.slice(1)}+`, 'g');
const ABSOLUTE_PATH_TEXT = new RegExp(`^/${PATH_CHAR_CLASS}+$`);
const DIALPLAN_ROOT = new RegExp(`^(/${ROOT_NAME_CHAR}+)+$`);

/** True when `text` uses only the characters a job path may contain (it may be empty). */
export function hasOnlyPathChars(text: string): boolean {
  return PATH_TEXT.test(text);
}

/** True when `text` starts with `/` and holds only job path characters: the shape of an AllowedRoots entry. */
export function isAbsolutePathText(text: string): boolean {
  return ABSOLUTE_PATH_TEXT.test(text);
}

/** True for a job id: 1 to {@link MAX_JOB_ID_LENGTH} job id characters. */
export function isJobId(text: string): boolean {
  return JOB_ID.test(text);
}

/** `text` with every run of characters a job id may not hold replaced by `_` (length unchanged or shorter). */
export function toJobIdChars(text: string): string {
  return text.replace(NOT_JOB_ID_CHARS, '_');
}

/** The rule a dialplan root (`[globals] AUDIOCONVERT_GSM_ROOT` / `_WAV_ROOT`) must follow, as a person reads it. */
export const DIALPLAN_ROOT_TEXT = `an absolute path of ${ROOT_NAME_CHAR} names`;

/** True for a root the dialplan accepts (priority 5 of extensions.conf): it holds no REGEX metacharacter. */
export function isDialplanRoot(text: string): boolean {
  return DIALPLAN_ROOT.test(text);
}

/** {@link isDialplanRoot}'s pattern in the dialplan's REGEX syntax (no `\/`), as extensions.conf writes it. */
export const DIALPLAN_ROOT_PATTERN = DIALPLAN_ROOT.source.replaceAll('\\/', '/');

/** A name below a root, as the dialplan's REGEX writes it. */
const DIALPLAN_NAME = `${NAME_FIRST_CHAR}${NAME_CHAR}*`;

/**
 * What follows `^${ROOT}` in the two path REGEXes of the dialplan's priority 5: any depth of names,
 * each starting with [A-Za-z0-9_] (so no `.`, `..`, hidden or option-like name), then the file's name.
 */
export const DIALPLAN_PATH_TAIL = {
  gsm: `/(${DIALPLAN_NAME}/)*${DIALPLAN_NAME}[.]gsm$`,
  wav: `/(${DIALPLAN_NAME}/)*${DIALPLAN_NAME}[.]wav$`,
} as const;

/**
 * The dialplan's temp file of one attempt (extensions.conf priority 11): `${WAV_PATH}.tmp-${JOB_ID}.wav`,
 * beside the target so the final rename is atomic. JOB_ID is the attempt's UUID. The bridge's
 * temp-file reaper and the emulator's dialplan both name it with this.
 */
export function tempPathOf(wavPath: string, attemptId: string): string {
  return `${wavPath}.tmp-${attemptId}.wav`;
}
