#!/usr/bin/env node
// Added latency and throughput of the XDS proxy: the same ADS client talks to the test istiod directly (TLS,
// the agent's channel factory) and through the proxy (Unix socket → proxy process → TLS), in one run.
// Measured: request/response round trips (small messages), and bulk pushes of small and of 1 MiB responses.
// Usage: npm run bench:xds [-- --round-trips N --small N --large N --runs N]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type ChannelOptions, credentials, type ServerDuplexStream } from '@grpc/grpc-js';
import { createIstiodChannelFactory } from '../../agent/istiod/channel-factory.ts';
import { OpaqueAdsClient, type OpaqueAdsStream, opaqueAdsService } from '../../agent/xds/opaque-ads.ts';
import { TestIstiod } from '../../test/istiod/test-istiod.ts';

const repositoryRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const proxyProcess = path.join(repositoryRoot, 'test/xds/proxy-process.ts');
const { values } = parseArgs({
  options: {
    'round-trips': { type: 'string', default: '2000' },
    small: { type: 'string', default: '20000' },
    large: { type: 'string', default: '300' },
    runs: { type: 'string', default: '3' },
  },
});
const count = (name: keyof typeof values) => {
  const value = Number(values[name]);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`--${name}: ${values[name]} is not a positive integer`);
  return value;
};
const roundTrips = count('round-trips');
const smallCount = count('small');
const largeCount = count('large');
const runs = count('runs');
const smallSize = 1024;
const largeSize = 1024 * 1024;

// The bench's istiod: a request starting with 'P' is answered with one 256-byte response (a round trip);
// 'B' + count + size asks for `count` responses of `size` bytes, pushed as fast as flow control allows.
const answer = Buffer.alloc(256, 0x61);
function serveAds(call: ServerDuplexStream<Buffer, Buffer>): void {
  call.on('error', () => {});
  call.on('data', async (request: Buffer) => {
    if (request[0] === 0x50) {
      call.write(answer);
      return;
    }
    const total = request.readUInt32BE(1);
    const payload = Buffer.alloc(request.readUInt32BE(5), 0x62);
    for (let index = 0; index < total; index += 1) {
      if (!call.write(payload)) await once(call, 'drain');
    }
  });
}

const workspace = await mkdtemp(path.join(tmpdir(), 'bx-'));
const token = 'bench-token';
await writeFile(path.join(workspace, 'accepted-token'), token);
const rootCertFile = path.join(workspace, 'var/run/secrets/istio/root-cert.pem');
const tokenFile = path.join(workspace, 'var/run/secrets/tokens/istio-token');
const istiod = await TestIstiod.start({
  rootCertFile,
  tokenFile: path.join(workspace, 'accepted-token'),
  services: [
    {
      definition: opaqueAdsService,
      implementation: { StreamAggregatedResources: serveAds },
      options: { authenticate: true },
    },
  ],
});
await mkdir(path.dirname(tokenFile), { recursive: true });
await writeFile(tokenFile, token);

// The proxy in its own process, as in the agent.
const proxy = spawn(
  process.execPath,
  [
    proxyProcess,
    JSON.stringify({
      environment: {
        POD_NAMESPACE: 'bench',
        ISTIO_META_CLUSTER_ID: 'Kubernetes',
        PROXY_CONFIG: JSON.stringify({ discoveryAddress: istiod.address }),
      },
    }),
  ],
  { cwd: workspace, stdio: ['ignore', 'pipe', 'pipe'] },
);
let proxyLog = '';
proxy.stderr.on('data', (chunk: Buffer) => {
  proxyLog += chunk.toString();
});
await new Promise<void>((resolve, reject) => {
  proxy.stdout.on('data', (chunk: Buffer) => {
    if (chunk.toString().includes('ready')) resolve();
  });
  proxy.on('exit', (code) => reject(new Error(`the proxy process exited (${code}):\n${proxyLog}`)));
});
const socketPath = path.join(workspace, 'etc/istio/proxy/XDS');

const clientOptions: ChannelOptions = { 'grpc.max_receive_message_length': -1 };
const directFactory = await createIstiodChannelFactory({
  address: istiod.address,
  addressSource: 'bench',
  rootCertFile,
  tokenFile,
  clusterId: 'Kubernetes',
  headers: {},
});
const clients = {
  direct: directFactory.createClient(OpaqueAdsClient, clientOptions),
  'via proxy': new OpaqueAdsClient(`unix:${socketPath}`, credentials.createInsecure(), clientOptions),
};
type Path = keyof typeof clients;

