// The shipped manager.conf user: least privilege, and an event filter that lets through exactly
// the events the bridge follows (the Originator's and the client's own).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CLIENT_EVENTS } from '../../src/ami/client.js';
import { ORIGINATOR_EVENTS } from '../../src/worker/originate.js';

const conf = readFileSync(new URL('../../config/asterisk/manager.conf', import.meta.url), 'utf8');
const user = conf
  .slice(conf.indexOf('[auditorai]'))
  .split('\n')
  .filter((l) => !l.startsWith(';'));

describe('config/asterisk/manager.conf [auditorai]', () => {
  it('may originate only, and reads call, user and system events', () => {
    assert.ok(user.some((l) => /^write\s*=\s*originate\s*(;|$)/.test(l)));
    assert.ok(user.some((l) => /^read\s*=\s*call,user,system\s*(;|$)/.test(l)));
  });

  it('includes by name exactly the events the bridge follows, and nothing else', () => {
    const filters = user.filter((l) => l.startsWith('eventfilter'));
    assert.ok(filters.length > 0, 'an event filter is shipped');
    for (const f of filters) assert.match(f, /^eventfilter\(action\(include\),name\(\w+\)/, f);
    const names = filters.map((f) => /name\((\w+)\)/.exec(f)![1]!).sort();
    assert.deepEqual(names, [...ORIGINATOR_EVENTS, ...CLIENT_EVENTS].sort());
    const originateResponse = filters.find((f) => f.includes('name(OriginateResponse)'));
    assert.match(originateResponse ?? '', /header\(Response\),method\(exact\)\)\s*=\s*Failure$/, 'only a call that could not start');
    const userEvent = filters.find((f) => f.includes('name(UserEvent)'));
    assert.match(userEvent ?? '', /header\(UserEvent\),method\(exact\)\)\s*=\s*AudioConvert$/, 'only the dialplan’s UserEvent');
    const hangup = filters.find((f) => f.includes('name(Hangup)'));
    assert.match(hangup ?? '', /header\(Channel\),method\(ends_with\)\)\s*=\s*\\;1$/, 'only the ;1 half’s Hangup (an escaped semicolon)');
  });
});
