import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { UpstreamConnection } from '../src/proxy/connection.js';
import { ConnectionPool } from '../src/proxy/pool.js';

let server: Server | undefined;
let pool: ConnectionPool | undefined;

afterEach(async () => {
  pool?.close();
  await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
  server = pool = undefined;
});

/** A real upstream on loopback; `keepAliveHint` makes it announce `Keep-Alive: timeout=N`. */
async function upstream(keepAliveHint?: number): Promise<{ host: string; port: number; tls: false }> {
  server = createServer((req, res) => {
    req.resume();
    const headers: Record<string, string> = { 'content-type': 'text/plain', 'x-socket': String(req.socket.remotePort) };
    if (keepAliveHint !== undefined) headers['keep-alive'] = `timeout=${keepAliveHint}`;
    res.writeHead(200, headers);
    res.end(`${req.method} ${req.url}`);
  });
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  return { host: '127.0.0.1', port: (server.address() as AddressInfo).port, tls: false };
}

/** One GET through `connection`; resolves with the status, body and the upstream's view of the socket. */
function get(connection: UpstreamConnection, path: string): Promise<{ status: number; body: string; socket: string }> {
  return new Promise((resolve, reject) => {
    let status = 0;
    let socket = '';
    let body = '';
    connection.send(
      { method: 'GET', path, headers: [], body: null },
      {
        onHead: (head) => {
          status = head.status;
          socket = head.headers[head.headers.findIndex((name) => name.toLowerCase() === 'x-socket') + 1] as string;
        },
        onBody: (chunk) => {
          body += chunk.toString();
          return true;
        },
        onComplete: () => resolve({ status, body, socket }),
        onError: reject,
      },
    );
  });
}

describe('ConnectionPool', () => {
  it('reuses a kept-alive connection for the next exchange', async () => {
    pool = new ConnectionPool(await upstream(), 2_000);
    const first = await get(pool.acquire(), '/one');
    const again = pool.acquire();
    const second = await get(again, '/two');
    expect(first).toMatchObject({ status: 200, body: 'GET /one' });
    expect(second).toMatchObject({ status: 200, body: 'GET /two' });
    expect(second.socket).toBe(first.socket);
    expect(again.served).toBe(2);
  });

  it('opens a new connection instead of reusing one idle past the keep-alive limit', async () => {
    pool = new ConnectionPool(await upstream(), 100);
    const first = await get(pool.acquire(), '/');
    await new Promise((resolve) => setTimeout(resolve, 150));
    const fresh = pool.acquire();
    expect(fresh.served).toBe(0);
    expect((await get(fresh, '/')).socket).not.toBe(first.socket);
  });

  it("lets the upstream's Keep-Alive hint shorten the limit: a connection is dropped a second before it", async () => {
    // timeout=1 leaves no time at all once a second's margin is taken: never reused.
    pool = new ConnectionPool(await upstream(1), 2_000);
    const connection = pool.acquire();
    await get(connection, '/');
    expect(connection.idleLimit).toBe(0);
    expect(pool.acquire()).not.toBe(connection);
  });

  it('hands out a second connection while the first is busy', async () => {
    pool = new ConnectionPool(await upstream(), 2_000);
    const a = pool.acquire();
    const b = pool.acquire();
    expect(b).not.toBe(a);
    const [one, two] = await Promise.all([get(a, '/a'), get(b, '/b')]);
    expect(one.socket).not.toBe(two.socket);
  });

  it('fails an exchange with the connection error when nothing listens', async () => {
    const target = await upstream();
    await new Promise((resolve) => server?.close(resolve));
    server = undefined;
    pool = new ConnectionPool(target, 2_000);
    await expect(get(pool.acquire(), '/')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});
