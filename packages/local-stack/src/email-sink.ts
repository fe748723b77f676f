import { randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

/** One request the email API received, and what became of it. */
export interface SinkRequest {
  readonly method: string;
  readonly path: string;
  /** The `Idempotency-Key` header, when there is one. */
  readonly key: string | undefined;
  readonly headers: IncomingHttpHeaders;
  /** The body parsed as JSON, or its text when it is not JSON. */
  readonly body: unknown;
  /** When the whole body had arrived (epoch ms). */
  readonly at: number;
  /** `answered`: the response was written out; `abandoned`: the client went away first; `pending`: neither yet. */
  outcome: 'pending' | 'answered' | 'abandoned';
  /** The status it was answered with; `undefined` while pending or when the connection was dropped. */
  status: number | undefined;
}

/**
 * What a {@link Script} makes of a request. With a `status`, exactly that answer (after `delayMs`), and no email
 * is sent. Without one, the request goes on as a normal email (idempotency, counting, 200), after `delayMs`
 * instead of {@link EmailSink.latency}. `destroy` drops the connection without answering (a network error for
 * the client).
 */
export interface Answer {
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string>>;
  /** Body of a scripted status; default `{}`. */
  readonly body?: string;
  readonly delayMs?: number;
  readonly destroy?: boolean;
}

/** Picks the answer of a request; `nth` counts the requests of its Idempotency-Key, from 1. */
export type Script = (request: SinkRequest, nth: number) => Answer | Promise<Answer>;

/** How the API answers while it is failing on purpose: 503 or 429, with `Retry-After` in seconds. */
export interface Outage {
  /** Default 503. */
  readonly status?: 503 | 429;
  /** The `Retry-After` header, in seconds; default 1. */
  readonly retryAfterSeconds?: number;
}

/** One email the API accepted, as `GET /sent` lists it. */
export interface SentEmail {
  readonly id: string;
  readonly receivedAt: string;
  readonly idempotencyKey: string | null;
  readonly path: string;
  readonly email: unknown;
}

/** What the email API received. */
export interface SinkStats {
  readonly requests: number;
  /** Emails accepted: one per idempotency key (and one per request without a key), what users would get. */
  readonly emails: number;
  /** Requests repeating an idempotency key already accepted: answered 200 `duplicate`, nothing sent again. */
  readonly repeatedKeys: number;
  /** Orders that got more than one email (accepted under different idempotency keys): what a user would see twice. */
  readonly duplicateEmails: number;
  /** Requests answered 503/429 because the API was failing on purpose ({@link EmailSink.unavailableFor}, {@link EmailSink.failNext}, `failRate`). */
  readonly unavailable: number;
  readonly unauthorized: number;
}

/** One line of what the sink did, for a log (`msg` says what). */
export type SinkEvent = Readonly<Record<string, unknown>> & { readonly msg: string };

export interface EmailSinkOptions {
  /** When set, a POST without `Authorization: Bearer <token>` is answered 401. Default: no check. */
  readonly token?: string;
  /** Milliseconds before a normal email is answered; {@link EmailSink.latency} changes it later. Default 0. */
  readonly latencyMs?: number;
  /** Share (0..1) of new emails answered 503 `Retry-After: 1`, at random. Default 0. */
  readonly failRate?: number;
  /** Scripted answers; {@link EmailSink.script} changes it later. */
  readonly script?: Script;
  /**
   * How many requests and sent emails to remember (and 100 times as many idempotency keys): a long-running
   * sink stays bounded. Default: all of them, which tests and benchmarks count.
   */
  readonly retain?: number;
  /** Called for each accepted, repeated, rejected or failed request and for listening/closing. */
  readonly log?: (event: SinkEvent) => void;
}

/**
 * Where each email's order id is in an order-emailer confirmation body (`Your buy order <id> was executed: you
 * bought …`). An id may hold spaces, CR/LF and any other character the contract allows.
 */
const ORDER_IN_BODY = /^Your (?:buy|sell) order ([\s\S]+?) was executed: you (?:bought|sold) /;
/**
 * An order id as order-emailer writes it into a body: its control characters, line and paragraph separators and
 * bidirectional overrides replaced by U+FFFD (order-emailer's `emailText`), so {@link EmailSink.emailsFor} finds
 * the email of an id holding CR/LF or NUL.
 */
const asInEmail = (id: string): string => id.replace(/[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]/gu, '\uFFFD');
/** Bodies above this size are answered 413, as a real API would. */
const MAX_BODY_BYTES = 1_000_000;
const JSON_HEADERS = { 'content-type': 'application/json' } as const;

class BodyTooLargeError extends Error {}

/** The answer to an email that went the normal way. */
interface Verdict {
  readonly status: number;
  readonly payload: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * The email HTTP API that order-emailer POSTs confirmations to, played by a real local HTTP server
 * (node:http). The one stand-in of the repository: order-emailer's tests, the bench, the demo, the fault suite
 * and the compose stack (`dist/email-sink-main.js`) all run this class.
 *
 * - `POST <any path>` with a JSON email: 401 without the bearer token (when one is configured); then, while
 *   failing on purpose, 503/429 with `Retry-After`; then, after {@link latency} ms, like a real provider it
 *   sends nothing twice for one `Idempotency-Key`: a new key is answered 200 `{"id"}`, a repeated one 200
 *   `{"id","duplicate":true}`. A body that is not JSON is answered 400.
 * - `GET /sent` lists the accepted emails, oldest first (`?key=` filters by Idempotency-Key); `GET /healthz` 200.
 *
 * Every request is recorded ({@link requests}) with whether its answer reached the client, so tests count the
 * 2xx answers a client actually got ({@link delivered}); {@link script} replaces answers request by request.
 */
export class EmailSink {
  /** Milliseconds before a normal email is answered; change it at any time to slow the API down. */
  latency: number;
  /** Scripted answers, consulted for each POST that passed the token and outage checks. */
  script: Script | undefined;
  /** The requests received (POSTs), oldest first; the last `retain` of them. */
  readonly requests: SinkRequest[] = [];
  readonly #token: string | undefined;
  readonly #failRate: number;
  readonly #retain: number;
  readonly #log: ((event: SinkEvent) => void) | undefined;
  readonly #sent: SentEmail[] = [];
  /** Idempotency key → id of the email accepted under it. */
  readonly #keys = new Map<string, string>();
  /** Idempotency key → requests seen, for a script's `nth`. */
  readonly #perKey = new Map<string, number>();
  /** Order id (from the body) → emails accepted for it. */
  readonly #orders = new Map<string, number>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #emails = 0;
  #requestCount = 0;
  #repeated = 0;
  #unavailable = 0;
  #unauthorized = 0;
  #unavailableUntil = 0;
  #unavailableOutage: Outage = {};
  #failuresLeft = 0;
  #failOutage: Outage = {};
  #server: Server | undefined;
  #host = '127.0.0.1';

  constructor(options: EmailSinkOptions = {}) {
    const { token, latencyMs = 0, failRate = 0, retain = Infinity } = options;
    if (token !== undefined && token.length === 0) throw new Error('EmailSink: the token must not be empty (leave it out for no check)');
    if (!(failRate >= 0 && failRate <= 1)) throw new Error(`EmailSink: failRate must be within 0..1, got ${failRate}`);
    if (!(retain > 0)) throw new Error(`EmailSink: retain must be positive, got ${retain}`);
    this.#token = token;
    this.latency = latencyMs;
    this.#failRate = failRate;
    this.script = options.script;
    this.#retain = retain;
    this.#log = options.log;
  }

  /** A sink listening on `127.0.0.1`, on a free port unless `port` says otherwise. */
  static async start(options: EmailSinkOptions & { readonly port?: number; readonly host?: string } = {}): Promise<EmailSink> {
    const sink = new EmailSink(options);
    await sink.listen(options.port ?? 0, options.host);
    return sink;
  }

  /** Starts the HTTP server; resolves with the port it listens on (a free one for port 0). */
  async listen(port = 0, host = '127.0.0.1'): Promise<number> {
    if (this.#server) throw new Error(`EmailSink: already listening on ${this.#host}:${this.port}`);
    const server = createServer((req, res) => this.#receive(req, res));
    this.#server = server;
    this.#host = host;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#log?.({ msg: 'listening', host, port: this.port, auth: this.#token === undefined ? 'none' : 'bearer' });
    return this.port;
  }

  /** The port listened on. */
  get port(): number {
    const address = this.#server?.address();
    if (!address || typeof address === 'string') throw new Error('EmailSink: not listening');
    return address.port;
  }

  /** The URL to POST emails to (`/v1/emails` on the listening address; any path is accepted). */
  get url(): string {
    const host = this.#host === '0.0.0.0' || this.#host === '::' ? '127.0.0.1' : this.#host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}/v1/emails`;
  }

  /** Answers every POST 503 (or the outage's status) with `Retry-After` for the next `ms` milliseconds. */
  unavailableFor(ms: number, outage: Outage = {}): void {
    this.#unavailableUntil = Date.now() + ms;
    this.#unavailableOutage = outage;
  }

  /** Answers the next `count` POSTs 503 (or the outage's status) with `Retry-After`. */
  failNext(count: number, outage: Outage = {}): void {
    this.#failuresLeft = count;
    this.#failOutage = outage;
  }

  /** Requests of one Idempotency-Key. */
  postsFor(key: string): SinkRequest[] {
    return this.requests.filter((r) => r.key === key);
  }

  /** Per Idempotency-Key, how many 2xx answers reached the client: the emails the client saw confirmed. */
  delivered(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.requests) {
      if (r.outcome === 'answered' && r.status !== undefined && r.status >= 200 && r.status < 300) counts.set(r.key ?? '', (counts.get(r.key ?? '') ?? 0) + 1);
    }
    return counts;
  }

  /** How many of these idempotency keys were emailed (others may come from earlier runs or other producers). */
  emailed(keys: Iterable<string>): number {
    let n = 0;
    for (const key of keys) if (this.#keys.has(key)) n += 1;
    return n;
  }

  /** Emails accepted for one order id, whatever their idempotency keys. */
  emailsFor(orderId: string): number {
    return this.#orders.get(orderId) ?? this.#orders.get(asInEmail(orderId)) ?? 0;
  }

  /** The accepted emails, oldest first (the last `retain`), optionally of one Idempotency-Key: `GET /sent`. */
  sent(key?: string): SentEmail[] {
    return key === undefined ? [...this.#sent] : this.#sent.filter((e) => e.idempotencyKey === key);
  }

  stats(): SinkStats {
    let duplicates = 0;
    for (const n of this.#orders.values()) if (n > 1) duplicates += n - 1;
    return {
      requests: this.#requestCount,
      emails: this.#emails,
      repeatedKeys: this.#repeated,
      duplicateEmails: duplicates,
      unavailable: this.#unavailable,
      unauthorized: this.#unauthorized,
    };
  }

  /** Forgets every request, email and count (between benchmark runs); outages and the script stay. */
  reset(): void {
    this.requests.length = 0;
    this.#sent.length = 0;
    this.#keys.clear();
    this.#perKey.clear();
    this.#orders.clear();
    this.#emails = 0;
    this.#requestCount = 0;
    this.#repeated = 0;
    this.#unavailable = 0;
    this.#unauthorized = 0;
  }

  /** Stops the server, dropping open connections and answers still waiting for their delay. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  #receive(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://sink');
    const method = req.method ?? 'GET';
    if (method === 'GET' && url.pathname === '/healthz') return void reply(res, 200, { status: 'ok' });
    if (method === 'GET' && url.pathname === '/sent') return void reply(res, 200, this.sent(url.searchParams.get('key') ?? undefined));
    if (method !== 'POST') return void reply(res, 404, { error: `no ${method} ${url.pathname}: POST an email, or GET /sent or /healthz` });
    readBody(req).then(
      (text) => this.#post(req, res, url.pathname, text),
      (error: unknown) => {
        if (error instanceof BodyTooLargeError) reply(res, 413, { error: `body over ${MAX_BODY_BYTES} bytes` });
        else res.destroy();
      },
    );
  }

  #post(req: IncomingMessage, res: ServerResponse, path: string, text: string): void {
    let body: unknown = text;
    let json = true;
    try {
      body = JSON.parse(text);
    } catch {
      json = false; // kept as text: a scripted answer may still want to see it
    }
    const key = typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : undefined;
    const request: SinkRequest = { method: req.method ?? 'POST', path, key, headers: req.headers, body, at: Date.now(), outcome: 'pending', status: undefined };
    this.#requestCount += 1;
    this.requests.push(request);
    if (this.requests.length > this.#retain) this.requests.splice(0, this.requests.length - this.#retain);
    const nth = (this.#perKey.get(key ?? '') ?? 0) + 1;
    this.#perKey.set(key ?? '', nth);
    bound(this.#perKey, 100 * this.#retain);
    res.on('close', () => {
      if (request.outcome === 'pending') request.outcome = 'abandoned';
    });
    res.on('finish', () => {
      request.outcome = 'answered';
    });
    const answer = (status: number, payload: unknown, headers: Readonly<Record<string, string>> = {}) => {
      request.status = status;
      reply(res, status, payload, headers);
    };

    if (this.#token !== undefined && req.headers.authorization !== `Bearer ${this.#token}`) {
      this.#unauthorized += 1;
      this.#log?.({ msg: 'unauthorized', idempotencyKey: key ?? null });
      return answer(401, { error: 'unauthorized: send Authorization: Bearer <token>' });
    }
    const outage = this.#outage();
    if (outage) {
      this.#unavailable += 1;
      this.#log?.({ msg: 'failing on purpose', idempotencyKey: key ?? null, status: outage.status ?? 503 });
      return answer(outage.status ?? 503, { error: 'try again' }, { 'retry-after': String(outage.retryAfterSeconds ?? 1) });
    }
    const script = this.script;
    const scripted = script ? Promise.resolve(script(request, nth)) : Promise.resolve<Answer>({});
    scripted.then(
      (scriptedAnswer) =>
        this.#after(scriptedAnswer.delayMs ?? (scriptedAnswer.status === undefined && !scriptedAnswer.destroy ? this.latency : 0), () => {
          if (scriptedAnswer.destroy) {
            req.socket.destroy();
            return;
          }
          if (scriptedAnswer.status !== undefined) {
            if (res.destroyed || res.writableEnded) return;
            request.status = scriptedAnswer.status;
            res.writeHead(scriptedAnswer.status, { ...JSON_HEADERS, ...scriptedAnswer.headers });
            res.end(scriptedAnswer.body ?? '{}');
            return;
          }
          // Decided whether or not the client is still there: a provider that got the request sends the email.
          const result: Verdict = json ? this.#accept(key, path, body) : { status: 400, payload: { error: 'body is not JSON' } };
          if (res.destroyed || res.writableEnded) return;
          answer(result.status, result.payload, { ...result.headers, ...scriptedAnswer.headers });
        }),
      (error: unknown) => answer(500, { error: `the script failed: ${error instanceof Error ? error.message : String(error)}` }),
    );
  }

  /** The outage answering this request, if the API is failing on purpose now. */
  #outage(): Outage | undefined {
    if (Date.now() < this.#unavailableUntil) return this.#unavailableOutage;
    if (this.#failuresLeft > 0) {
      this.#failuresLeft -= 1;
      return this.#failOutage;
    }
    return undefined;
  }

  /** An email: sent once per Idempotency-Key, counted per order. */
  #accept(key: string | undefined, path: string, email: unknown): Verdict {
    const earlier = key === undefined ? undefined : this.#keys.get(key);
    if (earlier !== undefined) {
      this.#repeated += 1;
      this.#log?.({ msg: 'duplicate', idempotencyKey: key, id: earlier });
      return { status: 200, payload: { id: earlier, duplicate: true } };
    }
    if (this.#failRate > 0 && Math.random() < this.#failRate) {
      this.#unavailable += 1;
      this.#log?.({ msg: 'failing on purpose', idempotencyKey: key ?? null, status: 503 });
      return { status: 503, payload: { error: 'try again' }, headers: { 'retry-after': '1' } };
    }
    const entry: SentEmail = { id: randomUUID(), receivedAt: new Date().toISOString(), idempotencyKey: key ?? null, path, email };
    this.#emails += 1;
    this.#sent.push(entry);
    if (this.#sent.length > this.#retain) this.#sent.splice(0, this.#sent.length - this.#retain);
    if (key !== undefined) {
      this.#keys.set(key, entry.id);
      bound(this.#keys, 100 * this.#retain);
    }
    const fields = typeof email === 'object' && email !== null ? (email as Record<string, unknown>) : {};
    const order = (typeof fields.body === 'string' ? ORDER_IN_BODY.exec(fields.body)?.[1] : undefined) ?? key ?? entry.id;
    this.#orders.set(order, (this.#orders.get(order) ?? 0) + 1);
    bound(this.#orders, 100 * this.#retain);
    this.#log?.({ msg: 'email', id: entry.id, idempotencyKey: key ?? null, to: fields.user, subject: fields.subject });
    return { status: 200, payload: { id: entry.id } };
  }

  /** Runs `then` after `ms` (at once for 0), on a timer {@link close} cancels. */
  #after(ms: number, then: () => void): void {
    if (ms <= 0) return then();
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      then();
    }, ms);
    this.#timers.add(timer);
  }
}

function reply(res: ServerResponse, status: number, payload: unknown, headers: Readonly<Record<string, string>> = {}): void {
  if (res.destroyed || res.writableEnded) return;
  res.writeHead(status, { ...JSON_HEADERS, ...headers });
  res.end(JSON.stringify(payload));
}

/** Drops the oldest entries of a map past `max` (insertion order is age). */
function bound(map: Map<string, unknown>, max: number): void {
  while (map.size > max) map.delete(map.keys().next().value!);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLargeError();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