function openStream(client: OpaqueAdsClient): OpaqueAdsStream {
  const stream = client.StreamAggregatedResources();
  stream.on('error', () => {});
  return stream;
}

/** Milliseconds of each of `roundTrips` request → response exchanges on one stream. */
async function measureRoundTrips(client: OpaqueAdsClient): Promise<number[]> {
  const stream = openStream(client);
  const request = Buffer.from('P-round-trip');
  const times: number[] = [];
  // One exchange first, so connection set-up is not measured.
  for (let index = -1; index < roundTrips; index += 1) {
    const started = process.hrtime.bigint();
    stream.write(request);
    await once(stream, 'data');
    if (index >= 0) times.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  stream.cancel();
  return times;
}

/** Seconds to receive `total` responses of `size` bytes, pushed as fast as possible. */
async function measureBulk(client: OpaqueAdsClient, total: number, size: number): Promise<number> {
  const stream = openStream(client);
  stream.write(Buffer.from('P-warm-up'));
  await once(stream, 'data');
  const request = Buffer.alloc(9);
  request[0] = 0x42;
  request.writeUInt32BE(total, 1);
  request.writeUInt32BE(size, 5);
  const started = process.hrtime.bigint();
  let received = 0;
  await new Promise<void>((resolve) => {
    stream.on('data', () => {
      received += 1;
      if (received === total) resolve();
    });
    stream.write(request);
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  stream.cancel();
  return seconds;
}

const median = (numbers: number[]) => {
  const sorted = [...numbers].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};
const percentile = (numbers: number[], fraction: number) => {
  const sorted = [...numbers].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
};

interface Figures {
  p50: number;
  p99: number;
  smallPerSecond: number;
  largeMebibytesPerSecond: number;
}

const results: Record<Path, Figures[]> = { direct: [], 'via proxy': [] };
try {
  for (let run = 0; run < runs; run += 1) {
    // Alternate the order so neither path always runs on a warmer process.
    const order: Path[] = run % 2 === 0 ? ['direct', 'via proxy'] : ['via proxy', 'direct'];
    for (const name of order) {
      const client = clients[name];
      const times = await measureRoundTrips(client);
      const smallSeconds = await measureBulk(client, smallCount, smallSize);
      const largeSeconds = await measureBulk(client, largeCount, largeSize);
      results[name].push({
        p50: median(times),
        p99: percentile(times, 0.99),
        smallPerSecond: smallCount / smallSeconds,
        largeMebibytesPerSecond: (largeCount * largeSize) / (1024 * 1024) / largeSeconds,
      });
    }
  }
} finally {
  for (const client of Object.values(clients)) client.close();
  proxy.kill('SIGTERM');
  await istiod.stop();
  await rm(workspace, { recursive: true, force: true });
}

const summary = (name: Path) => {
  const figures = results[name];
  return {
    p50: median(figures.map((figure) => figure.p50)),
    p99: median(figures.map((figure) => figure.p99)),
    smallPerSecond: median(figures.map((figure) => figure.smallPerSecond)),
    largeMebibytesPerSecond: median(figures.map((figure) => figure.largeMebibytesPerSecond)),
  };
};
const direct = summary('direct');
const proxied = summary('via proxy');
const rows: Array<[string, number, number, number]> = [
  ['round trip p50 (ms)', direct.p50, proxied.p50, 2],
  ['round trip p99 (ms)', direct.p99, proxied.p99, 2],
  [`${smallSize} B responses / s`, direct.smallPerSecond, proxied.smallPerSecond, 0],
  [
    `${largeSize / 1024 / 1024} MiB responses, MiB / s`,
    direct.largeMebibytesPerSecond,
    proxied.largeMebibytesPerSecond,
    1,
  ],
];
console.log(
  `XDS proxy vs direct to the test istiod (median of ${runs} runs; ${roundTrips} round trips, ${smallCount} × ${smallSize} B, ${largeCount} × 1 MiB)`,
);
console.log(
  `${''.padEnd(30)}${'direct'.padStart(12)}${'via proxy'.padStart(12)}${'proxy/direct'.padStart(14)}`,
);
for (const [label, directValue, proxiedValue, digits] of rows) {
  console.log(
    `${label.padEnd(30)}${directValue.toFixed(digits).padStart(12)}${proxiedValue.toFixed(digits).padStart(12)}${(proxiedValue / directValue).toFixed(2).padStart(14)}`,
  );
}
console.log(`added latency per round trip (p50): ${(proxied.p50 - direct.p50).toFixed(3)} ms`);
