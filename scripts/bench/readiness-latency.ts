/**
 * `/healthz/ready` latency at a steady request rate (default 200 requests/s for 10 s), each request on a
 * new connection as the kubelet probes: p50 and p99 (target p99 ≤ 5 ms).
 *
 *   npm run bench:readiness -- [--url http://127.0.0.1:15021/healthz/ready] [--envoy http://127.0.0.1:15000]
 *                              [--rate 200] [--seconds 10] [--standin]
 *
 * With --url the given endpoint is probed (e.g. through Envoy's 15021 listener). With --standin, a full pod
 * is started (scripts/bench/pod-process.ts: the real agent running the Envoy stand-in) and its readiness is
 * probed through the stand-in's 15021 listener, as the kubelet probes it. Otherwise a status server
 * is started in a child process against --envoy's admin API, or against a fake Envoy that is live. The same
 * load is then sent to a do-nothing HTTP server in a child process: the machine's own latency floor, so
 * that a tail caused by a busy machine is told apart from one caused by the agent.
 */
import { get } from 'node:http';
import { parseArgs } from 'node:util';
import { percentile, startHelper } from './processes.ts';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    envoy: { type: 'string' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    standin: { type: 'boolean', default: false },
  },
});

const helpers: { process: { kill(): void } }[] = [];
let url = values.url;
if (url === undefined && values.standin) {
  const pod = await startHelper<{ readinessUrl: string }>('pod-process.ts', []);
  helpers.push(pod);
  url = pod.ready.readinessUrl;
}
if (url === undefined) {
  let admin = values.envoy;
  if (admin === undefined) {
    const sources = await startHelper<{ envoyPort: number }>('fake-sources.ts', ['--clusters', '1']);
    helpers.push(sources);
    admin = `http://127.0.0.1:${sources.ready.envoyPort}`;
  }
  const agent = await startHelper<{ port: number }>('status-server-process.ts', ['--admin', admin]);
  helpers.push(agent);
  url = `http://127.0.0.1:${agent.ready.port}/healthz/ready`;
}

function probe(target: string): Promise<{ milliseconds: number; status: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    get(target, { agent: false }, (response) => {
      response.resume();
      response.on('end', () =>
        resolve({ milliseconds: performance.now() - started, status: response.statusCode ?? 0 }),
      );
    }).on('error', () => resolve({ milliseconds: performance.now() - started, status: 0 }));
  });
}

interface LoadResult {
  readonly url: string;
  readonly requests: number;
  readonly achievedRate: number;
  readonly statuses: Record<string, number>;
  readonly p50Milliseconds: number;
  readonly p99Milliseconds: number;
  readonly maxMilliseconds: number;
  /** Probes sent more than one interval late (the load generator itself was held up). */
  readonly lateStarts: number;
}

async function steadyLoad(target: string): Promise<LoadResult> {
  // Warm-up: the first probes ask Envoy; later ones are answered from what readiness remembered.
  for (let attempt = 0; attempt < 20; attempt++) await probe(target);
  const rate = Number(values.rate);
  const total = Math.round(rate * Number(values.seconds));
  const interval = 1000 / rate;
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let lateStarts = 0;
  const pending: Promise<void>[] = [];
  const begin = performance.now();
  for (let index = 0; index < total; index++) {
    const wait = begin + index * interval - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    else if (wait < -interval) lateStarts++;
    // Open loop: the next probe is sent on time whether or not this one answered.
    pending.push(
      probe(target).then(({ milliseconds, status }) => {
        latencies.push(milliseconds);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }),
    );
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - begin) / 1000;
  latencies.sort((a, b) => a - b);
  return {
    url: target,
    requests: total,
    achievedRate: Number((total / elapsed).toFixed(1)),
    statuses,
    p50Milliseconds: Number(percentile(latencies, 0.5).toFixed(2)),
    p99Milliseconds: Number(percentile(latencies, 0.99).toFixed(2)),
    maxMilliseconds: Number((latencies.at(-1) ?? Number.NaN).toFixed(2)),
    lateStarts,
  };
}

const readiness = await steadyLoad(url);
const floorServer = await startHelper<{ port: number }>('baseline-server.ts', []);
helpers.push(floorServer);
const floor = await steadyLoad(`http://127.0.0.1:${floorServer.ready.port}/`);
console.log(
  `/healthz/ready at ${readiness.achievedRate} requests/s: p50 ${readiness.p50Milliseconds} ms, p99 ${readiness.p99Milliseconds} ms, max ${readiness.maxMilliseconds} ms (target p99 ≤ 5 ms: ${readiness.p99Milliseconds <= 5 ? 'met' : 'missed'}); statuses ${JSON.stringify(readiness.statuses)}`,
);
console.log(
  `a do-nothing HTTP server under the same load on this machine: p50 ${floor.p50Milliseconds} ms, p99 ${floor.p99Milliseconds} ms, max ${floor.maxMilliseconds} ms`,
);
console.log(JSON.stringify({ readiness, floor, p99TargetMilliseconds: 5 }));
for (const helper of helpers) helper.process.kill();
