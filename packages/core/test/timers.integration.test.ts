/**
 * onLeader timers on the real broker: the lead is the one partition of `<appId>-leader` in its own
 * consumer group, so it follows Kafka's group protocol (join, rebalance, leave).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteTopics, localServers, requireServers, uniqueName, waitUntil } from '@stream/local-stack';
import { App } from '../src/app.js';
import { silentLogger } from '../src/logger.js';
import { leaderTopicName } from '../src/timers.js';
import { kafkaClients } from './fixtures.js';

const created: string[] = [];

beforeAll(async () => {
  await requireServers('kafka');
});

afterAll(async () => {
  await deleteTopics(created);
});

describe.each(kafkaClients)('onLeader timers on Kafka (%s)', (client) => {
  it('run on one instance of the group, and move to the other when the leader stops', async () => {
    const id = uniqueName('timer-lead');
    created.push(leaderTopicName(id));
    const runs = [0, 0];
    let runningNow = 0;
    let overlapped = false;
    const apps = [0, 1].map((i) => {
      const app = new App({
        id,
        brokers: [...localServers().kafkaBrokers],
        transport: client,
        logger: silentLogger(),
        sessionTimeoutMs: 10_000,
        heartbeatIntervalMs: 500,
      });
      app.timer(
        50,
        async () => {
          runningNow += 1;
          if (runningNow > 1) overlapped = true;
          runs[i]! += 1;
          await new Promise((r) => setTimeout(r, 5));
          runningNow -= 1;
        },
        { name: 'lead', onLeader: true },
      );
      return app;
    });
    const leadOf = (app: App) => app.health().timers[0]!.active;
    try {
      await Promise.all(apps.map((a) => a.start()));
      await waitUntil(() => apps.filter(leadOf).length === 1, 'one instance to lead', 30_000);
      const leader = apps.findIndex(leadOf);
      const other = 1 - leader;
      const before = [...runs];
      await waitUntil(() => runs[leader]! >= before[leader]! + 5, 'the leader to run', 30_000);
      expect(runs[other]).toBe(before[other]);

      // Leaving the group hands the partition over at the next rebalance, without waiting for a session timeout.
      await apps[leader]!.stop();
      const taken = runs[other]!;
      await waitUntil(() => runs[other]! >= taken + 3, 'the other instance to take over', 30_000);
      expect(leadOf(apps[other]!)).toBe(true);
      expect(overlapped).toBe(false);
    } finally {
      await Promise.all(apps.map((a) => a.stop()));
    }
  });
});
