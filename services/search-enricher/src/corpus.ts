import type { Client, estypes } from '@elastic/elasticsearch';
import { uniformFloat64 } from 'pure-rand/distribution/uniformFloat64';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';

/** A product of the sample corpus. */
export interface ProductDoc {
  readonly id: string;
  readonly title: string;
  readonly body: string;
  readonly brand: string;
  readonly category: string;
  readonly tags: string[];
  readonly price: number;
  readonly released: string;
}

const ADJECTIVES = [
  'classic',
  'compact',
  'durable',
  'elegant',
  'ergonomic',
  'foldable',
  'heavy',
  'lightweight',
  'modern',
  'portable',
  'premium',
  'rugged',
  'sleek',
  'smart',
  'soft',
  'sturdy',
  'vintage',
  'waterproof',
  'wireless',
  'cozy',
];
const COLORS = ['black', 'blue', 'brown', 'green', 'grey', 'orange', 'pink', 'purple', 'red', 'silver', 'white', 'yellow'];
const MATERIALS = ['aluminium', 'bamboo', 'canvas', 'ceramic', 'cotton', 'glass', 'leather', 'oak', 'steel', 'wool'];
const NOUNS = [
  'backpack',
  'blender',
  'boots',
  'camera',
  'chair',
  'desk',
  'drill',
  'headphones',
  'jacket',
  'kettle',
  'keyboard',
  'lamp',
  'laptop',
  'mattress',
  'monitor',
  'mug',
  'notebook',
  'pan',
  'pillow',
  'printer',
  'router',
  'scarf',
  'sneakers',
  'sofa',
  'speaker',
  'tent',
  'toaster',
  'umbrella',
  'wallet',
  'watch',
];
const BRANDS = ['Acme', 'Borealis', 'Cobalt', 'Dunmore', 'Everline', 'Fjord', 'Granite', 'Halcyon', 'Ironwood', 'Juniper'];
const CATEGORIES = ['electronics', 'home', 'kitchen', 'outdoor', 'office', 'fashion', 'sports', 'garden'];
const PHRASES = [
  'built to last',
  'easy to clean',
  'great for travel',
  'perfect gift',
  'energy efficient',
  'quiet operation',
  'two year warranty',
  'fits small spaces',
  'handmade finish',
  'fast shipping',
];

/** A seeded PRNG in [0, 1) (xoroshiro128+): the same seed gives the same corpus on every machine. */
function random(seed: number): () => number {
  const rng = xoroshiro128plus(seed | 0);
  return () => uniformFloat64(rng);
}

function pick<T>(list: readonly T[], rnd: () => number): T {
  return list[Math.floor(rnd() * list.length)]!;
}

/** Product number `n` (0-based) of the corpus with `seed`: independent of how many are generated. */
export function corpusDocument(n: number, seed = 42): ProductDoc {
  const rnd = random(seed * 1_000_003 + n);
  const adjective = pick(ADJECTIVES, rnd);
  const color = pick(COLORS, rnd);
  const material = pick(MATERIALS, rnd);
  const noun = pick(NOUNS, rnd);
  const brand = pick(BRANDS, rnd);
  const phrases = [pick(PHRASES, rnd), pick(PHRASES, rnd)];
  const day = Math.floor(rnd() * 3650);
  return {
    id: `p-${String(n).padStart(6, '0')}`,
    title: `${brand} ${adjective} ${color} ${noun}`,
    body: `A ${adjective} ${noun} in ${color} ${material}, ${phrases[0]} and ${phrases[1]}.`,
    brand,
    category: pick(CATEGORIES, rnd),
    tags: [adjective, material, color],
    price: Math.round((5 + rnd() * 995) * 100) / 100,
    released: new Date(Date.UTC(2015, 0, 1) + day * 86_400_000).toISOString().slice(0, 10),
  };
}

/** The first `count` products of the corpus. */
export function generateCorpus(count: number, seed = 42): ProductDoc[] {
  return Array.from({ length: count }, (_, n) => corpusDocument(n, seed));
}

/**
 * The sample index: one shard (relevance statistics, hence the order of equal-looking hits, do not depend
 * on how documents spread over shards), text fields with the standard analyzer, keyword ids, and a few
 * non-text fields (price, released) that a misconfigured SEARCH_FIELDS can trip over.
 */
export const corpusIndexSettings = {
  settings: { number_of_shards: 1, number_of_replicas: 0 },
  mappings: {
    dynamic: 'strict',
    properties: {
      id: { type: 'keyword' },
      title: { type: 'text', analyzer: 'standard' },
      body: { type: 'text', analyzer: 'standard' },
      brand: { type: 'text', analyzer: 'standard', fields: { raw: { type: 'keyword' } } },
      category: { type: 'keyword' },
      tags: { type: 'text', analyzer: 'standard' },
      price: { type: 'double' },
      released: { type: 'date', format: 'strict_date' },
    },
  },
} satisfies Pick<estypes.IndicesCreateRequest, 'settings' | 'mappings'>;

/** Creates `index` with the sample mapping (fails if it exists). */
export async function createCorpusIndex(client: Client, index: string): Promise<void> {
  await client.indices.create({ index, ...corpusIndexSettings, wait_for_active_shards: 1 });
}

async function bulk(client: Client, index: string, docs: readonly { id: string }[]): Promise<void> {
  if (docs.length === 0) return;
  const res = await client.bulk({ operations: docs.flatMap((doc) => [{ index: { _index: index, _id: doc.id } }, doc]) });
  if (res.errors) {
    const failed = res.items.find((i) => i.index?.error)?.index;
    throw new Error(`bulk indexing into ${index} failed: ${failed?.error?.type ?? 'unknown'}: ${failed?.error?.reason ?? ''}`);
  }
}

/** Bulk-indexes documents (id = `doc.id`) in chunks of 1,000, then refreshes so they are searchable at once. */
export async function indexDocuments(client: Client, index: string, docs: readonly { id: string }[]): Promise<void> {
  for (let start = 0; start < docs.length; start += 1000) await bulk(client, index, docs.slice(start, start + 1000));
  await client.indices.refresh({ index });
}

export interface LoadCorpusOptions {
  readonly index: string;
  /** Default 10,000. */
  readonly docs?: number;
  readonly seed?: number;
  /** Delete the index first if it exists. Default false. */
  readonly recreate?: boolean;
}

/** Creates the sample index and loads `docs` generated products into it; returns how many. */
export async function loadCorpus(client: Client, options: LoadCorpusOptions): Promise<number> {
  const count = options.docs ?? 10_000;
  if (options.recreate) await client.indices.delete({ index: options.index, ignore_unavailable: true });
  await createCorpusIndex(client, options.index);
  for (let start = 0; start < count; start += 1000) {
    await bulk(
      client,
      options.index,
      Array.from({ length: Math.min(1000, count - start) }, (_, i) => corpusDocument(start + i, options.seed)),
    );
  }
  await client.indices.refresh({ index: options.index });
  return count;
}
