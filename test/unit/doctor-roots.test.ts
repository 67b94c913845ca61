// compareRoots: the dialplan's roots (ping's GsmRoot/WavRoot) against [Worker] AllowedRoots.
import assert from 'node:assert/strict';
import { describe, it, test } from 'node:test';
import { compareRoots, stepReport } from '../../src/tools/doctor-roots.js';

const shipped = { gsm: '/var/local/auditorai/gsm', wav: '/var/local/auditorai/wav' };
const problems = (d: { gsm: string | undefined; wav: string | undefined }, allowed: string[]): string[] =>
  compareRoots(d, allowed, '/etc/auditorai/transcoding.conf').map((p) => p.problem);

describe('compareRoots', () => {
  it('the defaults agree (a trailing slash or a root above both is fine)', () => {
    assert.deepEqual(problems(shipped, ['/var/local/auditorai']), []);
    assert.deepEqual(problems(shipped, ['/var/local/auditorai/']), []);
    assert.deepEqual(problems(shipped, ['/var/local/auditorai/gsm', '/var/local/auditorai/wav']), []);
  });

  it('a dialplan root outside AllowedRoots, and an allowed root the dialplan never accepts', () => {
    const found = problems({ gsm: '/srv/rec/gsm', wav: '/var/local/auditorai/wav' }, ['/var/local/auditorai', '/data']);
    assert.equal(found.length, 2);
    assert.match(found[0]!, /AUDIOCONVERT_GSM_ROOT \/srv\/rec\/gsm is outside \[Worker\] AllowedRoots/);
    assert.match(found[1]!, /AllowedRoots has \/data, which holds neither dialplan root/);
  });

  it('a root-prefix sibling is not inside', () => {
    assert.match(
      problems({ gsm: '/var/local/auditorai2/gsm', wav: '/var/local/auditorai/wav' }, ['/var/local/auditorai'])[0]!,
      /auditorai2\/gsm is outside/,
    );
  });

  it('an empty or malformed root, or an old dialplan without the headers', () => {
    assert.match(problems({ gsm: '', wav: shipped.wav }, ['/var/local/auditorai'])[0]!, /AUDIOCONVERT_GSM_ROOT is empty/);
    assert.match(
      problems({ gsm: '/var/local/audit.orai/gsm', wav: shipped.wav }, ['/var/local'])[0]!,
      /'\/var\/local\/audit\.orai\/gsm': not an absolute path/,
    );
    assert.match(problems({ gsm: undefined, wav: undefined }, ['/var/local/auditorai'])[0]!, /does not report GsmRoot\/WavRoot/);
  });
});

describe('the conversion step the ping reports', () => {
  test('Convert: INFO, in process', () => {
    const r = stepReport('Convert');
    assert.equal(r.level, 'info');
    assert.match(r.text, /Convert\(\) — app_convert\.so is loaded/);
  });
  test('perl: INFO, with what the module would change and where to read how', () => {
    const r = stepReport('perl');
    assert.equal(r.level, 'info');
    assert.match(r.text, /not loaded .* docs\/asterisk\.md §1/);
  });
  test('no Step header: WARN, the extensions.conf is older', () => {
    const r = stepReport(undefined);
    assert.equal(r.level, 'warn');
    assert.match(r.text, /predates Convert\(\)/);
  });
});
