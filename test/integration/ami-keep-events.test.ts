/**
 * AmiClient's `keepEvents` against the AMI emulator over TCP: the bridge's client hands only the
 * events the Originator reads to its listeners (plus FullyBooted/Shutdown, which the client needs),
 * and a job still ends converted, in every recorded event order.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { ORIGINATOR_EVENTS, Originator } from '../../src/worker/originate.js';
import { getHeader, type AmiMessage } from '../../src/ami/protocol.js';
import { AsteriskEmulator, type ReorderMode } from '../../src/emulator/server.js';
import { clientFor, onConnected } from '../helpers/ami-client.js';

const TEST = { timeout: 20_000 };
const TARGET = { channel: 'Local/s@audio-convert-hold', context: 'audio-convert', exten: 'convert' };

void describe('AmiClient keepEvents', () => {
  for (const reorder of ['none', 'userevent-first', 'originateresponse-first', 'hangup2-first'] as ReorderMode[]) {
    void test(`only the kept events reach listeners; the job converts (order: ${reorder})`, TEST, async (t) => {
      const emu = await AsteriskEmulator.start({ port: 0, mode: 'instant', root: '/var/local/auditorai' });
      t.after(() => emu.close());
      emu.setReorder(reorder);
      const client = clientFor(emu.port, t, { keepEvents: ORIGINATOR_EVENTS });
      const names: string[] = [];
      client.on('event', (e: AmiMessage) => names.push(getHeader(e, 'Event') ?? '?'));
      const booted = once(client, 'fullyBooted');
      await onConnected(client);
      await booted;
      const originator = new Originator(client, TARGET);
      t.after(() => originator.dispose());
      const outcome = await originator.run({
        gsmPath: '/var/local/auditorai/gsm/a.gsm',
        wavPath: '/var/local/auditorai/wav/a.wav',
        timeoutMs: 5000,
      });
      assert.equal(outcome.kind, 'converted');
      assert.deepEqual([...new Set(names)].sort(), ['FullyBooted', 'Hangup', 'OriginateResponse', 'UserEvent']);
      // The job's 14 events, 4 of them kept (Hangup twice: ;1 and ;2); responses still resolve actions.
      assert.equal(names.filter((n) => n !== 'FullyBooted').length, 4);
      assert.equal(getHeader(await client.action([['Action', 'Ping']]), 'Ping'), 'Pong');
    });
  }
});
