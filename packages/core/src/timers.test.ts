import { describe, expect, it } from 'vitest';
import { delay, eventually, payment, payments } from '../test/fixtures.js';
import { App } from './app.js';
import { StreamError } from './errors.js';
import { silentLogger } from './logger.js';
import { RuntimeMetrics } from './ops/metrics.js';
import { MemoryBroker, MemoryTransport, createTestApp } from './testing/index.js';
import { cronSchedule, intervalSchedule, leaderTopicName, type TimerHealth } from './timers.js';

function timerHealth(app: App, name: string): TimerHealth {
  const found = app.health().timers.find((t) => t.name === name);
  if (!found) throw new Error(`no timer ${name}`);
  return found;
}

function memoryApp(broker: MemoryBroker, id = 'timers-app'): App {
  return new App({ id, transport: new MemoryTransport(broker), logger: silentLogger(), createTopics: true, shutdownTimeoutMs: 2000, sessionTimeoutMs: 500 });
}

describe('schedules', () => {
  it('an interval counts from its anchor, so a slow run does not make the next drift', () => {
    const schedule = intervalSchedule(1000, 10_000);
    expect(schedule.next(new Date(10_000))?.getTime()).toBe(11_000);
    expect(schedule.next(new Date(11_999))?.getTime()).toBe(12_000);
    // Missed slots are not run late in a burst: the next one after now.
    expect(schedule.next(new Date(15_500))?.getTime()).toBe(16_000);
  });

  it('a crontab is read in its time zone, across a daylight-saving change', () => {
    const nineInNewYork = cronSchedule('0 9 * * *', 'America/New_York');
    // 2026-03-08 is the first day of EDT (UTC-4); the day before is EST (UTC-5).
    expect(nineInNewYork.next(new Date('2026-03-07T00:00:00Z'))?.toISOString()).toBe('2026-03-07T14:00:00.000Z');
    expect(nineInNewYork.next(new Date('2026-03-08T00:00:00Z'))?.toISOString()).toBe('2026-03-08T13:00:00.000Z');
    expect(cronSchedule('*/15 * * * * *').next(new Date('2026-01-01T00:00:01Z'))?.toISOString()).toBe('2026-01-01T00:00:15.000Z');
  });

  it('refuses a bad expression, time zone or interval when it is defined, naming it', () => {
    const app = memoryApp(new MemoryBroker());
    expect(() => app.crontab('every day', () => undefined)).toThrow(/crontab "every day"/);
    expect(() => app.crontab('0 9 * * *', () => undefined, { timezone: 'Mars/Olympus' })).toThrow(/Mars\/Olympus/);
    expect(() => app.timer(0, () => undefined)).toThrow(StreamError);
    expect(() => app.timer(Number.NaN, () => undefined)).toThrow(/interval/);
    app.timer(10, () => undefined, { name: 'tick' });
    expect(() => app.timer(10, () => undefined, { name: 'tick' })).toThrow(/defined twice/);
  });
});

