import { createServer, type Server } from 'node:http';

/** What the local email API received. */
export interface SinkStats {
  readonly requests: number;
  /** Distinct idempotency keys accepted: one per email a user would get. */
  readonly emails: number;
  /** Requests repeating an idempotency key already accepted: answered 200 `duplicate`, nothing sent again. */
  readonly repeatedKeys: number;
  /** Orders that got more than one email (accepted under different idempotency keys): what a user would see twice. */
  readonly duplicateEmails: number;
  /** Requests answered 503 while the API was made unavailable. */
  readonly unavailable: number;
  readonly unauthorized: number;
}

/** The order id an order-emailer confirmation names in its body (`… order <id> was executed …`). */
const ORDER_IN_BODY = /\border (\S+) was executed\b/;

/**
 * A stand-in for the third-party email API: accepts `POST /` with a bearer token and an Idempotency-Key,
 * answers 202 after `latency` ms, and counts what a real provider would have sent. Like a real provider it
 * sends nothing twice for one key (a repeat is answered 200 `duplicate`). Faults can be switched on while it
 * runs: {@link unavailableFor} (503 with `Retry-After: 1`) and {@link latency} (slow answers).
 */
export class EmailSink {
  readonly #token: string;
  /** Milliseconds before each answer; change it at any time to slow the API down. */
  latency: number;
  /** Idempotency key → emails accepted under it (1 once accepted; repeats are not sent again). */
  readonly #keys = new Map<string, number>();
  /** Order id (from the body) → emails accepted for it. */
  readonly #orders = new Map<string, number>();
  #requests = 0;
  #repeated = 0;
  #unavailable = 0;
  #unauthorized = 0;
  #unavailableUntil = 0;
  #server: Server | undefined;

  constructor(options: { token: string; latencyMs?: number }) {
    this.#token = options.token;
    this.latency = options.latencyMs ?? 20;
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
        if (Date.now() < this.#unavailableUntil) {
          this.#unavailable += 1;
          res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"error":"try again"}');
          return;
        }
        const key = String(req.headers['idempotency-key'] ?? '');
        setTimeout(() => {
          if (this.#keys.has(key)) {
            this.#repeated += 1;
            res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted: key, duplicate: true }));
            return;
          }
          this.#keys.set(key, 1);
          const order = ORDER_IN_BODY.exec(Buffer.concat(chunks).toString('utf8'))?.[1] ?? key;
          this.#orders.set(order, (this.#orders.get(order) ?? 0) + 1);
          res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ accepted: key }));
        }, this.latency);
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(port, '127.0.0.1', () => resolve()));
    return (this.#server.address() as { port: number }).port;
  }

  /** Answers every request 503 (`Retry-After: 1`) for the next `ms` milliseconds. */
  unavailableFor(ms: number): void {
    this.#unavailableUntil = Date.now() + ms;
  }

  /** How many of these idempotency keys were emailed (others may come from earlier runs or other producers). */
  emailed(keys: Iterable<string>): number {
    let n = 0;
    for (const key of keys) if (this.#keys.has(key)) n += 1;
    return n;
  }

  /** Emails accepted for one order id, whatever their idempotency keys. */
  emailsFor(orderId: string): number {
    return this.#orders.get(orderId) ?? 0;
  }

  stats(): SinkStats {
    let duplicates = 0;
    for (const n of this.#orders.values()) if (n > 1) duplicates += n - 1;
    return {
      requests: this.#requests,
      emails: this.#keys.size,
      repeatedKeys: this.#repeated,
      duplicateEmails: duplicates,
      unavailable: this.#unavailable,
      unauthorized: this.#unauthorized,
    };
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server) return resolve();
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
  }
}
