/**
 * Turns values into bytes and back. `decode` returns `unknown`: the topic's schema checks (and may
 * transform, e.g. ISO-8601 strings into `Date`) whatever the codec produced.
 *
 * @example
 * const csv: Codec<string[]> = { name: 'csv', encode: (v) => Buffer.from(v.join(',')), decode: (b) => b.toString().split(',') };
 */
export interface Codec<T = unknown> {
  readonly name: string;
  encode(value: T): Buffer;
  decode(bytes: Buffer): unknown;
}

/** JSON (the default). `Date` values are written as ISO-8601 strings; a date schema revives them. */
export const jsonCodec: Codec<unknown> = {
  name: 'json',
  encode: (value) => Buffer.from(JSON.stringify(value)),
  decode: (bytes) => JSON.parse(bytes.toString('utf8')) as unknown,
};

/** UTF-8 text. Also the default codec of keys. */
export const stringCodec: Codec<string> = {
  name: 'string',
  encode: (value) => Buffer.from(value, 'utf8'),
  decode: (bytes) => bytes.toString('utf8'),
};

/** Raw bytes, untouched. */
export const bytesCodec: Codec<Buffer> = {
  name: 'bytes',
  encode: (value) => value,
  decode: (bytes) => bytes,
};
