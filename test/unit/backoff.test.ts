import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expBackoff } from '../../src/util/backoff.js';

const opts = { baseMs: 200, capMs: 15_000 } as const;

void test('without jitter the ceiling doubles from baseMs and stops at capMs', () => {
  const delays = Array.from({ length: 12 }, (_v, n) => expBackoff(n, { ...opts, jitter: 'none' }));
  assert.deepEqual(delays, [200, 400, 800, 1600, 3200, 6400, 12_800, 15_000, 15_000, 15_000, 15_000, 15_000]);
});

void test('equal jitter (default) stays in [ceiling/2, ceiling]', () => {
  for (let n = 0; n < 40; n++) {
    const ceiling = Math.min(opts.capMs, opts.baseMs * 2 ** n);
    assert.equal(
      expBackoff(n, opts, () => 0),
      Math.floor(ceiling / 2),
    );
    assert.equal(
      expBackoff(n, opts, () => 0.999_999),
      Math.floor(ceiling / 2 + (0.999_999 * ceiling) / 2),
    );
    assert.ok(expBackoff(n, opts) <= ceiling);
  }
});

void test('full jitter stays in [0, ceiling)', () => {
  assert.equal(
    expBackoff(5, { ...opts, jitter: 'full' }, () => 0),
    0,
  );
  assert.equal(
    expBackoff(5, { ...opts, jitter: 'full' }, () => 0.5),
    3200,
  );
  assert.equal(
    expBackoff(50, { ...opts, jitter: 'full' }, () => 0.5),
    7500,
  );
});

void test('grows with the attempt until the cap (same random draw)', () => {
  let previous = -1;
  for (let n = 0; n < 10; n++) {
    const delay = expBackoff(n, opts, () => 0.3);
    assert.ok(delay >= previous, `attempt ${n}: ${delay} < ${previous}`);
    previous = delay;
  }
  assert.ok(expBackoff(9, opts, () => 0.3) > expBackoff(0, opts, () => 0.3));
});

void test('never negative, never above the cap, always a finite integer — even for odd inputs', () => {
  const odd = [-5, -1, 0, 0.5, 1e6, Number.MAX_SAFE_INTEGER, Infinity, NaN];
  const randoms = [() => -3, () => 0, () => 0.5, () => 1, () => 7, () => NaN];
  for (const attempt of odd) {
    for (const random of randoms) {
      for (const jitter of ['full', 'equal', 'none'] as const) {
        const d = expBackoff(attempt, { ...opts, jitter }, random);
        assert.ok(Number.isInteger(d) && d >= 0 && d <= opts.capMs, `attempt ${attempt} ${jitter}: ${d}`);
      }
    }
  }
  assert.equal(expBackoff(3, { baseMs: 0, capMs: 100 }), 0);
});

void test('deterministic with an injected random source', () => {
  const seq = (): number[] => {
    let seed = 42;
    const random = (): number => ((seed = (seed * 16_807) % 2_147_483_647) - 1) / 2_147_483_646;
    return Array.from({ length: 20 }, (_v, n) => expBackoff(n, opts, random));
  };
  assert.deepEqual(seq(), seq());
});
