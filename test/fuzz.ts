/**
 * `npm run fuzz [-- --seconds 300] [--seed N]`: the AMI protocol fuzzer of
 * test/unit/fuzz-protocol.test.ts, for as long as you like. Runs batches of 2,000 iterations, each
 * batch with its own seed (seed, seed+1, …), prints progress, and on the first failure prints the
 * batch seed and the input and exits 1: replay it with
 * `AUDIOCONVERT_FUZZ_SEED=<seed> node --import tsx --test test/unit/fuzz-protocol.test.ts`.
 *
 * It lives in test/ because it needs the test helpers.
 */
import { parseArgs } from 'node:util';
import { fuzz, recordedStreams, type FuzzStats } from './helpers/fuzz.js';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '60' }, seed: { type: 'string' } },
  strict: true,
});
const seconds = Number(values.seconds);
if (!Number.isFinite(seconds) || seconds <= 0) throw new Error(`--seconds ${values.seconds}: a positive number`);
const firstSeed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed);

const streams = recordedStreams();
const total: FuzzStats = { iterations: 0, protocolErrors: 0, frames: 0, serializeRefused: 0, serializeWritten: 0 };
const deadline = Date.now() + seconds * 1000;
let seed = firstSeed;
process.stdout.write(
  `fuzzing the AMI parser and serializer for ${seconds} s from seed ${firstSeed} (${streams.length} recorded streams)\n`,
);
try {
  while (Date.now() < deadline) {
    const stats = fuzz(seed, 2000, deadline - Date.now(), streams);
    for (const key of Object.keys(total) as (keyof FuzzStats)[]) total[key] += stats[key];
    process.stdout.write(`seed ${seed}: ok; ${total.iterations} iterations so far\n`);
    seed++;
  }
} catch (error) {
  process.stderr.write(`FAILED (batch seed ${seed}): ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}
process.stdout.write(`done: ${JSON.stringify(total)}\n`);
