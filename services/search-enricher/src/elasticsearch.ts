import { Client, type ClientOptions } from '@elastic/elasticsearch';

/** What the client needs from the configuration. */
export interface ElasticsearchSettings {
  readonly url: string;
  readonly apiKey?: string | undefined;
  readonly username?: string | undefined;
  readonly password?: string | undefined;
  readonly timeoutMs: number;
}

/**
 * An Elasticsearch 8.x client. It does not retry by itself (`maxRetries: 0`): the agent retries records
 * with backoff, so one attempt is one request bounded by the timeout.
 */
export function createElasticsearchClient(settings: ElasticsearchSettings): Client {
  let auth: ClientOptions['auth'];
  if (settings.apiKey !== undefined) auth = { apiKey: settings.apiKey };
  else if (settings.username !== undefined && settings.password !== undefined) auth = { username: settings.username, password: settings.password };
  return new Client({
    node: settings.url,
    requestTimeout: settings.timeoutMs,
    maxRetries: 0,
    ...(auth ? { auth } : {}),
  });
}

/** Readiness: the cluster answers a health request (whatever its colour). */
export async function clusterAnswers(client: Client, timeoutMs = 2000): Promise<boolean> {
  await client.cluster.health({}, { requestTimeout: timeoutMs, maxRetries: 0 });
  return true;
}
