// Health probes for the local stack. Each probe makes one real request in the server's own protocol
// and prints the server's version on success; exit code 1 (with the reason on stderr) otherwise.
// Dependency-free on purpose: the stack must be checkable before `pnpm install` has run.
import net from 'node:net';

const TIMEOUT_MS = 3000;

function tcpExchange(port, request, isComplete) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let buffer = Buffer.alloc(0);
    socket.setTimeout(TIMEOUT_MS, () => socket.destroy(new Error(`timeout after ${TIMEOUT_MS} ms`)));
    socket.on('connect', () => socket.write(request));
    socket.on('data', (chunk) => {
      buffer = Buffer.concat([buffer, chunk]);
      if (isComplete(buffer)) {
        socket.end();
        resolve(buffer);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error('connection closed before a full answer')));
  });
}

async function httpJson(url) {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return { res, body: await res.json().catch(() => null) };
}

const probes = {
  // Kafka ApiVersions v0 request: a broker that answers it with error code 0 is serving clients.
  async kafka(port) {
    const clientId = Buffer.from('stream-stack-probe');
    const body = Buffer.alloc(2 + 2 + 4 + 2 + clientId.length);
    body.writeInt16BE(18, 0);
    body.writeInt16BE(0, 2);
    body.writeInt32BE(7, 4);
    body.writeInt16BE(clientId.length, 8);
    clientId.copy(body, 10);
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length);
    const answer = await tcpExchange(port, Buffer.concat([size, body]), (b) => b.length >= 4 && b.length >= 4 + b.readInt32BE(0));
    const correlation = answer.readInt32BE(4);
    const errorCode = answer.readInt16BE(8);
    if (correlation !== 7 || errorCode !== 0) throw new Error(`ApiVersions error code ${errorCode}`);
    return process.env.STACK_KAFKA_VERSION ?? 'unknown';
  },
  async redis(port) {
    const answer = (await tcpExchange(port, 'PING\r\nINFO server\r\n', (b) => b.includes('+PONG') && /redis_version:[^\r]+\r\n/.test(b.toString()))).toString();
    return /redis_version:([^\r]+)/.exec(answer)[1];
  },
  async influxdb(port) {
    const res = await fetch(`http://127.0.0.1:${port}/ping`, { signal: AbortSignal.timeout(TIMEOUT_MS) });
    if (res.status !== 204) throw new Error(`/ping answered ${res.status}`);
    // Flux must answer too: the clients we use talk to /api/v2/query, not InfluxQL.
    const flux = await fetch(`http://127.0.0.1:${port}/api/v2/query`, {
      method: 'POST',
      signal: AbortSignal.timeout(TIMEOUT_MS),
      headers: { 'content-type': 'application/vnd.flux', accept: 'application/csv' },
      body: 'buckets() |> limit(n: 1)',
    });
    if (!flux.ok) throw new Error(`Flux query answered ${flux.status}: ${(await flux.text()).slice(0, 200)}`);
    return res.headers.get('x-influxdb-version') ?? 'unknown';
  },
  async elasticsearch(port) {
    const { res } = await httpJson(`http://127.0.0.1:${port}/_cluster/health?wait_for_status=yellow&timeout=2s`);
    if (res.headers.get('x-elastic-product') !== 'Elasticsearch') throw new Error('missing X-Elastic-Product header');
    const { body } = await httpJson(`http://127.0.0.1:${port}/_nodes/_local?filter_path=nodes.*.version`);
    return Object.values(body.nodes)[0].version;
  },
};

const [name, port] = process.argv.slice(2);
const probe = probes[name];
if (!probe || !port) {
  console.error(`usage: probe.mjs <${Object.keys(probes).join('|')}> <port>`);
  process.exit(2);
}
try {
  console.log(await probe(Number(port)));
} catch (error) {
  console.error(`${name} on 127.0.0.1:${port}: ${error.message}`);
  process.exit(1);
}
