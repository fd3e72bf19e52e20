/**
 * Fake sources for the status server benchmarks, in a process of their own so that serving them does not
 * share a CPU budget with the agent being measured: an Envoy admin API (readiness stats and an Envoy-like
 * `/stats/prometheus`) and an application's `/metrics`. Prints `{"envoyPort","applicationPort"}` when
 * listening.
 *
 *   node scripts/bench/fake-sources.ts [--clusters 1000] [--application-bytes 1048576] [--render cached|streamed]
 *
 * `cached` serves one rendering from memory (the least work a source can do: the hardest case for the
 * merge's relative cost); `streamed` renders on every request and writes family by family as it goes, as
 * Envoy writes a large stats response in chunks.
 */
import { parseArgs } from 'node:util';
import {
  envoyPrometheusFamilies,
  envoyPrometheusText,
  liveEnvoyStats,
  startFakeEnvoy,
  startHttpServer,
} from '../../test/status/fakes.ts';

const { values } = parseArgs({
  options: {
    clusters: { type: 'string', default: '1000' },
    'application-bytes': { type: 'string', default: String(1024 * 1024) },
    render: { type: 'string', default: 'cached' },
  },
});
const clusters = Number(values.clusters);
const render = values.render === 'streamed';
if (values.render !== 'cached' && !render) throw new Error('--render is cached or streamed');
const cached = Buffer.from(envoyPrometheusText(clusters));

const envoy = await startFakeEnvoy({
  stats: { ...liveEnvoyStats },
  prometheus: render ? () => envoyPrometheusFamilies(clusters) : () => cached,
});

const applicationBody = (() => {
  const target = Number(values['application-bytes']);
  const parts: string[] = [];
  let size = 0;
  for (let family = 0; size < target; family++) {
    const header = `# HELP app_requests_${family}_total Requests by path.\n# TYPE app_requests_${family}_total counter\n`;
    parts.push(header);
    size += header.length;
    for (let path = 0; path < 100 && size < target; path++) {
      const line = `app_requests_${family}_total{path="/api/v1/items/${path}",method="GET",code="200"} ${path * 13}\n`;
      parts.push(line);
      size += line.length;
    }
  }
  return Buffer.from(parts.join(''));
})();
const application = await startHttpServer((_request, response) => {
  response
    .writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
    .end(applicationBody);
});

process.stdout.write(
  `${JSON.stringify({ envoyPort: envoy.port, applicationPort: application.port, envoyBytes: cached.length, applicationBytes: applicationBody.length })}\n`,
);
