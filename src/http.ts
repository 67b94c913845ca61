/**
 * The HTTP side for Prometheus and systemd/Kubernetes-style probes, on node:http:
 * `GET /metrics`, `GET /healthz` (the process answers), `GET /readyz` (200 only when every check is ok,
 * else 503 naming what is down and why). Binds where it is told (the config's default is loopback).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { StartupError } from './errors.js';
import type { Logger } from './log.js';

/** One readiness check: `ok`, and a detail a person can act on (`"login refused: check [AsteriskAMI] Secret"`). */
export interface ReadinessCheck {
  readonly ok: boolean;
  readonly detail: string;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, ReadinessCheck>>;
}

export interface HttpServerOptions {
  readonly host: string;
  /** 0 asks the OS for a free port (tests); the bound port is returned. */
  readonly port: number;
  readonly registry: Registry;
  /** Called on every `/readyz`; must be cheap and must not throw. */
  readonly readiness: () => Readiness;
  readonly logger: Logger;
}

export interface HttpServer {
  /** The port actually bound. */
  readonly port: number;
  /** Stop listening and drop open (keep-alive) connections. Idempotent. */
  close(): Promise<void>;
}

/** Start listening; resolves once bound, rejects (e.g. EADDRINUSE) with a message naming the address. */
export async function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const log = options.logger.child({ component: 'http' });
  const server = createServer((req, res) => {
    handle(req, res, options).catch((err: unknown) => {
      log.error('request failed', { path: req.url, err });
      if (!res.headersSent) send(res, req, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  // A scrape or probe is tiny: do not let a slow or idle client hold a socket for long.
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      const where = options.host.includes(':') ? `[${options.host}]:${options.port}` : `${options.host}:${options.port}`;
      reject(
        new StartupError(
          `cannot listen on ${where} for /metrics: ${err.code ?? err.message}` +
            (err.code === 'EADDRINUSE' ? ' (another process uses the port: change [Metrics] Listen)' : ''),
          { cause: err },
        ),
      );
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.error('http server error', { err }));
  const port = (server.address() as AddressInfo).port;
  log.info('http listening', { host: options.host, port });

  let closing: Promise<void> | undefined;
  return {
    port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        // close() waits for every connection to end; a scraper's keep-alive socket would hold it for seconds.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

async function handle(req: IncomingMessage, res: ServerResponse, options: HttpServerOptions): Promise<void> {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const known = path === '/metrics' || path === '/healthz' || path === '/readyz';
  if (!known) {
    send(res, req, 404, 'text/plain; charset=utf-8', 'not found: try /metrics, /healthz or /readyz\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    send(res, req, 405, 'text/plain; charset=utf-8', 'method not allowed: use GET\n');
    return;
  }
  if (path === '/metrics') {
    const body = await options.registry.metrics();
    send(res, req, 200, options.registry.contentType, body);
  } else if (path === '/healthz') {
    sendJson(res, req, 200, { status: 'ok' });
  } else {
    const { ready, checks } = options.readiness();
    const down = Object.entries(checks)
      .filter(([, check]) => !check.ok)
      .map(([name, check]) => `${name}: ${check.detail}`);
    sendJson(res, req, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', down, checks });
  }
}

function sendJson(res: ServerResponse, req: IncomingMessage, status: number, body: unknown): void {
  send(res, req, status, 'application/json; charset=utf-8', `${JSON.stringify(body)}\n`);
}

function send(res: ServerResponse, req: IncomingMessage, status: number, contentType: string, body: string): void {
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', Buffer.byteLength(body));
  // Probes and scrapes must see the current state, never a cached one.
  res.setHeader('Cache-Control', 'no-store');
  res.end(req.method === 'HEAD' ? undefined : body);
}
