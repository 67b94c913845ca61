// A throwaway self-signed certificate for the TLS tests (AMI over TLS, AMQPS through a proxy).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Writes `key.pem` and `cert.pem` into `dir`: self-signed, valid one day, for localhost and
 * 127.0.0.1. Fails (not skips) without openssl.
 */
export function selfSigned(dir: string): { key: string; cert: string } {
  const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
  try {
    execFileSync(
      'openssl',
      [
        ...['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1'],
        ...['-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
      ],
      { stdio: 'ignore' },
    );
  } catch (error) {
    assert.fail(`openssl is needed to make a throwaway test certificate (apt-get install openssl): ${String(error)}`);
  }
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}
