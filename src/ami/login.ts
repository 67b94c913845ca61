/**
 * The AMI login as pure steps: what to write after the banner, and what each Response means.
 * Plain: `Login` with `Secret`. MD5 (Asterisk's Challenge and Login actions): `Challenge` with
 * `AuthType: MD5`, then `Login` with `AuthType: MD5` and `Key` = lower-case hex md5(challenge +
 * secret), so the secret never crosses the wire. No sockets, no timers.
 */
import { createHash } from 'node:crypto';
import { getHeader, type AmiMessage, type AmiPair } from './protocol.js';

export interface LoginCredentials {
  readonly username: string;
  readonly secret: string;
  readonly authType: 'plain' | 'md5';
  /** The Login `Events:` value (event classes to receive). */
  readonly events: string;
}

export type LoginPhase = 'challenge' | 'login';

export type LoginStep =
  /** Write these pairs (the caller appends the ActionID); feed the Response to nextLoginStep. */
  | { readonly kind: 'send'; readonly phase: LoginPhase; readonly pairs: readonly AmiPair[] }
  | { readonly kind: 'logged-in' }
  /** "Authentication failed": wrong user or secret, or this host not permitted. A person must fix it. */
  | { readonly kind: 'auth-failed'; readonly message: string }
  /** Anything else (e.g. "Asterisk is shutting down" during a restart): try again later. */
  | { readonly kind: 'refused'; readonly message: string }
  /** The banner is not Asterisk's: whatever listens there is not an AMI server. */
  | { readonly kind: 'not-ami'; readonly message: string };

/** Asterisk's greeting line, e.g. `Asterisk Call Manager/11.0.0` (22.10.1). */
const BANNER = /^Asterisk Call Manager\//;

/** The first action after the banner line, or `not-ami` for someone else's banner. */
export function firstLoginStep(credentials: LoginCredentials, banner: string): LoginStep {
  if (!BANNER.test(banner)) return { kind: 'not-ami', message: `not an AMI server: banner ${JSON.stringify(banner.slice(0, 80))}` };
  if (credentials.authType === 'md5')
    return {
      kind: 'send',
      phase: 'challenge',
      pairs: [
        ['Action', 'Challenge'],
        ['AuthType', 'MD5'],
      ],
    };
  return loginAction(credentials, [['Secret', credentials.secret]]);
}

/** What the Response to the `phase` action means, and what comes next. */
export function nextLoginStep(credentials: LoginCredentials, phase: LoginPhase, response: AmiMessage): LoginStep {
  const ok = getHeader(response, 'Response') === 'Success';
  const message = getHeader(response, 'Message') || '(no message)';
  if (phase === 'challenge') {
    const challenge = getHeader(response, 'Challenge');
    if (!ok || challenge === undefined) return { kind: 'refused', message: `Challenge refused: ${message}` };
    return loginAction(credentials, [
      ['AuthType', 'MD5'],
      ['Key', md5Key(challenge, credentials.secret)],
    ]);
  }
  if (ok) return { kind: 'logged-in' };
  // Asterisk's wording for a wrong secret, an unknown user and a denied host alike (login-bad-password.txt).
  if (/^authentication failed/i.test(message)) return { kind: 'auth-failed', message };
  return { kind: 'refused', message };
}

/** The MD5 login key: lower-case hex md5 of the challenge followed by the secret. */
export function md5Key(challenge: string, secret: string): string {
  return createHash('md5')
    .update(challenge + secret)
    .digest('hex');
}

function loginAction(credentials: LoginCredentials, auth: readonly AmiPair[]): LoginStep {
  return {
    kind: 'send',
    phase: 'login',
    pairs: [['Action', 'Login'], ['Username', credentials.username], ...auth, ['Events', credentials.events]],
  };
}
