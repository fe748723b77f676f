/**
 * The email API of the order-emailer scenario: a real HTTP server on 127.0.0.1, run by the bench runner (not
 * the measured child), answering every POST `200` after `delayMs`. It counts the successful POSTs of each
 * `Idempotency-Key`, so a run can be checked for orders confirmed twice or not at all.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export class EmailSink {
  /** Successful POSTs per Idempotency-Key since the last {@link reset}. */
  readonly posts = new Map<string, number>();
  readonly #server: Server;
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor(server: Server) {
    this.#server = server;
  }

  static async start(delayMs: number): Promise<EmailSink> {
    const server = createServer();
    const sink = new EmailSink(server);
    server.on('request', (req, res) => {
      req.resume();
      req.on('end', () => {
        const key = req.headers['idempotency-key'];
        const timer = setTimeout(() => {
          sink.#timers.delete(timer);
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"ok":true}', () => {
            if (typeof key === 'string') sink.posts.set(key, (sink.posts.get(key) ?? 0) + 1);
          });
        }, delayMs);
        sink.#timers.add(timer);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return sink;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v1/emails`;
  }

  reset(): void {
    this.posts.clear();
  }

  /** What is wrong with the POSTs of orders `o-0` … `o-(n-1)`: none missing, none twice, nothing else. */
  check(n: number): string[] {
    const problems: string[] = [];
    let missing = 0;
    let twice = 0;
    for (let i = 0; i < n; i += 1) {
      const c = this.posts.get(`o-${i}`) ?? 0;
      if (c === 0) missing += 1;
      else if (c > 1) twice += 1;
    }
    if (missing > 0) problems.push(`${missing} orders without a successful POST`);
    if (twice > 0) problems.push(`${twice} orders POSTed successfully more than once`);
    if (this.posts.size > n) problems.push(`${this.posts.size - n} POSTs of unknown orders`);
    return problems;
  }

  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
