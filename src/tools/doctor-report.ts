/** What `audio-convert doctor` prints, one check at a time (shared by the RabbitMQ and the AMI checks). */
import type { Output } from './output.js';

/** The doctor's printed lines: `OK   what`, `FAIL what: problem` + `     fix: …`, `INFO`, `WARN`, `SKIP`. */
export class DoctorReport {
  failures = 0;
  constructor(private readonly out: Output) {}

  ok(what: string): void {
    this.out.write(`OK   ${what}\n`);
  }

  fail(what: string, problem: string, fix: string): void {
    this.failures++;
    this.out.write(`FAIL ${what}: ${problem}\n     fix: ${fix}\n`);
  }

  info(what: string): void {
    this.out.write(`INFO ${what}\n`);
  }

  warn(what: string): void {
    this.out.write(`WARN ${what}\n`);
  }

  skip(what: string, why: string): void {
    this.out.write(`SKIP ${what}: ${why}\n`);
  }
}
