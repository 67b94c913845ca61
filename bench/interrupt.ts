/**
 * Clean-up that must also happen when a run is interrupted (Ctrl-C, SIGTERM): a throwaway Asterisk
 * left running, the machine's RabbitMQ left pinned to one CPU. One handler per signal runs every
 * registered step, newest first, then lets the signal end the process as it would have. A SIGKILL
 * still leaves them behind (docs/benchmarks.md, "How to reproduce").
 */
const steps: Array<() => void> = [];

function interrupted(signal: NodeJS.Signals): void {
  for (const step of steps.splice(0).reverse()) {
    try {
      step();
    } catch (error) {
      process.stderr.write(`bench: clean-up after ${signal} failed: ${String(error)}\n`);
    }
  }
  process.kill(process.pid, signal);
}

/** Runs `step` if the process is interrupted before the returned function is called. */
export function onInterrupt(step: () => void): () => void {
  if (steps.length === 0) {
    process.once('SIGINT', interrupted);
    process.once('SIGTERM', interrupted);
  }
  steps.push(step);
  return () => {
    const at = steps.indexOf(step);
    if (at >= 0) steps.splice(at, 1);
    if (steps.length === 0) {
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
    }
  };
}
