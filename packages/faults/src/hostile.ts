import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { BaseRecord, InputTopic } from './fuzz.js';

const run = promisify(execFile);

/**
 * The hostile-input corpus (issue #16): records a service must either process exactly once or dead-letter
 * exactly once, never choke on. Generated from tables, the same for every run: hostile headers (null values,
 * prototype names, 5,000 of them, one over 64 KiB), unicode and control characters in every string field,
 * extreme and non-finite numbers, dates at both ends of the contracts' window, empty, null and non-JSON values,
 * wrong types and hostile keys. Part of it is produced with kcat (librdkafka), not kafkajs, so what the
 * services read was written by another Kafka client.
 *
 * Whether a record is good is not written down here: the load asks the topic's contract, and the header
 * limits of the runtime ({@link HEADER_LIMITS}), as the services will.
 */

/** A header as it goes on the wire: a null value is a header without a value (Kafka allows it). */
export type WireHeader = readonly [name: string, value: Buffer | null];

/** One corpus record, built from a valid record of its topic. */
export interface HostileRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  /** Headers besides the load's `faults.id`, in order. */
  readonly headers: readonly WireHeader[];
}

export interface HostileEntry {
  /** What the entry is, as reported: `orders/id:crlf`, `feed_activities/headers:5000`. */
  readonly name: string;
  readonly topic: InputTopic;
  /** The client that produces it. */
  readonly via: 'kafkajs' | 'kcat';
  build(base: BaseRecord): HostileRecord;
}

/**
 * The runtime's default header limits (`DEFAULT_HEADER_LIMITS` in `@stream/core`'s topic.ts, which the services
 * do not change): more headers or more bytes of names and values are dead-lettered before the handler.
 */
export const HEADER_LIMITS = { maxHeaders: 1000, maxBytes: 64 * 1024 } as const;

/** True when the headers (with the load's own `faults.id`) stay within {@link HEADER_LIMITS}. */
export function headersWithinLimits(headers: readonly WireHeader[]): boolean {
  // One value per name, as a consumer decodes them (the corpus repeats no name).
  const byName = new Map(headers);
  let bytes = 0;
  for (const [name, value] of byName) bytes += Buffer.byteLength(name) + (value?.length ?? 0);
  return byName.size <= HEADER_LIMITS.maxHeaders && bytes <= HEADER_LIMITS.maxBytes;
}

/** Unicode and control characters that have broken headers, terminals, logs and parsers before. */
const TEXTS: ReadonlyArray<readonly [label: string, text: string]> = [
  ['cjk', '注文二〇二六年'],
  ['emoji', '🦄🏳️‍🌈👨‍👩‍👧‍👦'],
  ['crlf', '\r\nX-Injected: yes\r\n\r\n'],
  ['nul', '\u0000'],
  ['controls', '\u0001\u0007\u001b[31m\u007f\u0085'],
  ['bidi', '\u202eevil\u202c\u200b\ufeff'],
  ['lone-surrogate', '\ud800'],
  ['percent', '%00%0D%0A%'],
  ['quotes', '"\'\\`${x}") |> drop() //'],
];

const pad = (s: string, length: number) => (s.length >= length ? s.slice(0, length) : s + 'x'.repeat(length - s.length));
const json = (value: unknown) => Buffer.from(JSON.stringify(value));

/** The string fields of each topic, and whether the field is the record's key too. */
const STRING_FIELDS: Readonly<Record<InputTopic, ReadonlyArray<readonly [field: string, max: number, keyed: boolean]>>> = {
  feed_activities: [
    ['id', 200, false],
    ['user', 200, true],
    ['message', 10_000, false],
  ],
  orders: [
    ['id', 200, true],
    ['userId', 200, false],
    ['symbol', 32, false],
  ],
  search_queries: [
    ['id', 200, true],
    ['userId', 200, false],
    ['queryString', 100_000, false],
  ],
};
const TIME_FIELD: Readonly<Record<InputTopic, string>> = { feed_activities: 'timestamp', orders: 'executedAt', search_queries: 'timestamp' };
const TOPICS: readonly InputTopic[] = ['feed_activities', 'orders', 'search_queries'];

/** A record with one field replaced (and the key with it when the field is the key). */
function withField(base: BaseRecord, field: string, value: unknown, keyed: boolean): HostileRecord {
  const key = keyed && typeof value === 'string' ? Buffer.from(value) : Buffer.from(base.key);
  return { key, value: json({ ...base.value, [field]: value }), headers: [] };
}

function plain(base: BaseRecord, headers: readonly WireHeader[]): HostileRecord {
  return { key: Buffer.from(base.key), value: json(base.value), headers };
}

const header = (name: string, value: string | Buffer | null): WireHeader => [name, typeof value === 'string' ? Buffer.from(value) : value];

