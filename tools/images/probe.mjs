#!/usr/bin/env node
// Small client-side steps of tools/images/check.sh, against the local servers. kafkajs and ioredis are
// the workspace's own (resolved through @stream/local-stack's dependencies; `pnpm install` provides them).
//
//   free-port                                   a free TCP port on 127.0.0.1
//   wait-http <url> <timeout-ms> [status]       poll until the URL answers `status` (default 200)
//   group-to-end <group> <topic> [...]          commit each <group>'s offsets at its topic's end, so a new
//                                               consumer group starts after what is already there
//   offsets <topic>                             the topic's end offsets, as JSON
//   await-record <topic> <key> <offsets> <ms>   first record with <key> after <offsets>: prints its value
//   delete-groups <group>...                    delete consumer groups (ignoring unknown ones)
//   redis <url> <command> [arg...]              one Redis command, prints the reply as JSON
//   wait-sink <sink-url> <key> <timeout-ms>     poll the email sink until an email with that Idempotency-Key
//   http <method> <url> [json-body]             one request; prints the body, fails on a non-2xx status
//   compose-env <service>                       the service's `environment:` in docker/compose.yaml (${VAR:-x}
//                                               interpolated), as NUL-separated VAR=value; fails when it has
//                                               none or names a variable neither its src/config.ts nor
//                                               core's src/service-config.ts knows
//   compose-hardened                            fails unless every container docker/compose.yaml builds from
//                                               the Dockerfile merges the x-hardened block (read_only,
//                                               cap_drop ALL, no-new-privileges, tmpfs /tmp), directly or
//                                               through x-service
//   dev-deps <app-dir>                          fails listing the dev-only packages (devDependencies of the
//                                               root, of the package and of the workspace packages deployed
//                                               with it, that none of them depends on) found in
//                                               <app-dir>/node_modules, top level or .pnpm
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const require = createRequire(`${repo}packages/local-stack/package.json`);
const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

function kafka() {
  const { Kafka, logLevel } = require('kafkajs');
  return new Kafka({ clientId: 'images-check', brokers, logLevel: logLevel.ERROR, retry: { retries: 5, initialRetryTime: 100 } });
}

async function withAdmin(fn) {
  const admin = kafka().admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect();
  }
}

/**
 * `services.<service>.environment` of a compose file written in block style (as docker/compose.yaml is):
 * a mapping of VAR: value lines. Enough YAML for that file, not a general parser.
 */
