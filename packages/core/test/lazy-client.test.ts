import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const SCRIPT = fileURLToPath(new URL('./lazy-client.mjs', import.meta.url));

async function loads(transport: string): Promise<boolean> {
  const { stdout } = await promisify(execFile)(process.execPath, [SCRIPT, transport]);
  return (JSON.parse(stdout) as { loaded: boolean }).loaded;
}

// @platformatic/kafka costs about 60 MB of resident memory at import: an app on kafkajs must not pay it.
describe('the Kafka client is loaded only by the transport that uses it (built @stream/core)', () => {
  it('an app on kafkajs never loads @platformatic/kafka', async () => {
    expect(await loads('kafkajs')).toBe(false);
  });

  it('an app on platformatic loads it when it builds a producer', async () => {
    expect(await loads('platformatic')).toBe(true);
  });
});