/** Every entry of the corpus, in the order they are produced. Entries alternate between the two clients. */
export function hostileCorpus(): HostileEntry[] {
  const entries: Omit<HostileEntry, 'via'>[] = [];
  const add = (name: string, topic: InputTopic, build: (base: BaseRecord) => HostileRecord) => entries.push({ name: `${topic}/${name}`, topic, build });

  for (const topic of TOPICS) {
    // Headers: the value is valid, so the headers alone decide.
    add('headers:null-value', topic, (b) => plain(b, [header('nullheader', null), header('empty', '')]));
    add('headers:prototype-names', topic, (b) =>
      plain(b, [header('__proto__', 'x'), header('constructor', 'y'), header('prototype', 'z'), header('toString', '1'), header('hasOwnProperty', '2')]),
    );
    add('headers:prototype-names-null', topic, (b) => plain(b, [header('__proto__', null), header('constructor', null)]));
    add('headers:unicode-and-controls', topic, (b) => plain(b, [header('注文', '🦄'), header('crlf', 'a\r\nb: c'), header('nul', 'a\u0000b')]));
    add('headers:binary-value', topic, (b) => plain(b, [header('bytes', Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28]))]));
    add('headers:999-more', topic, (b) =>
      plain(
        b,
        Array.from({ length: HEADER_LIMITS.maxHeaders - 1 }, (_, i) => header(`h${i}`, 'v')),
      ),
    );
    add('headers:5000', topic, (b) =>
      plain(
        b,
        Array.from({ length: 5000 }, (_, i) => header(`h${i}`, `v${i}`)),
      ),
    );
    add('headers:one-of-70KiB', topic, (b) => plain(b, [header('huge', 'x'.repeat(70 * 1024))]));
    add('headers:100-of-1KiB', topic, (b) =>
      plain(
        b,
        Array.from({ length: 100 }, (_, i) => header(`big${i}`, 'y'.repeat(1024))),
      ),
    );

    // Unicode and control characters in every string field, and the length limits.
    for (const [field, max, keyed] of STRING_FIELDS[topic]) {
      for (const [label, text] of TEXTS) add(`${field}:${label}`, topic, (b) => withField(b, field, `${String(b.value[field])}${text}`, keyed));
      add(`${field}:empty`, topic, (b) => withField(b, field, '', keyed));
      add(`${field}:at-limit`, topic, (b) => withField(b, field, pad(String(b.value[field]), max), keyed));
      add(`${field}:over-limit`, topic, (b) => withField(b, field, pad(String(b.value[field]), max + 1), keyed));
      add(`${field}:number`, topic, (b) => withField(b, field, 42, keyed));
      add(`${field}:null`, topic, (b) => withField(b, field, null, keyed));
    }

    // Dates at both ends of the window and beyond.
    const time = TIME_FIELD[topic];
    for (const [label, at] of [
      ['first', '1970-01-01T00:00:00.000Z'],
      ['last', '2262-04-11T00:00:00.000Z'],
      ['before-first', '1969-12-31T23:59:59.999Z'],
      ['after-last', '2262-04-11T00:00:00.001Z'],
      ['year-0000', '0000-01-01T00:00:00Z'],
      ['year-9999', '9999-12-31T23:59:59Z'],
      ['extended-year', '+275760-09-13T00:00:00.000Z'],
      ['no-zone', '2026-01-01T00:00:00'],
      ['epoch-number', 0],
    ] as const)
      add(`${time}:${label}`, topic, (b) => withField(b, time, at, false));

    // Values that are not a record, and odd JSON around a valid one.
    add('value:null', topic, (b) => ({ key: Buffer.from(b.key), value: null, headers: [] }));
    add('value:empty', topic, (b) => ({ key: Buffer.from(b.key), value: Buffer.alloc(0), headers: [] }));
    for (const [label, text] of [
      ['not-json', 'not json at all'],
      ['json-null', 'null'],
      ['json-array', '[]'],
      ['json-string', '"a string"'],
      ['json-number', '42'],
      ['json-object-empty', '{}'],
      ['nan-literal', 'NaN'],
    ] as const)
      add(`value:${label}`, topic, (b) => ({ key: Buffer.from(b.key), value: Buffer.from(text), headers: [] }));
    add('value:proto-keys', topic, (b) => ({
      key: Buffer.from(b.key),
      value: Buffer.from(`{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}},${JSON.stringify(b.value).slice(1)}`),
      headers: [],
    }));
    add('value:duplicate-id-field', topic, (b) => ({
      key: Buffer.from(b.key),
      value: Buffer.from(`{"id":"shadowed",${JSON.stringify(b.value).slice(1)}`),
      headers: [],
    }));
    add('value:array-field', topic, (b) => withField(b, Object.keys(b.value)[0]!, ['a'], false));

    // Keys.
    add('key:null', topic, (b) => ({ key: null, value: json(b.value), headers: [] }));
    add('key:empty', topic, (b) => ({ key: Buffer.alloc(0), value: json(b.value), headers: [] }));
    add('key:invalid-utf8', topic, (b) => ({ key: Buffer.concat([Buffer.from(b.key), Buffer.from([0xff, 0xfe, 0xc3])]), value: json(b.value), headers: [] }));
    add('key:over-limit', topic, (b) => ({ key: Buffer.from(pad(b.key, 201)), value: json(b.value), headers: [] }));
  }

  // Numbers of an order: extreme, non-finite, of the wrong type.
  for (const field of ['price', 'quantity'] as const) {
    for (const [label, literal] of [
      ['smallest-positive', '5e-324'],
      ['max', '1e9'],
      ['over-max', '1000000001'],
      ['1e308', '1e308'],
      ['overflow-to-infinity', '1e999'],
      ['negative-overflow', '-1e999'],
      ['zero', '0'],
      ['negative-zero', '-0'],
      ['negative', '-1'],
      ['string', '"100"'],
      ['bool', 'true'],
    ] as const)
      add(`${field}:${label}`, 'orders', (b) => ({
        key: Buffer.from(b.key),
        // A literal, not JSON.stringify: 1e999 and -0 must reach the consumer as written.
        value: Buffer.from(`${JSON.stringify({ ...b.value, [field]: 0 }).replace(`"${field}":0`, `"${field}":${literal}`)}`),
        headers: [],
      }));
  }
  for (const [label, side] of [
    ['side:upper-case', 'BUY'],
    ['side:unknown', 'short'],
  ] as const)
    add(label, 'orders', (b) => withField(b, 'side', side, false));

  return entries.map((e, i) => ({ ...e, via: i % 2 === 0 ? 'kcat' : 'kafkajs' }));
}