function composeEnvironment(file, service) {
  const interpolate = (value) => value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}/g, (_, name, fallback) => process.env[name] || (fallback ?? ''));
  const unquote = (value) => (/^(["']).*\1$/.test(value) ? value.slice(1, -1) : value);
  const env = {};
  let inServices = false;
  let current = null;
  let inEnvironment = false;
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.replace(/\s+#.*$/, '').replace(/\s+$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    let match;
    if (/^\S/.test(line)) {
      inServices = line === 'services:';
      current = null;
      continue;
    }
    if (!inServices) continue;
    if ((match = /^ {2}([A-Za-z0-9_.-]+):$/.exec(line))) {
      current = match[1];
      inEnvironment = false;
      continue;
    }
    if (current !== service) continue;
    if (/^ {4}environment:$/.test(line)) {
      inEnvironment = true;
      continue;
    }
    if (/^ {4}\S/.test(line)) inEnvironment = false;
    else if (inEnvironment && (match = /^ {6}([A-Za-z_][A-Za-z0-9_.]*):\s*(.*)$/.exec(line))) env[match[1]] = unquote(interpolate(match[2]));
  }
  return env;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const print = (value) => process.stdout.write(`${typeof value === 'string' ? value : JSON.stringify(value)}\n`);

const commands = {
  async 'free-port'() {
    const server = createServer();
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address();
    await new Promise((resolve) => server.close(resolve));
    print(String(port));
  },

  async 'wait-http'(url, timeoutMs, status = '200') {
    const deadline = Date.now() + Number(timeoutMs);
    let last = 'no answer';
    while (Date.now() < deadline) {
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
        last = `HTTP ${response.status}: ${(await response.text()).slice(0, 300)}`;
        if (response.status === Number(status)) return print(last);
      } catch (error) {
        last = String(error?.cause?.code ?? error?.message ?? error);
      }
      await sleep(250);
    }
    throw new Error(`${url} did not answer ${status} within ${timeoutMs} ms (last: ${last})`);
  },

  async 'group-to-end'(...pairs) {
    // kafkajs' setOffsets joins the group with a consumer (a few seconds each): the groups go in parallel.
    const jobs = [];
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const [groupId, topic] = [pairs[i], pairs[i + 1]];
      jobs.push(
        withAdmin(async (admin) => {
          const offsets = await admin.fetchTopicOffsets(topic);
          await admin.setOffsets({ groupId, topic, partitions: offsets.map((o) => ({ partition: o.partition, offset: o.high })) });
        }),
      );
    }
    await Promise.all(jobs);
  },

  async offsets(topic) {
    const offsets = await withAdmin((admin) => admin.fetchTopicOffsets(topic));
    print(offsets.map((o) => ({ partition: o.partition, offset: o.high })));
  },

  async 'await-record'(topic, key, offsetsJson, timeoutMs) {
    const from = JSON.parse(offsetsJson);
    const groupId = `images-check-probe-${process.pid}-${Date.now()}`;
    const consumer = kafka().consumer({ groupId, allowAutoTopicCreation: false, maxWaitTimeInMs: 500 });
    let found;
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      const done = new Promise((resolve) => {
        void consumer.run({
          autoCommit: false,
          eachMessage: async ({ message }) => {
            if (message.key?.toString() === key && found === undefined) {
              found = message.value?.toString() ?? 'null';
              resolve();
            }
          },
        });
      });
      // Start where the caller looked, before anything it waits for was produced (a partition the seek
      // misses is read from its beginning: slower, still right).
      for (const { partition, offset } of from) consumer.seek({ topic, partition, offset });
      const timer = sleep(Number(timeoutMs)).then(() => 'timeout');
      if ((await Promise.race([done, timer])) === 'timeout') throw new Error(`no record with key ${key} on ${topic} within ${timeoutMs} ms`);
      print(found);
    } finally {
      await consumer.disconnect().catch(() => {});
      await withAdmin((admin) => admin.deleteGroups([groupId])).catch(() => {});
    }
  },

  async 'delete-groups'(...groups) {
    await withAdmin(async (admin) => {
      try {
        await admin.deleteGroups(groups);
      } catch (error) {
        // GROUP_ID_NOT_FOUND and friends: nothing to delete.
        if (!/not found|does not exist|GROUP_ID_NOT_FOUND/i.test(String(error?.message)) && error?.name !== 'KafkaJSDeleteGroupsError') throw error;
      }
    });
  },

  async redis(url, command, ...args) {
    const { Redis } = require('ioredis');
    const redis = new Redis(url, { maxRetriesPerRequest: 1, connectTimeout: 2000, lazyConnect: true });
    try {
      await redis.connect();
      print(await redis.call(command, ...args));
    } finally {
      redis.disconnect();
    }
  },

  async 'wait-sink'(sinkUrl, key, timeoutMs) {
    const deadline = Date.now() + Number(timeoutMs);
    while (Date.now() < deadline) {
      const response = await fetch(`${sinkUrl}/sent?key=${encodeURIComponent(key)}`).catch(() => null);
      const emails = response?.ok ? await response.json() : [];
      if (emails.length > 0) return print(emails);
      await sleep(250);
    }
    throw new Error(`the email sink got no email with Idempotency-Key ${key} within ${timeoutMs} ms`);
  },

  async http(method, url, body) {
    const response = await fetch(url, {
      method,
      signal: AbortSignal.timeout(15_000),
      ...(body === undefined ? {} : { body, headers: { 'content-type': body.trimStart().startsWith('{') ? 'application/json' : 'text/plain' } }),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`${method} ${url}: HTTP ${response.status}: ${text.slice(0, 500)}`);
    print(text);
  },

  async 'compose-env'(service) {
    const env = composeEnvironment(`${repo}docker/compose.yaml`, service);
    const names = Object.keys(env);
    if (names.length === 0) throw new Error(`docker/compose.yaml has no environment for service ${service}`);
    // A service reads its own variables (src/config.ts) and those every service shares (core's service shell).
    const config = readFileSync(`${repo}services/${service}/src/config.ts`, 'utf8') + readFileSync(`${repo}packages/core/src/service-config.ts`, 'utf8');
    const unknown = names.filter((name) => !new RegExp(`\\b${name}\\b`).test(config));
    if (unknown.length > 0) {
      throw new Error(
        `docker/compose.yaml sets ${unknown.join(', ')} for ${service}, which neither services/${service}/src/config.ts nor packages/core/src/service-config.ts reads`,
      );
    }
    process.stdout.write(names.map((name) => `${name}=${env[name]}\0`).join(''));
  },

  async 'compose-hardened'() {
    // Enough YAML for docker/compose.yaml (block style, two-space indents): the x-* blocks' lines and merges,
    // and per service whether it builds from the Dockerfile and which blocks it merges.
    const lines = readFileSync(`${repo}docker/compose.yaml`, 'utf8').split('\n');
    const blocks = {};
    const services = {};
    let top = '';
    let service = '';
    for (const line of lines) {
      if (/^\S/.test(line)) {
        top = line.replace(/:.*$/, '');
        service = '';
        if (top.startsWith('x-')) blocks[line.match(/&([\w-]+)/)?.[1] ?? top] = [];
        continue;
      }
      if (top.startsWith('x-')) blocks[Object.keys(blocks).at(-1)].push(line.trim());
      if (top !== 'services') continue;
      const name = line.match(/^  ([\w-]+):\s*$/)?.[1];
      if (name) {
        service = name;
        services[name] = { builds: false, merges: [] };
        continue;
      }
      if (!service) continue;
      if (/^    build:/.test(line)) services[service].builds = true;
      const merge = line.match(/^    <<: \*([\w-]+)/)?.[1];
      if (merge) services[service].merges.push(merge);
    }
    const hardened = blocks.hardened ?? [];
    const wanted = ['read_only: true', 'cap_drop: [ALL]', 'security_opt: ["no-new-privileges:true"]'];
    const missing = wanted.filter((entry) => !hardened.includes(entry));
    if (!hardened.some((entry) => /^tmpfs: \["\/tmp:/.test(entry))) missing.push('tmpfs: ["/tmp:…"]');
    if (missing.length > 0) throw new Error(`docker/compose.yaml's x-hardened block lacks ${missing.join(', ')}`);
    const viaBlock = (merge) => merge === 'hardened' || (blocks[merge] ?? []).includes('<<: *hardened');
    const built = Object.entries(services).filter(([, s]) => s.builds);
    const open = built.filter(([, s]) => !s.merges.some(viaBlock)).map(([name]) => name);
    if (built.length === 0) throw new Error('docker/compose.yaml: no service builds from the Dockerfile');
    if (open.length > 0) throw new Error(`docker/compose.yaml: ${open.join(', ')} build from the Dockerfile without the x-hardened block`);
    print(built.map(([name]) => name).join(' '));
  },

  async 'dev-deps'(appDir) {
    // The manifests that decide what a production install contains: the workspace root's, the deployed
    // package's, and those of the workspace packages deployed with it (as found in the image).
    const app = JSON.parse(readFileSync(`${appDir}/package.json`, 'utf8'));
    const scope = app.name.startsWith('@') ? app.name.split('/')[0] : null;
    const manifests = [JSON.parse(readFileSync(`${repo}package.json`, 'utf8')), app];
    const pnpmDir = `${appDir}/node_modules/.pnpm`;
    for (const entry of scope && existsSync(pnpmDir) ? readdirSync(pnpmDir) : []) {
      const dir = `${pnpmDir}/${entry}/node_modules/${scope}`;
      if (!entry.startsWith(`${scope}+`) || !existsSync(dir)) continue;
      for (const name of readdirSync(dir)) {
        if (existsSync(`${dir}/${name}/package.json`)) manifests.push(JSON.parse(readFileSync(`${dir}/${name}/package.json`, 'utf8')));
      }
    }
    const dev = new Set();
    const prod = new Set();
    for (const manifest of manifests) {
      for (const name of Object.keys(manifest.devDependencies ?? {})) dev.add(name);
      for (const name of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies, ...manifest.peerDependencies })) prod.add(name);
    }
    const devOnly = [...new Set([...dev].filter((name) => !prod.has(name)).concat(['typescript', 'vitest', 'eslint', 'turbo']))];
    const modules = `${appDir}/node_modules`;
    if (!existsSync(modules)) throw new Error(`${modules} does not exist`);
    const installed = new Set();
    for (const entry of readdirSync(modules)) {
      if (entry.startsWith('@')) for (const sub of readdirSync(`${modules}/${entry}`)) installed.add(`${entry}/${sub}`);
      else if (!entry.startsWith('.')) installed.add(entry);
    }
    // .pnpm/<name>@<version>[_peers]/node_modules/: the package (scope's slash written as +) and the
    // packages it depends on. What an installed third-party package depends on is legitimately there
    // (apache-arrow depends on @types/node, say): a dev-only name only counts when nothing installed needs it.
    const requiredBy = new Map();
    const readManifest = (file) => {
      try {
        return JSON.parse(readFileSync(file, 'utf8'));
      } catch {
        return null;
      }
    };
    for (const entry of existsSync(`${modules}/.pnpm`) ? readdirSync(`${modules}/.pnpm`) : []) {
      const match = /^(@[^+]+\+[^@]+|[^@]+)@/.exec(entry);
      if (!match) continue;
      const name = match[1].replace('+', '/');
      installed.add(name);
      if (name.startsWith(`${scope}/`)) continue;
      const manifest = readManifest(`${modules}/.pnpm/${entry}/node_modules/${name}/package.json`);
      for (const dep of Object.keys({ ...manifest?.dependencies, ...manifest?.optionalDependencies, ...manifest?.peerDependencies })) {
        if (!requiredBy.has(dep)) requiredBy.set(dep, name);
      }
    }
    const found = devOnly.filter((name) => installed.has(name) && !requiredBy.has(name));
    if (found.length > 0) throw new Error(`dev-only packages in the image: ${found.join(', ')}`);
    const explained = devOnly.filter((name) => installed.has(name)).map((name) => `${name} (a dependency of ${requiredBy.get(name)})`);
    print(
      `none of the ${devOnly.length} dev-only packages (${devOnly.join(', ')}) among ${installed.size} installed` +
        (explained.length > 0 ? `, but for ${explained.join(', ')}` : ''),
    );
  },
};

const [name, ...args] = process.argv.slice(2);
const command = commands[name];
if (!command) {
  process.stderr.write(`usage: probe.mjs <${Object.keys(commands).join('|')}> ...\n`);
  process.exit(2);
}
try {
  await command(...args);
  process.exit(0);
} catch (error) {
  process.stderr.write(`probe ${name}: ${error?.message ?? error}\n`);
  process.exit(1);
}
