import type { Order } from '@stream/contracts';
import { NonRetryableError } from '@stream/core';
import { got as defaultGot, RequestError, type Got } from 'got';
import { parseRetryAfter } from './retry-after.js';

/** What the email API receives for one order. */
export interface ConfirmationEmail {
  readonly user: string;
  readonly subject: 'Order Confirmation';
  readonly body: string;
}

/**
 * Characters replaced in the text of an email: control characters (C0, DEL, C1: CR/LF, NUL, ESC sequences that
 * would break lines or drive a terminal), the Unicode line and paragraph separators, and the bidirectional
 * overrides and isolates (U+202A–U+202E, U+2066–U+2069) that make a text read differently from what it holds.
 */
const UNSAFE_IN_TEXT = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069]/gu;

/** Longest order field (id, symbol) written into an email, in code points; longer ones are cut and end with `…`. */
export const EMAIL_FIELD_MAX_CHARS = 200;

/**
 * A free-text field as the plain-text email shows it: every {@link UNSAFE_IN_TEXT} character replaced by
 * U+FFFD, at most {@link EMAIL_FIELD_MAX_CHARS} code points. The email API takes a plain-text `body` in JSON
 * (JSON encoding is got's), so no HTML escaping applies: what is left to guard is the text itself.
 */
export function emailText(value: string, maxChars = EMAIL_FIELD_MAX_CHARS): string {
  const safe = value.replace(UNSAFE_IN_TEXT, '\uFFFD');
  const chars = [...safe];
  return chars.length <= maxChars ? safe : `${chars.slice(0, maxChars - 1).join('')}…`;
}

/**
 * The email of an order: who gets it and a plain-text body stating quantity, symbol, side and price. The order's
 * free text (its id and symbol) goes through {@link emailText}; numbers, side and time are the contract's own.
 */
export function confirmationEmail(order: Order): ConfirmationEmail {
  const verb = order.side === 'buy' ? 'bought' : 'sold';
  return {
    user: order.userId,
    subject: 'Order Confirmation',
    body:
      `Your ${order.side} order ${emailText(order.id)} was executed: you ${verb} ${order.quantity} shares of ${emailText(order.symbol)} ` +
      `at ${order.price} per share on ${order.executedAt.toISOString()}.`,
  };
}

/** The bytes an Idempotency-Key keeps as they are: RFC 3986's unreserved characters. */
const UNRESERVED = /^[A-Za-z0-9\-._~]$/;

/**
 * The `Idempotency-Key` of an order: its id's UTF-8 bytes, each byte outside `A–Z a–z 0–9 - . _ ~` written
 * as `%XX` (upper-case hex), as `encodeURIComponent` would but for `! ' ( ) *` too. The result is plain ASCII
 * a header can always carry, whatever the id holds (CJK, emoji, CR/LF, NUL: Node refuses those in a
 * header). The same id always gives the same key and two ids never share one (`%` itself is encoded), so
 * the API's deduplication means what it did; an id of only unreserved characters (`o-1`) is its own key.
 * The contract caps an id at 200 code units, so a key is at most 1,800 characters.
 */