/**
 * Whether kcat can produce the record as it is: its key and headers go in arguments (C strings, UTF-8, at most
 * 128 KiB each), its value in a file that must not be empty. What it cannot carry goes through kafkajs.
 */
export function kcatCanCarry(record: HostileRecord, fid: string): boolean {
  const args = [record.key?.toString('utf8') ?? '', fid, ...record.headers.flatMap(([n, v]) => [n, v?.toString('utf8') ?? ''])];
  // argv is C strings (no NUL) and must round-trip as UTF-8; one argument is at most 128 KiB (MAX_ARG_STRLEN).
  const utf8 = (b: Buffer | null) => b === null || Buffer.from(b.toString('utf8')).equals(b);
  return (
    record.value !== null &&
    record.value.length > 0 && // kcat skips an empty file, and -Z only makes a null value of an empty line on stdin
    args.every((a) => !a.includes('\u0000') && Buffer.byteLength(a) < 120 * 1024) &&
    utf8(record.key) &&
    record.headers.every(([, v]) => utf8(v)) &&
    record.headers.every(([n]) => !n.includes('='))
  );
}

/** Installs kcat (Debian's package) when it is missing. Idempotent; needs root (apt-get) the first time. */
export async function ensureKcat(): Promise<string> {
  const version = async () => (await run('kcat', ['-V'])).stdout.split('\n')[0]!.trim();
  try {
    return await version();
  } catch {
    // not installed: install it below
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  try {
    await run('apt-get', ['install', '-y', '--no-install-recommends', 'kcat'], { env });
  } catch {
    await run('apt-get', ['update'], { env });
    await run('apt-get', ['install', '-y', '--no-install-recommends', 'kcat'], { env });
  }
  return version();
}

/**
 * Produces records with kcat, one process per record (kcat's `-k` and `-H` apply to every message of a run):
 * `kcat -P -b <broker> -t <topic> -k <key> -H name=value -H nullheader <file>`, the value from a file so any
 * bytes go through. `-X partitioner=murmur2_random` places keys as kafkajs and the Java client do.
 * Delivery failures make kcat exit non-zero (`-X topic.message.timeout.ms` bounds the wait).
 */
export class KcatProducer {
  readonly #broker: string;
  readonly #dir: string;
  #n = 0;

  constructor(broker: string) {
    this.#broker = broker;
    this.#dir = mkdtempSync(path.join(tmpdir(), 'faults-kcat-'));
  }

  /** Resolves once the broker acknowledged the record; rejects with kcat's message when it could not deliver it. */
  async send(topic: string, record: HostileRecord): Promise<void> {
    const file = path.join(this.#dir, `r${this.#n++}`);
    writeFileSync(file, record.value ?? Buffer.alloc(0));
    const args = [
      '-P',
      '-b',
      this.#broker,
      '-t',
      topic,
      '-X',
      'partitioner=murmur2_random',
      '-X',
      'message.max.bytes=2000000',
      '-X',
      'topic.message.timeout.ms=30000',
    ];
    if (record.key !== null) args.push('-k', record.key.toString('utf8'));
    for (const [name, value] of record.headers) args.push('-H', value === null ? name : `${name}=${value.toString('utf8')}`);
    args.push(file);
    try {
      await run('kcat', args, { maxBuffer: 1 << 20 });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`kcat could not produce to ${topic}: ${(e.stderr ?? e.message).trim().slice(0, 300)}`);
    } finally {
      rmSync(file, { force: true });
    }
  }

  close(): void {
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
