/**
 * Cost of the merged `/stats/prometheus`: one merged scrape (agent + Envoy + a 1 MB application) against
 * fetching Envoy's `/stats/prometheus` directly, in the same run (target: ratio ≤ 1.3), and the agent's peak
 * RSS growth during 10 concurrent merged scrapes (target ≤ 30 MB). The status server runs in a child
 * process whose RSS is sampled from /proc.
 *
 *   npm run bench:metrics -- [--envoy http://127.0.0.1:15000] [--envoy-metrics http://127.0.0.1:15090]
 *                            [--application-port N] [--rounds 15] [--render cached|streamed] [--validate-envoy]
 *                            [--standin-series 100000]
 *
 * Without --envoy, a fake Envoy serving ~100k series (~10 MB) and a 1 MB application are started. With
 * --standin-series N, Envoy is the Envoy stand-in run by the real agent in a full pod
 * (scripts/bench/pod-process.ts) with N extra `istio_*` series (ENVOY_STANDIN_EXTRA_PROMETHEUS_SERIES), read
 * through its Prometheus listener as the agent reads it. When Envoy is given or the stand-in but no
 * application port, the 1 MB application is started alone.
 */
import { Agent, get } from 'node:http';
import { parseArgs } from 'node:util';
import { cpuMilliseconds, median, residentBytes, startHelper } from './processes.ts';

const { values } = parseArgs({
  options: {
    envoy: { type: 'string' },
    'envoy-metrics': { type: 'string' },
    'application-port': { type: 'string' },
    rounds: { type: 'string', default: '15' },
    render: { type: 'string', default: 'cached' },
    clusters: { type: 'string', default: '1000' },
    'validate-envoy': { type: 'boolean', default: false },
    concurrency: { type: 'string', default: '10' },
    'standin-series': { type: 'string' },
  },
});

const helpers: { process: { kill(): void } }[] = [];
let sourcesPid: number | undefined;
let envoyAdmin = values.envoy;
let envoyMetrics = values['envoy-metrics'];
let applicationPort = values['application-port'];
if (values['standin-series'] !== undefined) {
  const pod = await startHelper<{ adminUrl: string; envoyPrometheusUrl: string }>('pod-process.ts', [
    '--envoy-prometheus-series',
    values['standin-series'],
  ]);
  helpers.push(pod);
  envoyAdmin = pod.ready.adminUrl;
  envoyMetrics ??= pod.ready.envoyPrometheusUrl;
  console.log(`Envoy stand-in with ${values['standin-series']} extra series, run by the agent in a pod`);
}
if (envoyAdmin !== undefined && applicationPort === undefined) {
  // Only its application is used; the fake Envoy stays idle.
  const sources = await startHelper<{ applicationPort: number; applicationBytes: number }>(
    'fake-sources.ts',
    ['--clusters', '1'],
  );
  helpers.push(sources);
  applicationPort = String(sources.ready.applicationPort);
  console.log(`application: ${(sources.ready.applicationBytes / 1e6).toFixed(1)} MB`);
}
if (envoyAdmin === undefined) {
  const sources = await startHelper<{
    envoyPort: number;
    applicationPort: number;
    envoyBytes: number;
    applicationBytes: number;
  }>('fake-sources.ts', ['--clusters', values.clusters, '--render', values.render]);
  helpers.push(sources);
  sourcesPid = sources.process.pid;
  envoyAdmin = `http://127.0.0.1:${sources.ready.envoyPort}`;
  applicationPort ??= String(sources.ready.applicationPort);
  console.log(
    `fake Envoy: ${(sources.ready.envoyBytes / 1e6).toFixed(1)} MB (${values.render}); application: ${(sources.ready.applicationBytes / 1e6).toFixed(1)} MB`,
  );
}
envoyMetrics ??= envoyAdmin;
const agent = await startHelper<{ port: number; pid: number }>('status-server-process.ts', [
  '--admin',
  envoyAdmin,
  '--envoy-metrics',
  envoyMetrics,
  ...(applicationPort ? ['--application-port', applicationPort] : []),
  ...(values['validate-envoy'] ? ['--validate-envoy'] : []),
]);
helpers.push(agent);

const keepAlive = new Agent({ keepAlive: true, maxSockets: 64 });
/** GETs a URL and reads the whole body; resolves with the milliseconds it took and the bytes. */
function fetchTimed(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ milliseconds: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    get(url, { agent: keepAlive, headers }, (response) => {
      let bytes = 0;
      response.on('data', (chunk: Buffer) => (bytes += chunk.length));
      response.on('end', () => resolve({ milliseconds: performance.now() - started, bytes }));
      response.on('error', reject);
    }).on('error', reject);
  });
}

