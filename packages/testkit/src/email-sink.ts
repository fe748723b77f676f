import { createServer, type Server } from 'node:http';

/** What the local email API received. */
export interface SinkStats {
  readonly requests: number;
  /** Distinct idempotency keys accepted: one per email a user would get. */
  readonly emails: number;
  /** Requests repeating an idempotency key already accepted (the API deduplicated them). */
  readonly repeatedKeys: number;
  readonly unauthorized: number;
}

/**
 * A stand-in for the third-party email API: accepts `POST /` with a bearer token and an Idempotency-Key,
 * answers 202 after `latencyMs`, and counts what a real provider would have sent.
 */
export class EmailSink {
  readonly #token: string;
  readonly #latencyMs: number;
  readonly #keys = new Map<string, number>();
  #requests = 0;
  #unauthorized = 0;
  #server: Server | undefined;

  constructor(options: { token: string; latencyMs?: number }) {
    this.#token = options.token;
    this.#latencyMs = options.latencyMs ?? 20;
  }

  async listen(port: number): Promise<number> {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.#requests += 1;
        if (req.headers.authorization !== `Bearer ${this.#token}`) {
          this.#unauthorized += 1;
          res.writeHead(401).end();
          return;
        }
        const key = String(req.headers['idempotency-key'] ?? '');
        setTimeout(() => {
          this.#keys.set(key, (this.#keys.get(key) ?? 0) + 1);
          res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted: key }));
        }, this.#latencyMs);
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(port, '127.0.0.1', () => resolve()));
    return (this.#server.address() as { port: number }).port;
  }

  /** How many of these idempotency keys were emailed (others may come from earlier runs or other producers). */
  emailed(keys: Iterable<string>): number {
    let n = 0;
    for (const key of keys) if (this.#keys.has(key)) n += 1;
    return n;
  }

  stats(): SinkStats {
    let repeated = 0;
    for (const n of this.#keys.values()) repeated += n - 1;
    return { requests: this.#requests, emails: this.#keys.size, repeatedKeys: repeated, unauthorized: this.#unauthorized };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
