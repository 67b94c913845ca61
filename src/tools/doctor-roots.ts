/**
 * The doctor's comparison of the two halves of the path rules: the bridge's `[Worker] AllowedRoots`
 * and the roots the dialplan accepts (`[globals] AUDIOCONVERT_GSM_ROOT` / `AUDIOCONVERT_WAV_ROOT`,
 * which the `ping` extension reports in its UserEvent as `GsmRoot` / `WavRoot`). Pure.
 */
import { getHeader, type AmiMessage } from '../ami/protocol.js';
import { DIALPLAN_ROOT_TEXT, isDialplanRoot } from '../characters.js';

export interface DialplanRoots {
  /** undefined: the header is absent (an extensions.conf older than the roots in [globals]). */
  readonly gsm: string | undefined;
  readonly wav: string | undefined;
  /** The conversion step priority 8 picks: 'Convert' (app_convert loaded) or 'perl'; undefined in an older extensions.conf. */
  readonly step: string | undefined;
}

/** GsmRoot / WavRoot / Step of the ping extension's UserEvent. */
export function rootsOf(userEvent: AmiMessage): DialplanRoots {
  return { gsm: getHeader(userEvent, 'GsmRoot'), wav: getHeader(userEvent, 'WavRoot'), step: getHeader(userEvent, 'Step') };
}

/** The doctor's line on the conversion step the dialplan will use, and why. */
export function stepReport(step: string | undefined): { readonly level: 'info' | 'warn'; readonly text: string } {
  switch (step) {
    case 'Convert':
      return {
        level: 'info',
        text: 'conversion step: Convert() — app_convert.so is loaded: decoded in process, no process per conversion',
      };
    case 'perl':
      return {
        level: 'info',
        text:
          'conversion step: the perl step — app_convert.so is not loaded (or func_module, which IFMODULE needs, is not), so each ' +
          'conversion starts sh, perl and untoast; build and load the module for several times the throughput: docs/asterisk.md §1',
      };
    default:
      return {
        level: 'warn',
        text:
          'conversion step: unknown — the ping extension does not report Step: the installed extensions.conf predates Convert(); ' +
          'install config/asterisk/extensions.conf, then asterisk -rx "dialplan reload"',
      };
  }
}

/** One problem: what is wrong and how to fix it. */
export interface RootsProblem {
  readonly problem: string;
  readonly fix: string;
}

const within = (path: string, root: string): boolean => {
  const r = root.length > 1 && root.endsWith('/') ? root.slice(0, -1) : root;
  return path === r || path.startsWith(r === '/' ? '/' : `${r}/`);
};

/**
 * The disagreements between the dialplan's roots and AllowedRoots, worst first; empty when they
 * agree: both dialplan roots are well-formed and inside an allowed root, and every allowed root
 * holds at least one of them (else jobs there pass the bridge and are refused by the dialplan).
 */
export function compareRoots(
  dialplan: Pick<DialplanRoots, 'gsm' | 'wav'>,
  allowedRoots: readonly string[],
  configFile: string,
): RootsProblem[] {
  const globalsFix =
    'set AUDIOCONVERT_GSM_ROOT and AUDIOCONVERT_WAV_ROOT in the [globals] of the shipped extensions.conf, then asterisk -rx "dialplan reload"';
  if (dialplan.gsm === undefined || dialplan.wav === undefined) {
    return [
      {
        problem:
          'the ping extension does not report GsmRoot/WavRoot: the installed extensions.conf predates dated trees (it refuses subdirectories)',
        fix: `install config/asterisk/extensions.conf; ${globalsFix}`,
      },
    ];
  }
  const problems: RootsProblem[] = [];
  const named: [string, string][] = [
    ['AUDIOCONVERT_GSM_ROOT', dialplan.gsm],
    ['AUDIOCONVERT_WAV_ROOT', dialplan.wav],
  ];
  for (const [name, root] of named) {
    if (!isDialplanRoot(root)) {
      problems.push({
        problem: `the dialplan's ${name} is ${root === '' ? 'empty' : `'${root}'`}: not ${DIALPLAN_ROOT_TEXT}, so the dialplan refuses every job`,
        fix: globalsFix,
      });
    } else if (!allowedRoots.some((allowed) => within(root, allowed))) {
      problems.push({
        problem: `the dialplan's ${name} ${root} is outside [Worker] AllowedRoots (${allowedRoots.join(', ')}): the bridge refuses every job there`,
        fix: `add ${root} (or a directory above it) to AllowedRoots in ${configFile}, or change ${name} in extensions.conf`,
      });
    }
  }
  for (const allowed of allowedRoots) {
    if (!named.some(([, root]) => within(root, allowed))) {
      problems.push({
        problem: `[Worker] AllowedRoots has ${allowed}, which holds neither dialplan root (${dialplan.gsm}, ${dialplan.wav}): jobs there pass the bridge and are dead-lettered as PATH_NOT_ALLOWED by the dialplan`,
        fix: `remove ${allowed} from AllowedRoots in ${configFile}, or point AUDIOCONVERT_GSM_ROOT/AUDIOCONVERT_WAV_ROOT below it`,
      });
    }
  }
  return problems;
}
