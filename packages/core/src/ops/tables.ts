/**
 * `GET /tables/<table>/<key>` on the ops server: a table's value for a key, answered by the instance that
 * holds the key's partition, or redirected there (each instance advertises its ops address to the group).
 */
import type { App } from '../app.js';
import { DecodeError, EncodeError, SchemaValidationError } from '../errors.js';
import { keyPartition } from '../transport/memory/partitioner.js';

/** The response header naming the member that owns a redirected query's partition (its group member id). */
export const TABLE_OWNER_HEADER = 'stream-table-owner';

/** The longest key a query takes, in bytes of UTF-8 once percent-decoded; longer is 414. */
export const MAX_TABLE_KEY_BYTES = 1024;

/** `/tables/`, a table name (at most 200 characters, each at most 3 when encoded), `/`, and an encoded key. */
const MAX_PATH_LENGTH = '/tables/'.length + 3 * 200 + 1 + 3 * MAX_TABLE_KEY_BYTES;

/** What the ops server sends back. */
export interface OpsAnswer {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: unknown;
}

const retryLater = (seconds: number, body: unknown): OpsAnswer => ({ status: 503, headers: { 'retry-after': String(seconds) }, body });

/**
 * Answers a table query. `path` is the request's path, still percent-encoded, starting with `/tables/`. The
 * key is the text of its encoded form (what the table's key codec reads: UTF-8 text with the default codec,
 * JSON with `jsonCodec`), validated by the table's key schema and hashed as the table's writes are
 * (`murmur2 & 0x7fffffff % partitions`). Nothing of the request is echoed in an error.
 *
 * @example
 * // GET /tables/counts/user%2F42 on the owner of the key's partition:
 * // 200 {"table":"counts","key":"user/42","partition":3,"value":17}
 */
export async function answerTableQuery(app: App, path: string): Promise<OpsAnswer> {
  if (path.length > MAX_PATH_LENGTH) return { status: 414, body: { error: `key too long: at most ${MAX_TABLE_KEY_BYTES} bytes` } };
  const rest = path.slice('/tables/'.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return { status: 404, body: { error: 'not found: use /tables/<table>/<key>, the key percent-encoded' } };
  let name: string;
  let keyText: string;
  try {
    name = decodeURIComponent(rest.slice(0, slash));
    keyText = decodeURIComponent(rest.slice(slash + 1));
  } catch {
    return { status: 400, body: { error: 'malformed percent-encoding in the path' } };
  }
  const keyBytes = Buffer.from(keyText, 'utf8');
  if (keyBytes.length > MAX_TABLE_KEY_BYTES) return { status: 414, body: { error: `key too long: at most ${MAX_TABLE_KEY_BYTES} bytes` } };
  const target = app.queryableTable(name);
  if (!target) return { status: 404, body: { error: 'no such table (or no agent of this app uses it)' } };
  const { table, topics, partitions } = target;

  let encoded: { readonly bytes: Buffer; readonly key: unknown };
  try {
    encoded = table.encodeKey(table.decodeQueryKey(keyBytes));
  } catch (error) {
    if (error instanceof SchemaValidationError) {
      // The schema's messages name what is expected, not the value given.
      const issues = error.issues.slice(0, 5).map((i) => ({ path: i.path, message: i.message.slice(0, 200) }));
      return { status: 400, body: { error: `invalid key for table ${table.name}`, issues } };
    }
    // The codec's message may quote the key (JSON.parse does): not echoed.
    if (error instanceof DecodeError) return { status: 400, body: { error: `the key cannot be read by the key codec of table ${table.name}` } };
    if (error instanceof EncodeError) return { status: 400, body: { error: `the key cannot be encoded by the key codec of table ${table.name}` } };
    throw error;
  }
  const { bytes, key } = encoded;
  // As TableView#keyOf and the Java client's partitioner: the key's partition of the source topics.
  const partition = keyPartition(bytes, partitions);

  let location: Awaited<ReturnType<App['locateTablePartition']>>;
  try {
    location = await app.locateTablePartition(table, topics, partition);
  } catch {
    // The coordinator could not be asked (the detail is logged by the owner lookup).
    return retryLater(1, { error: `the owner of partition ${partition} of table ${table.name} cannot be found now`, table: table.name, partition });
  }
  switch (location.kind) {
    case 'local': {
      const value = table.queryValue(location.store, bytes);
      if (value === undefined) return { status: 404, body: { error: 'the key has no value', table: table.name, partition } };
      return { status: 200, body: { table: table.name, key, partition, value } };
    }
    case 'restoring':
      return retryLater(1, { error: `partition ${partition} of table ${table.name} is being restored here`, table: table.name, partition });
    case 'member': {
      const href = `${location.url}/tables/${encodeURIComponent(table.name)}/${encodeURIComponent(keyText)}`;
      return {
        status: 307,
        headers: { location: href, [TABLE_OWNER_HEADER]: location.memberId },
        body: { table: table.name, partition, owner: location.memberId, location: href },
      };
    }
    case 'no-address':
      return retryLater(5, {
        error: `the owner of partition ${partition} of table ${table.name} advertises no address (started without advertisedUrl or an ops server, or an older release)`,
        table: table.name,
        partition,
        owner: location.memberId,
      });
    case 'none':
      return retryLater(1, {
        error: `no owner of partition ${partition} of table ${table.name} is known now (${location.reason})`,
        table: table.name,
        partition,
      });
  }
}
