/**
 * A deliberately minimal AMI client for the baselines: one socket, text split at blank lines,
 * no validation, no pair arrays, no emitter. Each complete message is handed over as a slice of
 * the received text (start..end) so a caller that only wants one header allocates nothing else.
 */
import net from 'node:net';

/** Receives every message as text[start, end) (CRLF-terminated lines, blank line excluded). */
export type OnMessage = (text: string, start: number, end: number) => void;

export class MiniAmi {
  private carry = '';
  private bannerSeen = false;
  private constructor(
    readonly socket: net.Socket,
    private onMessage: OnMessage,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
  }

  /** Connects and resolves once the banner line has arrived. */
  static connect(port: number, onMessage: OnMessage, host = '127.0.0.1'): Promise<MiniAmi> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const ami = new MiniAmi(socket, onMessage);
      ami.onBanner = () => {
        socket.off('error', reject);
        resolve(ami);
      };
      socket.once('error', reject);
    });
  }

  onBanner: () => void = () => undefined;

  setHandler(onMessage: OnMessage): void {
    this.onMessage = onMessage;
  }

  write(text: string): void {
    this.socket.write(text);
  }

  private onData(chunk: Buffer): void {
    let text = this.carry.length === 0 ? chunk.toString('latin1') : this.carry + chunk.toString('latin1');
    let start = 0;
    if (!this.bannerSeen) {
      const eol = text.indexOf('\r\n');
      if (eol < 0) {
        this.carry = text;
        return;
      }
      this.bannerSeen = true;
      start = eol + 2;
      this.onBanner();
    }
    for (;;) {
      const end = text.indexOf('\r\n\r\n', start);
      if (end < 0) break;
      this.onMessage(text, start, end + 2);
      start = end + 4;
    }
    this.carry = start === text.length ? '' : text.slice(start);
    text = '';
  }
}

/** The value of `key` inside text[start, end), or undefined. `key` includes the colon and blank: 'Uniqueid: '. */
export function headerIn(text: string, start: number, end: number, key: string): string | undefined {
  let at = start;
  for (;;) {
    at = text.indexOf(key, at);
    if (at < 0 || at >= end) return undefined;
    if (at === start || text.charCodeAt(at - 1) === 0x0a) break;
    at += key.length;
  }
  const from = at + key.length;
  const eol = text.indexOf('\r\n', from);
  return text.slice(from, eol < 0 || eol > end ? end : eol);
}

/** One AMI action as wire text from ordered pairs. */
export function action(pairs: ReadonlyArray<readonly [string, string]>): string {
  let out = '';
  for (const [key, value] of pairs) out += `${key}: ${value}\r\n`;
  return `${out}\r\n`;
}

/** The pairs of the bridge's Originate (as the bridge sends them), without ActionID. */
export function originatePairs(attemptId: string, gsmPath: string, wavPath: string, async = true): Array<[string, string]> {
  return [
    ['Action', 'Originate'],
    ['Channel', 'Local/s@audio-convert-hold'],
    ['Context', 'audio-convert'],
    ['Exten', 'convert'],
    ['Priority', '1'],
    ['ChannelId', attemptId],
    ['Variable', `JOB_ID=${attemptId}`],
    ['Variable', `GSM_PATH=${gsmPath}`],
    ['Variable', `WAV_PATH=${wavPath}`],
    ...(async ? ([['Async', 'true']] as Array<[string, string]>) : []),
  ];
}

/** Logs in (by default with the emulator's user); resolves on `Response: Success`. */
export function login(ami: MiniAmi, user = 'auditorai', secret = 'simulator'): Promise<void> {
  return new Promise((resolve, reject) => {
    ami.setHandler((text, start, end) => {
      if (!text.startsWith('Response: ', start)) return;
      if (text.startsWith('Response: Success', start)) resolve();
      else reject(new Error(`AMI login refused: ${text.slice(start, end)}`));
    });
    ami.write(
      action([
        ['Action', 'Login'],
        ['Username', user],
        ['Secret', secret],
        ['ActionID', 'login'],
      ]),
    );
  });
}