const direct = `${envoyMetrics}/stats/prometheus`;
const merged = `http://127.0.0.1:${agent.ready.port}/stats/prometheus`;
const scrapeHeaders = { accept: 'text/plain;version=0.0.4', 'x-prometheus-scrape-timeout-seconds': '10' };
for (let warmUp = 0; warmUp < 3; warmUp++) {
  await fetchTimed(direct);
  await fetchTimed(merged, scrapeHeaders);
}

const directTimes: number[] = [];
const mergedTimes: number[] = [];
let directBytes = 0;
let mergedBytes = 0;
// CPU time is measured too: unlike wall time it does not depend on what else the machine is running.
let agentCpu = 0;
let sourceCpu = 0;
for (let round = 0; round < Number(values.rounds); round++) {
  const sourceBefore = sourcesPid === undefined ? 0 : await cpuMilliseconds(sourcesPid);
  const a = await fetchTimed(direct);
  if (sourcesPid !== undefined) sourceCpu += (await cpuMilliseconds(sourcesPid)) - sourceBefore;
  const agentBefore = await cpuMilliseconds(agent.ready.pid);
  const b = await fetchTimed(merged, scrapeHeaders);
  agentCpu += (await cpuMilliseconds(agent.ready.pid)) - agentBefore;
  directTimes.push(a.milliseconds);
  mergedTimes.push(b.milliseconds);
  directBytes = a.bytes;
  mergedBytes = b.bytes;
}
const rounds = Number(values.rounds);
const ratio = median(mergedTimes) / median(directTimes);

// Peak RSS growth of the agent while `concurrency` merged scrapes run at once (three bursts, the worst kept).
const concurrency = Number(values.concurrency);
let worstGrowth = 0;
let baseline = 0;
for (let burst = 0; burst < 3; burst++) {
  baseline = await residentBytes(agent.ready.pid);
  let peak = baseline;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await residentBytes(agent.ready.pid));
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  })();
  await Promise.all(Array.from({ length: concurrency }, () => fetchTimed(merged, scrapeHeaders)));
  sampling = false;
  await sampler;
  worstGrowth = Math.max(worstGrowth, peak - baseline);
}

const result = {
  envoyEndpoint: direct,
  directBytes,
  mergedBytes,
  directMedianMilliseconds: Number(median(directTimes).toFixed(1)),
  mergedMedianMilliseconds: Number(median(mergedTimes).toFixed(1)),
  ratio: Number(ratio.toFixed(2)),
  ratioTarget: 1.3,
  agentCpuMillisecondsPerMergedScrape: Number((agentCpu / rounds).toFixed(1)),
  ...(sourcesPid === undefined
    ? {}
    : { fakeEnvoyCpuMillisecondsPerDirectFetch: Number((sourceCpu / rounds).toFixed(1)) }),
  agentBaselineRssMegabytes: Number((baseline / 1e6).toFixed(1)),
  peakRssGrowthMegabytes: Number((worstGrowth / 1e6).toFixed(1)),
  rssGrowthTargetMegabytes: 30,
  concurrentScrapes: concurrency,
  validateEnvoyLines: values['validate-envoy'],
};
console.log(
  `one merged scrape ${result.mergedMedianMilliseconds} ms (${(mergedBytes / 1e6).toFixed(1)} MB) / Envoy directly ${result.directMedianMilliseconds} ms (${(directBytes / 1e6).toFixed(1)} MB) = ${result.ratio} (target ≤ 1.3: ${ratio <= 1.3 ? 'met' : 'missed'})`,
);
console.log(
  `agent CPU per merged scrape: ${result.agentCpuMillisecondsPerMergedScrape} ms${sourcesPid === undefined ? '' : ` (the fake Envoy's CPU per direct fetch: ${(sourceCpu / rounds).toFixed(1)} ms)`}`,
);
console.log(
  `peak RSS growth during ${concurrency} concurrent merged scrapes: ${result.peakRssGrowthMegabytes} MB over ${result.agentBaselineRssMegabytes} MB (target ≤ 30 MB: ${worstGrowth <= 30e6 ? 'met' : 'missed'})`,
);
console.log(JSON.stringify(result));
keepAlive.destroy();
for (const helper of helpers) helper.process.kill();