describe('app.timer', () => {
  it('runs while the app runs, beside its agents, and not after stop()', async () => {
    const topic = payments('timer-side');
    let runs = 0;
    const seen: string[] = [];
    const h = await createTestApp({}, (app) => {
      app.agent(topic, async (p) => void seen.push(p.id));
      app.timer(5, () => void (runs += 1), { name: 'count' });
    });
    await h.send(topic, { key: 'a', value: payment(1) });
    await h.settle();
    await eventually(() => runs >= 3, 5000, 'three timer runs');
    const health = timerHealth(h.app, 'count');
    expect(health).toMatchObject({ active: true, onLeader: false, failed: 0, schedule: 'every 5 ms' });
    expect(health.succeeded).toBeGreaterThanOrEqual(3);
    await h.stop();
    const after = runs;
    await delay(30);
    expect(runs).toBe(after);
    expect(seen).toEqual(['p-1']);
  });

  it('skips a run while the previous one still runs, and counts it', async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    const h = await createTestApp({}, (app) =>
      app.timer(
        2,
        async () => {
          concurrent += 1;
          maxConcurrent = Math.max(maxConcurrent, concurrent);
          await released;
          concurrent -= 1;
        },
        { name: 'slow' },
      ),
    );
    await eventually(() => timerHealth(h.app, 'slow').skipped >= 3, 5000, 'skipped runs');
    expect(timerHealth(h.app, 'slow').running).toBe(true);
    release();
    await eventually(() => timerHealth(h.app, 'slow').succeeded >= 2, 5000, 'runs after release');
    expect(maxConcurrent).toBe(1);
    await h.stop();
  });

  it('keeps its schedule when a run fails, and reports the error until a run succeeds', async () => {
    let runs = 0;
    let healthy = false;
    const h = await createTestApp({}, (app) =>
      app.timer(
        3,
        () => {
          runs += 1;
          if (!healthy) throw new Error(`refresh failed (${runs})`);
        },
        { name: 'flaky' },
      ),
    );
    await eventually(() => timerHealth(h.app, 'flaky').failed >= 2, 5000, 'two failures');
    expect(timerHealth(h.app, 'flaky').lastError).toMatch(/refresh failed/);
    expect(timerHealth(h.app, 'flaky').succeeded).toBe(0);
    healthy = true;
    await eventually(() => timerHealth(h.app, 'flaky').succeeded >= 1, 5000, 'a success');
    expect(timerHealth(h.app, 'flaky').lastError).toBeUndefined();
    expect(h.app.state).toBe('running');
    const metrics = new RuntimeMetrics({ defaultMetrics: false });
    metrics.attach(h.app);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/stream_timer_runs_total\{timer="flaky",outcome="failed"\} ([2-9]|\d\d+)/);
    expect(text).toMatch(/stream_timer_runs_total\{timer="flaky",outcome="succeeded"\} [1-9]/);
    expect(text).toContain('stream_timer_active{timer="flaky"} 1');
    await h.stop();
  });

  it('stop() lets a run finish, and aborts its signal at the shutdown deadline', async () => {
    let finished = false;
    let aborted: unknown;
    const broker = new MemoryBroker();
    const app = new App({ id: 'timer-stop', transport: new MemoryTransport(broker), logger: silentLogger(), shutdownTimeoutMs: 50 });
    app.timer(
      2,
      async ({ signal }) => {
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
        aborted = signal.reason;
        finished = true;
      },
      { name: 'endless' },
    );
    await app.start();
    await eventually(() => timerHealth(app, 'endless').running, 5000, 'a run in progress');
    await app.stop();
    expect(finished).toBe(true);
    expect(aborted).toBeInstanceOf(StreamError);
    expect((aborted as StreamError).code).toBe('SHUTDOWN_TIMEOUT');
  });

  it('lets a run send through the app, and its records arrive', async () => {
    const topic = payments('timer-send');
    let sent = 0;
    const h = await createTestApp({ outputs: [topic] }, (app) =>
      app.timer(
        3,
        async () => {
          if (sent >= 3) return;
          sent += 1;
          await app.send(topic, { key: 'tick', value: payment(sent) });
        },
        { name: 'sender' },
      ),
    );
    await eventually(() => h.broker.messages(topic.name).length === 3, 5000, 'three records');
    expect((await h.produced(topic)).map((r) => r.value.id)).toEqual(['p-1', 'p-2', 'p-3']);
    await h.stop();
  });
});

describe('onLeader timers', () => {
  it('run on one instance of the group at a time, and move to another when it stops', async () => {
    const broker = new MemoryBroker();
    const runsOf = [0, 0];
    // Which instance ran while another was also running a leader-only run: must stay empty.
    const overlaps: number[] = [];
    let runningNow = 0;
    const apps = [0, 1].map((i) => {
      const app = memoryApp(broker);
      app.timer(
        2,
        async () => {
          runningNow += 1;
          if (runningNow > 1) overlaps.push(i);
          runsOf[i]! += 1;
          await delay(1);
          runningNow -= 1;
        },
        { name: 'lead', onLeader: true },
      );
      return app;
    });
    await apps[0]!.start();
    await eventually(() => runsOf[0]! >= 3, 5000, 'the first instance leads');
    await apps[1]!.start();
    // Once the group settled, exactly one instance is active and only it runs.
    await eventually(() => apps.filter((a) => timerHealth(a, 'lead').active).length === 1, 5000, 'one leader');
    const leader = apps.findIndex((a) => timerHealth(a, 'lead').active);
    const other = 1 - leader;
    const before = [...runsOf];
    await eventually(() => runsOf[leader]! >= before[leader]! + 5, 5000, 'the leader keeps running');
    expect(runsOf[other]).toBe(before[other]);
    expect(broker.topics()).toContain(leaderTopicName('timers-app'));

    await apps[leader]!.stop();
    const taken = runsOf[other]!;
    await eventually(() => runsOf[other]! >= taken + 3, 5000, 'the other instance takes over');
    expect(timerHealth(apps[other]!, 'lead').active).toBe(true);
    await apps[other]!.stop();
    expect(overlaps).toEqual([]);
  });

  it('an ordinary timer runs on every instance while an onLeader one runs on one', async () => {
    const broker = new MemoryBroker();
    const everywhere = [0, 0];
    const apps = [0, 1].map((i) => {
      const app = memoryApp(broker, 'mixed-timers');
      app.timer(2, () => void (everywhere[i]! += 1), { name: 'everywhere' });
      app.timer(2, () => undefined, { name: 'once', onLeader: true });
      return app;
    });
    await Promise.all(apps.map((a) => a.start()));
    await eventually(() => everywhere.every((n) => n >= 3), 5000, 'both instances run the ordinary timer');
    await eventually(() => apps.filter((a) => timerHealth(a, 'once').active).length === 1, 5000, 'one leader');
    await Promise.all(apps.map((a) => a.stop()));
  });
});
