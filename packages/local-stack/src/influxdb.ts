import { localServers } from './servers.js';

/**
 * InfluxDB 1.8 maps a v2 "bucket" to `database/retention-policy`; buckets are created as databases
 * through the 1.x query endpoint, the only way 1.8 offers.
 */
async function influxQl(statement: string): Promise<void> {
  const url = new URL('/query', localServers().influxUrl);
  const res = await fetch(url, { method: 'POST', body: new URLSearchParams({ q: statement }) });
  const text = await res.text();
  if (!res.ok || text.includes('"error"')) throw new Error(`InfluxQL ${statement} failed: ${res.status} ${text}`);
}

function quoteIdentifier(name: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`unsafe InfluxDB database name: ${name}`);
  return `"${name}"`;
}

/** Creates a database and returns its v2 bucket name (`<db>/autogen`). */
export async function createInfluxBucket(database: string): Promise<string> {
  await influxQl(`CREATE DATABASE ${quoteIdentifier(database)}`);
  return `${database}/autogen`;
}

/** Drops a database created by {@link createInfluxBucket}. */
export async function dropInfluxBucket(database: string): Promise<void> {
  await influxQl(`DROP DATABASE ${quoteIdentifier(database)}`);
}
