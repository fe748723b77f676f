import type { Client } from '@elastic/elasticsearch';
import { localServers, uniqueName } from '@stream/local-stack';
import net from 'node:net';
import { corpusDocument, createCorpusIndex, indexDocuments, type ProductDoc } from '../src/corpus.js';
import { createElasticsearchClient } from '../src/elasticsearch.js';

export function testClient(url = localServers().elasticsearchUrl, timeoutMs = 10_000): Client {
  return createElasticsearchClient({ url, timeoutMs });
}

/** Hand-written products whose words appear nowhere in the generated corpus. */
export const SPECIAL_DOCS: ProductDoc[] = [
  {
    id: 'special-1',
    title: 'Zanzibar espresso grinder',
    body: 'A burr grinder for espresso lovers.',
    brand: 'Acme',
    category: 'kitchen',
    tags: ['coffee'],
    price: 12.5,
    released: '2020-01-01',
  },
  {
    id: 'special-2',
    title: 'Quokka plush toy',
    body: 'Soft toy for kids.',
    brand: 'Fjord',
    category: 'home',
    tags: ['toy'],
    price: 99.99,
    released: '2021-06-01',
  },
  {
    id: 'special-3',
    title: 'Garden hose reel',
    body: 'Winds a quokka sized hose without kinks.',
    brand: 'Granite',
    category: 'garden',
    tags: ['hose'],
    price: 42,
    released: '2022-03-15',
  },
];

/** A fresh index with `generated` corpus products plus {@link SPECIAL_DOCS}; returns its name. */
export async function corpusIndex(client: Client, generated = 200, prefix = 'se-test'): Promise<string> {
  const index = uniqueName(prefix);
  await createCorpusIndex(client, index);
  await indexDocuments(client, index, [...Array.from({ length: generated }, (_, n) => corpusDocument(n)), ...SPECIAL_DOCS]);
  return index;
}

export async function dropIndex(client: Client, ...indices: string[]): Promise<void> {
  if (indices.length > 0) await client.indices.delete({ index: indices, ignore_unavailable: true });
}

export type ProxyMode = 'forward' | 'reset' | 'unavailable' | 'hang';

/**
 * A TCP proxy in front of Elasticsearch whose behaviour a test switches: forward, reset connections
 * (cluster down), answer 503 (cluster unavailable) or accept and never answer (timeouts).
 */
export class FlakyProxy {
  mode: ProxyMode;
  readonly #server: net.Server;
  readonly #sockets = new Set<net.Socket>();
  /** Connections that were closed while the proxy hung them (the client gave up on the request). */
  closedWhileHanging = 0;
  connections = 0;

  private constructor(server: net.Server, mode: ProxyMode) {
    this.#server = server;
    this.mode = mode;
  }

  static async start(mode: ProxyMode, target = new URL(localServers().elasticsearchUrl)): Promise<FlakyProxy> {
    const server = net.createServer();
    const proxy = new FlakyProxy(server, mode);
    server.on('connection', (socket) => proxy.#handle(socket, target));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as net.AddressInfo).port}`;
  }

  #handle(socket: net.Socket, target: URL): void {
    this.connections += 1;
    this.#sockets.add(socket);
    socket.on('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    switch (this.mode) {
      case 'reset':
        socket.resetAndDestroy();
        return;
      case 'unavailable':
        socket.once('data', () =>
          socket.end('HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}'),
        );
        return;
      case 'hang':
        socket.on('close', () => (this.closedWhileHanging += 1));
        socket.resume();
        return;
      case 'forward': {
        const upstream = net.connect(Number(target.port), target.hostname);
        upstream.on('error', () => socket.destroy());
        socket.on('close', () => upstream.destroy());
        upstream.on('close', () => socket.destroy());
        socket.pipe(upstream).pipe(socket);
        return;
      }
    }
  }

  /** Drops open connections (so a mode change applies to the client's next request at once). */
  dropConnections(): void {
    for (const s of this.#sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.dropConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Waits (bounded) until `condition` holds; throws naming `what` otherwise. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
