import { randomBytes } from 'node:crypto';

/**
 * A name no other test or run uses: tests isolate their data by topic, key, index and bucket names.
 * Lower-case and limited to `[a-z0-9-]`, which every server here accepts (Elasticsearch indices included).
 *
 * @example uniqueName('orders') // 'orders-lx2k9c-3f9a1b'
 */
export function uniqueName(prefix: string): string {
  const safe = prefix.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  return `${safe}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}
