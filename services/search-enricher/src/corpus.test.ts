import { requireServers, uniqueName } from '@stream/local-stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropIndex, testClient } from '../test/support.js';
import { corpusDocument, generateCorpus, loadCorpus } from './corpus.js';
import { parseCommandLine } from './load-corpus.js';

describe('the sample corpus', () => {
  it('is deterministic and product-like', () => {
    expect(generateCorpus(50)).toEqual(generateCorpus(50));
    expect(corpusDocument(7)).toEqual(generateCorpus(10)[7]);
    expect(generateCorpus(3, 1)).not.toEqual(generateCorpus(3, 2));
    const doc = corpusDocument(0);
    expect(doc.id).toBe('p-000000');
    expect(doc.title.split(' ')).toHaveLength(4);
    expect(doc.price).toBeGreaterThanOrEqual(5);
    expect(doc.released).toMatch(/^\d{4}-\d{2}-\d{2}$/);
  });

  it('parses the command line', () => {
    expect(parseCommandLine(['--index', 'products'])).toEqual({ index: 'products', docs: 10_000, seed: 42, recreate: false });
    expect(parseCommandLine(['--index', 'p', '--docs', '5', '--seed', '7', '--recreate'])).toEqual({ index: 'p', docs: 5, seed: 7, recreate: true });
    expect(() => parseCommandLine([])).toThrow(/--index/);
    expect(() => parseCommandLine(['--index', 'Products'])).toThrow(/--index/);
    expect(() => parseCommandLine(['--index', 'p', '--docs', '-1'])).toThrow(/--docs/);
    expect(() => parseCommandLine(['--index', 'p', '--bogus'])).toThrow();
  });

  describe('loaded into Elasticsearch', () => {
    const client = testClient();
    const index = uniqueName('se-corpus');
    beforeAll(() => requireServers('elasticsearch'));
    afterAll(async () => {
      await dropIndex(client, index);
      await client.close();
    });

    it('creates the index with the mapping and loads every document, searchable at once', async () => {
      expect(await loadCorpus(client, { index, docs: 1500 })).toBe(1500);
      expect((await client.count({ index })).count).toBe(1500);
      const mapping = await client.indices.getMapping({ index });
      expect(mapping[index]?.mappings.properties).toMatchObject({
        id: { type: 'keyword' },
        title: { type: 'text', analyzer: 'standard' },
        price: { type: 'double' },
      });
      const doc = await client.get({ index, id: 'p-001234' });
      expect(doc._source).toEqual(corpusDocument(1234));
      expect(await loadCorpus(client, { index, docs: 10, recreate: true })).toBe(10);
      expect((await client.count({ index })).count).toBe(10);
    });
  });
});
