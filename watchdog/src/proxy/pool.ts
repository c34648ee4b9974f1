import { type UpstreamTarget, UpstreamConnection } from './connection.js';

/**
 * The upstream's kept-alive connections. The most recently used idle connection is reused first
 * (its upstream side is the least likely to have timed out); one idle longer than its limit is
 * closed rather than reused, so the watchdog never sends on a connection the upstream is closing.
 */
export class ConnectionPool {
  readonly #idle: UpstreamConnection[] = [];
  readonly #all = new Set<UpstreamConnection>();
  readonly #sweeper: NodeJS.Timeout;

  /** `keepAlive`: how long a connection may stay idle, ms (a server's own hint can shorten it). */
  constructor(
    private readonly target: UpstreamTarget,
    private readonly keepAlive: number,
  ) {
    // Closes connections left idle, so an upstream with no traffic holds no sockets open.
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(keepAlive, 1_000)).unref();
  }

  /** An idle connection still fresh enough to use, or a new one. */
  acquire(): UpstreamConnection {
    const now = performance.now();
    for (let connection = this.#idle.pop(); connection; connection = this.#idle.pop()) {
      if (connection.usable && now - connection.idleSince < connection.idleLimit) return connection;
      connection.close();
    }
    const connection = new UpstreamConnection(
      this.target,
      this.keepAlive,
      (released) => this.#idle.push(released),
      (gone) => this.#forget(gone),
    );
    this.#all.add(connection);
    return connection;
  }

  /** Closes every connection; exchanges in progress fail. */
  close(): void {
    clearInterval(this.#sweeper);
    for (const connection of this.#all) connection.close();
  }

  #forget(connection: UpstreamConnection): void {
    this.#all.delete(connection);
    const at = this.#idle.indexOf(connection);
    if (at !== -1) this.#idle.splice(at, 1);
  }

  #sweep(): void {
    const now = performance.now();
    for (const connection of [...this.#idle]) {
      if (now - connection.idleSince >= connection.idleLimit) connection.close();
    }
  }
}
