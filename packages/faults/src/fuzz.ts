import fc from 'fast-check';

/** The topics the services consume, which the fuzzer feeds. */
export type InputTopic = 'feed_activities' | 'orders' | 'search_queries';

/** A record as it goes on the wire. */
export interface WireRecord {
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

/** A valid record the fuzzer starts from: its key and its value as a JSON object. */
export interface BaseRecord {
  readonly key: string;
  readonly value: Readonly<Record<string, unknown>>;
  /** Free-text fields a hostile string may go into (never the id, which the checker follows the record by). */
  readonly textFields: readonly string[];
}

/** What the fuzzer does to a valid record. */
export type Mutation =
  | { readonly kind: 'random-bytes'; readonly bytes: Uint8Array }
  | { readonly kind: 'truncated-json'; readonly at: number }
  | { readonly kind: 'wrong-type'; readonly field: number; readonly value: unknown; readonly drop: boolean }
  | { readonly kind: 'huge-value'; readonly field: number; readonly asUnknownField: boolean }
  | { readonly kind: 'unknown-fields'; readonly extra: Readonly<Record<string, unknown>> }
  | { readonly kind: 'hostile-string'; readonly field: number; readonly text: string }
  | { readonly kind: 'bad-key'; readonly key: Uint8Array | null };

/** About 1 MB: the size of the huge values (the broker's default record limit is 1 MiB and a bit). */
export const HUGE_BYTES = 1_000_000;

/** Strings that have broken parsers, query languages, terminals and logs before. */
const HOSTILE = [
  '"; DROP TABLE orders; --',
  '") |> drop(columns: ["_value"]) |> yield(name: "x") //',
  'r._measurement == "marketdata" or true',
  '*:*',
  'title:x OR 1=1',
  '{"query":{"match_all":{}}}',
  '\\" \\\\ \\u0000',
  '\u0000\u0001\u0002\u001b[31mred\u001b[0m',
  '\u202eevil\u202c',
  '<script>alert(1)</script>',
  '${jndi:ldap://example.invalid/a}',
  '../../../../etc/passwd',
  '%s%s%s%n',
  '\ud800',
  '\udfff\ud800',
  '🦄🏳️‍🌈👨‍👩‍👧‍👦',
  'ａｂｃ\u3000全角',
  '\r\n\r\nHTTP/1.1 200 OK',
  'null',
  '__proto__',
  ' ',
  '',
];

const wrongValue = fc.oneof(
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.integer(), { maxKeys: 3 }),
  fc.string({ maxLength: 20 }),
  fc.constantFrom(-1, 0, Number.MAX_SAFE_INTEGER, '1e999', 'NaN', '2026-13-45T99:99:99Z', '2026-11-28T10:00:00'),
);

const hostileText = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...HOSTILE) },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 5_000, maxLength: 120_000 }) },
);

/** Every kind of bad (or merely strange) input, about evenly. */
export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.uint8Array({ maxLength: 2048 }).map((bytes) => ({ kind: 'random-bytes' as const, bytes })),
  fc.double({ min: 0, max: 0.999, noNaN: true }).map((at) => ({ kind: 'truncated-json' as const, at })),
  fc.record({ field: fc.nat(), value: wrongValue, drop: fc.boolean() }).map((m) => ({ kind: 'wrong-type' as const, ...m })),
  fc.record({ field: fc.nat(), asUnknownField: fc.boolean() }).map((m) => ({ kind: 'huge-value' as const, ...m })),
  fc
    .dictionary(
      fc.string({ minLength: 1, maxLength: 12 }).map((k) => `x_${k}`),
      fc.jsonValue({ maxDepth: 3 }),
      { minKeys: 1, maxKeys: 5 },
    )
    .map((extra) => ({ kind: 'unknown-fields' as const, extra })),
  fc.record({ field: fc.nat(), text: hostileText }).map((m) => ({ kind: 'hostile-string' as const, ...m })),
  fc.option(fc.uint8Array({ maxLength: 64 }), { nil: null }).map((key) => ({ kind: 'bad-key' as const, key })),
);

/** `count` mutations, the same ones for the same seed. */
export function sampleMutations(seed: number, count: number): Mutation[] {
  return fc.sample(mutation, { seed, numRuns: count });
}

/** Applies a mutation to a valid record. Whether the result is still valid is for the topic's contract to say. */
export function mutate(base: BaseRecord, m: Mutation): WireRecord {
  const key = Buffer.from(base.key);
  const fields = Object.keys(base.value);
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));
  switch (m.kind) {
    case 'random-bytes':
      return { key, value: Buffer.from(m.bytes) };
    case 'truncated-json': {
      const full = json(base.value);
      return { key, value: full.subarray(0, Math.floor(m.at * full.length)) };
    }
    case 'wrong-type': {
      const field = fields[m.field % fields.length]!;
      const value: Record<string, unknown> = { ...base.value };
      if (m.drop) delete value[field];
      else value[field] = m.value;
      return { key, value: json(value) };
    }
    case 'huge-value': {
      const huge = 'x'.repeat(HUGE_BYTES);
      if (m.asUnknownField) return { key, value: json({ ...base.value, x_huge: huge }) };
      const field = base.textFields[m.field % base.textFields.length]!;
      return { key, value: json({ ...base.value, [field]: huge }) };
    }
    case 'unknown-fields':
      return { key, value: json({ ...m.extra, ...base.value }) };
    case 'hostile-string': {
      const field = base.textFields[m.field % base.textFields.length]!;
      return { key, value: json({ ...base.value, [field]: m.text }) };
    }
    case 'bad-key':
      return { key: m.key === null ? null : Buffer.from(m.key), value: json(base.value) };
  }
}
