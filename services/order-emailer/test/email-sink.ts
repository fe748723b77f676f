import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the fake email API received, and what became of it. */
export interface SinkRequest {
  readonly key: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly body: unknown;
  readonly at: number;
  /** `answered`: the response was written out; `abandoned`: the client went away first; `pending`: neither yet. */
  outcome: 'pending' | 'answered' | 'abandoned';
  status: number | undefined;
}

/** A scripted answer: status (default 200), headers, body, and how long to wait before answering. */
export interface Answer {
  readonly status?: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly delayMs?: number;
  /** Drops the connection without answering (a network error for the client). */
  readonly destroy?: boolean;
}

/** Picks the answer of a request; `nth` counts the requests of its Idempotency-Key, from 1. */
export type Script = (request: SinkRequest, nth: number) => Answer | Promise<Answer>;

/**
 * The email API, played by a real HTTP server on 127.0.0.1 (port 0) with scripted answers. It records every
 * request and whether its answer reached the client, so tests count successful POSTs per Idempotency-Key.
 */
export class EmailSink {
  readonly requests: SinkRequest[] = [];
  script: Script;
  readonly #server: Server;
  readonly #perKey = new Map<string, number>();
  readonly #timers = new Set<NodeJS.Timeout>();

  private constructor(server: Server, script: Script) {
    this.#server = server;
    this.script = script;
  }

  static async start(script: Script = () => ({})): Promise<EmailSink> {
    const server = createServer();
    const sink = new EmailSink(server, script);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          // keep the text
        }
        const key = typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : undefined;
        const request: SinkRequest = { key, headers: req.headers, body, at: Date.now(), outcome: 'pending', status: undefined };
        sink.requests.push(request);
        const nth = (sink.#perKey.get(key ?? '') ?? 0) + 1;
        sink.#perKey.set(key ?? '', nth);
        res.on('close', () => {
          if (request.outcome === 'pending') request.outcome = 'abandoned';
        });
        res.on('finish', () => {
          request.outcome = 'answered';
        });
        void Promise.resolve(sink.script(request, nth)).then((answer) => {
          const respond = () => {
            if (res.destroyed || res.writableEnded) return;
            if (answer.destroy) {
              req.socket.destroy();
              return;
            }
            request.status = answer.status ?? 200;
            res.writeHead(request.status, { 'content-type': 'application/json', ...answer.headers });
            res.end(answer.body ?? '{"ok":true}');
          };
          if (!answer.delayMs) return respond();
          const timer = setTimeout(() => {
            sink.#timers.delete(timer);
            respond();
          }, answer.delayMs);
          sink.#timers.add(timer);
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    return sink;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v1/emails`;
  }

  /** Requests of one Idempotency-Key. */
  postsFor(key: string): SinkRequest[] {
    return this.requests.filter((r) => r.key === key);
  }

  /** Per Idempotency-Key, how many 2xx answers reached the client: the emails actually confirmed. */
  delivered(): Map<string, number> {
    const counts = new Map<string, number>();
    for (const r of this.requests) {
      if (r.outcome === 'answered' && r.status !== undefined && r.status >= 200 && r.status < 300) counts.set(r.key ?? '', (counts.get(r.key ?? '') ?? 0) + 1);
    }
    return counts;
  }


  async close(): Promise<void> {
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Polls `condition` every 5 ms; fails after `timeoutMs` naming `what`. Every wait in these tests is bounded. */
export async function waitUntil(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