export function idempotencyKeyOf(orderId: string): string {
  let key = '';
  for (const ch of orderId) {
    if (UNRESERVED.test(ch)) key += ch;
    else for (const byte of Buffer.from(ch, 'utf8')) key += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return key;
}

/** Longest excerpt of a response body kept in an error message (taken after the token is redacted). */
export const BODY_EXCERPT_CHARS = 500;

/**
 * The email API could not take the request now: 5xx, 429, 408, a network error or a timeout. Retrying can
 * help. `retryAfterMs` is what the API asked for (`Retry-After`), already bounded.
 */
export class EmailApiUnavailableError extends Error {
  readonly status: number | undefined;
  readonly code: string | undefined;
  readonly retryAfterMs: number | undefined;

  constructor(message: string, details: { status?: number; code?: string; retryAfterMs?: number } = {}) {
    super(message);
    this.name = 'EmailApiUnavailableError';
    this.status = details.status;
    this.code = details.code;
    this.retryAfterMs = details.retryAfterMs;
  }
}

export interface EmailClientOptions {
  /** `EMAILER_URL`: where confirmations are POSTed. */
  readonly url: string;
  /** `EMAILER_TOKEN`: sent as `Authorization: Bearer …`, and kept out of every message this client builds. */
  readonly token: string;
  /** Whole-request timeout of one POST. */
  readonly timeoutMs: number;
  /** Upper bound of a `Retry-After` the client reports. Default 60 s. */
  readonly maxRetryAfterMs?: number;
}

/** True for statuses where the same request may succeed later. */
function retryableStatus(status: number): boolean {
  return status >= 500 || status === 429 || status === 408;
}

/**
 * The email HTTP API, through got. One call is one POST: got's own retries are off (`retry.limit: 0`) so
 * every retry goes through the agent's retry policy, where it is counted, logged, backed off, bounded by
 * the partition's abort signal and finally dead-lettered, and where the Redis claim is taken again (see
 * `OrderConfirmer`). A got retry would happen behind that claim's lease, which only covers one request.
 *
 * Errors are rebuilt from scratch, never wrapped: a got `RequestError` carries its request `options`
 * (headers included, so the bearer token) as an enumerable property that a logger would serialize.
 */
export class EmailClient {
  readonly #options: EmailClientOptions;
  readonly #got: Got;

  constructor(options: EmailClientOptions, client: Got = defaultGot) {
    if (options.token.length === 0) throw new Error('EmailClient: the token must not be empty');
    this.#options = options;
    this.#got = client;
  }

  /**
   * POSTs the order's confirmation, with `request.idempotencyKey` as its `Idempotency-Key` (use
   * {@link idempotencyKeyOf}: the key must be a valid header value). Resolves on 2xx. Throws {@link EmailApiUnavailableError} when a retry
   * may help, {@link NonRetryableError} (status and a body excerpt in the message) when it cannot: 3xx and
   * 4xx other than 408 and 429.
   */
  async sendConfirmation(order: Order, request: { readonly signal?: AbortSignal; readonly idempotencyKey: string }): Promise<void> {
    let status: number;
    let body: string;
    let retryAfter: string | undefined;
    try {
      const response = await this.#got.post(this.#options.url, {
        json: confirmationEmail(order),
        headers: {
          authorization: `Bearer ${this.#options.token}`,
          'idempotency-key': request.idempotencyKey,
          accept: 'application/json',
        },
        timeout: { request: this.#options.timeoutMs },
        retry: { limit: 0 },
        throwHttpErrors: false,
        followRedirect: false,
        responseType: 'text',
        ...(request.signal ? { signal: request.signal } : {}),
      });
      status = response.statusCode;
      body = response.body;
      retryAfter = response.headers['retry-after'];
    } catch (error) {
      throw this.#requestFailed(order, error);
    }
    if (status >= 200 && status < 300) return;
    // Redacted before it is cut: a token straddling the cut would otherwise keep its first characters.
    const excerpt = this.#redact(body).slice(0, BODY_EXCERPT_CHARS);
    if (retryableStatus(status)) {
      const retryAfterMs = parseRetryAfter(retryAfter, this.#options.maxRetryAfterMs ?? 60_000);
      throw new EmailApiUnavailableError(`email API answered HTTP ${status} for order ${order.id}: ${excerpt}`, {
        status,
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }
    throw new NonRetryableError(`email API rejected order ${order.id}: HTTP ${status}: ${excerpt}`, { context: { orderId: order.id, status } });
  }

  /** A network error, timeout or abort, as a retryable error holding only got's name, code and message. */
  #requestFailed(order: Order, error: unknown): EmailApiUnavailableError {
    if (error instanceof RequestError) {
      return new EmailApiUnavailableError(`email API request for order ${order.id} failed: ${error.name} ${error.code}: ${this.#redact(error.message)}`, {
        code: error.code,
      });
    }
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return new EmailApiUnavailableError(`email API request for order ${order.id} failed: ${this.#redact(message)}`);
  }

  /** An API that echoes the request back must not get the token into our errors, logs or dead letters. */
  #redact(text: string): string {
    return text.replaceAll(this.#options.token, '[redacted]');
  }
}
