/**
 * The one redaction of secrets in log lines, used by the logger (every field, the message, child bindings and
 * errors) and by the kafkajs log bridge. It runs before any truncation, so a secret cut in half by a length
 * limit has already been replaced.
 */

/** What a redacted value is replaced with. */
export const REDACTED = '[redacted]';

/**
 * Keys whose value is a credential wherever they appear, at any depth: passwords, tokens, secrets, API keys,
 * authorization and cookie headers, SASL options, private keys. Matched case-insensitively anywhere in the key
 * (`redisPassword`, `KAFKA_SASL_PASSWORD`, `x-api-key`, `accessToken`, `proxy-authorization`).
 */
const SECRET_KEY = /passw(?:or)?d|passphrase|^pass$|^pwd$|secret|token|api[-_]?key|authori[sz]ation|^cookie$|^set-cookie$|credential|sasl|private[-_]?key/i;

/** Whether a key names a credential (see {@link redactSecrets}). */
export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

// `scheme://user:password@` (also `redis://:password@`): the password goes, the user stays.
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s:@/?#]*):([^\s@/?#]+)@/gi;
// `?token=…`, `&password=…` in a URL or a query string.
const QUERY_SECRET = /([?&](?:access_token|refresh_token|token|password|passwd|secret|api_key|apikey|key|sig|signature)=)[^&\s#"']+/gi;
// `Authorization: Bearer …` or `Basic …` quoted in a message.
const AUTH_SCHEME = /\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{6,}/g;

/** A string with URL credentials, secret query parameters and bearer/basic credentials replaced. */
export function redactString(text: string): string {
  if (!text.includes('://') && !text.includes('=') && !/Bearer|Basic/.test(text)) return text;
  return text.replace(URL_CREDENTIALS, `$1$2:${REDACTED}@`).replace(QUERY_SECRET, `$1${REDACTED}`).replace(AUTH_SCHEME, `$1 ${REDACTED}`);
}

/** Redis commands whose arguments are credentials (ioredis puts a failed command into `err.command`). */
const SECRET_COMMANDS = /^(?:auth|hello|migrate|acl)$/i;

/** ioredis' `{ name: 'auth', args: [...] }`: its arguments, redacted; anything else unchanged. */
export function isSecretCommand(value: object): boolean {
  const command = value as { name?: unknown; args?: unknown };
  return typeof command.name === 'string' && Array.isArray(command.args) && SECRET_COMMANDS.test(command.name);
}

const MAX_DEPTH = 12;

/**
 * A copy of `value` with every secret replaced by {@link REDACTED}: values under secret keys (at any depth),
 * credentials inside strings ({@link redactString}), URL objects, and the arguments of Redis AUTH/HELLO
 * commands. Values with `toJSON` (got's options, Dates) are redacted in their JSON form. Cycles become
 * `[Circular]`; deeper than 12 levels becomes `[…]`. Errors are left to `serializeError`, given as `error`.
 */
export function redactSecrets(value: unknown, error?: (e: Error) => unknown, depth = 0, seen = new WeakSet<object>()): unknown {
  if (typeof value === 'string') return redactString(value);
  if (value === null || typeof value !== 'object') return value;
  if (value instanceof URL) return redactString(value.href);
  if (value instanceof Error && error) return error(value);
  if (Buffer.isBuffer(value) || ArrayBuffer.isView(value)) return value;
  if (seen.has(value)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[…]';
  const json = (value as { toJSON?: unknown }).toJSON;
  if (typeof json === 'function' && !(value instanceof Error)) {
    let plain: unknown;
    try {
      plain = (json as () => unknown).call(value);
    } catch {
      return '[unserializable]';
    }
    if (plain !== value) return redactSecrets(plain, error, depth + 1, seen);
  }
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => redactSecrets(item, error, depth + 1, seen));
    if (value instanceof Map) return redactSecrets(Object.fromEntries(value), error, depth, new WeakSet());
    if (value instanceof Set) return redactSecrets([...value], error, depth, new WeakSet());
    const secretArgs = isSecretCommand(value);
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      out[key] = isSecretKey(key) ? REDACTED : secretArgs && key === 'args' ? (v as unknown[]).map(() => REDACTED) : redactSecrets(v, error, depth + 1, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}
