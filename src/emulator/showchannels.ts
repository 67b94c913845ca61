/**
 * Action: CoreShowChannels (needs write = reporting or system), shaped like
 * reconnect-query-inflight.txt: a bridge that reconnects can find its in-flight jobs by Uniqueid.
 */
import type { Call } from './call.js';
import { tempPathOf } from '../characters.js';
import { ANSWER_HOLD_MS, HOLD_ANSWER_PRIORITY, HOLD_WAIT_PRIORITY } from './dialplan.js';
import { chanBlock, response, type ChanSnap } from './events.js';
import type { AmiSession } from './session.js';

function duration(sinceMs: number): string {
  const s = Math.max(0, Math.floor((Date.now() - sinceMs) / 1000));
  const pad = (n: number): string => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

function item(idLine: string, snap: ChanSnap, app: string, data: string, since: number): string {
  return `Event: CoreShowChannel\r\n${idLine}${chanBlock('', snap)}Application: ${app}\r\nApplicationData: ${data}\r\nDuration: ${duration(since)}\r\nBridgeId: \r\n\r\n`;
}

/** What ;1 is running at its current priority (only the step is worth naming). */
function jobApp(call: Call): [string, string] {
  if (call.priority !== 12) return ['NoOp', ''];
  const v = call.spec.vars;
  const gsm = v.get('GSM_PATH') ?? '';
  const wav = v.get('WAV_PATH') ?? '';
  const tmp = tempPathOf(wav, v.get('JOB_ID') ?? '');
  return [
    'Set',
    `STEP_OUT=\${SHELL(exec perl -e '… exec "untoast", "-l") … waitpid $dec, 0; $s = $?; $dec = 0; $s == 0 && -s $tmp == 44 + $n && rename($tmp, $wav) && print "OK\\n"' -- ${gsm} ${tmp} ${wav})}`,
  ];
}

export function coreShowChannels(session: AmiSession, actionId: string | undefined, calls: Iterable<Call>): void {
  const idLine = actionId === undefined ? '' : `ActionID: ${actionId}\r\n`;
  let out = response('Success', actionId, 'EventList: start\r\nMessage: Channels will follow\r\n');
  let count = 0;
  for (const call of calls) {
    const since = call.answeredAt;
    const holdPriority = Date.now() - since < ANSWER_HOLD_MS ? HOLD_ANSWER_PRIORITY : HOLD_WAIT_PRIORITY;
    out += item(
      idLine,
      call.s2(6, holdPriority),
      holdPriority === HOLD_WAIT_PRIORITY ? 'Wait' : 'Answer',
      holdPriority === HOLD_WAIT_PRIORITY ? '600' : '',
      since,
    );
    const [app, data] = jobApp(call);
    out += item(idLine, call.s1At(call.priority), app, data, since);
    count += 2;
  }
  out += `Event: CoreShowChannelsComplete\r\n${idLine}EventList: Complete\r\nListItems: ${count}\r\n\r\n`;
  session.send(out);
}
