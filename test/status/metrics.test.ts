import { request } from 'node:http';
import test from 'ava';
import { execa } from 'execa';
import { Gauge } from 'prom-client';
import { freePort } from '../helpers/ports.ts';
import {
  envoyPrometheusText,
  liveEnvoyStats,
  type StartedServer,
  startFakeEnvoy,
  startHttpServer,
} from './fakes.ts';
import { httpCall, nonLoopbackAddress, sampleValue, startStatusServer } from './status-fixture.ts';

const openMetricsAccept =
  'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

const textApplication = [
  '# HELP app_requests_total Requests served.',
  '# TYPE app_requests_total counter',
  'app_requests_total{path="/"} 5',
  'app_requests_total{path="/cart"} 2',
  '# HELP envoy_server_live An application family clashing with Envoy’s.',
  '# TYPE envoy_server_live gauge',
  'envoy_server_live 7',
  '# TYPE istio_agent_scrapes_total counter',
  'istio_agent_scrapes_total 1000',
  'this line is not an exposition line',
  '# TYPE app_in_flight gauge',
  'app_in_flight 3',
  '',
].join('\n');

const openMetricsApplication = [
  '# HELP app_orders Orders "placed".',
  '# TYPE app_orders counter',
  'app_orders_total{shop="1"} 9 # {trace_id="4bf92f3577b34da6"} 1 1700000000.5',
  'app_orders_created{shop="1"} 1700000000',
  '# TYPE app_queue_seconds histogram',
  '# UNIT app_queue_seconds seconds',
  'app_queue_seconds_bucket{le="0.1"} 1',
  'app_queue_seconds_bucket{le="+Inf"} 2',
  'app_queue_seconds_sum 0.3',
  'app_queue_seconds_count 2',
  '# EOF',
  '',
].join('\n');

/** A fake application serving `body` with `contentType`, recording the headers of each scrape. */
async function startApplication(
  t: { teardown(fn: () => Promise<void>): void },
  contentType: string,
  body: string | Buffer,
): Promise<StartedServer & { readonly scrapes: Record<string, string | string[] | undefined>[] }> {
  const scrapes: Record<string, string | string[] | undefined>[] = [];
  const server = await startHttpServer((incoming, response) => {
    scrapes.push(incoming.headers);
    response.writeHead(200, { 'content-type': contentType }).end(body);
  });
  t.teardown(() => server.close());
  return { ...server, scrapes };
}

async function startEnvoy(t: { teardown(fn: () => Promise<void>): void }, clusters = 2) {
  const envoy = await startFakeEnvoy({
    stats: { ...liveEnvoyStats },
    prometheus: envoyPrometheusText(clusters),
  });
  t.teardown(() => envoy.close());
  return envoy;
}

async function promtoolCheck(exposition: string): Promise<{ exitCode: number; output: string }> {
  const result = await execa('promtool', ['check', 'metrics'], {
    input: exposition,
    reject: false,
    all: true,
  });
  return { exitCode: result.exitCode ?? -1, output: result.all ?? '' };
}

test('the merged text exposition holds the agent, Envoy and the application, and promtool accepts it', async (t) => {
  const envoy = await startEnvoy(t);
  const textApp = await startApplication(t, 'text/plain; version=0.0.4', textApplication);
  const openMetricsApp = await startApplication(
    t,
    'application/openmetrics-text; version=1.0.0',
    openMetricsApplication,
  );
  const { baseUrl, logs } = await startStatusServer(t, envoy.port, {
    applicationScrapeTargets: [
      { port: textApp.port, path: '/metrics' },
      { port: openMetricsApp.port, path: '/stats' },
    ],
  });
  const answer = await httpCall(`${baseUrl}/stats/prometheus`, {
    headers: { accept: 'text/plain;version=0.0.4' },
  });
  t.is(answer.status, 200);
  t.is(answer.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  const body = answer.body;
  t.is(sampleValue(body, 'istio_agent_scrapes_total'), 1, 'the agent’s family, not the application’s copy');
  t.is(sampleValue(body, 'envoy_server_live{}'), 1, 'Envoy’s family, not the application’s');
  t.is(sampleValue(body, 'app_requests_total{path="/cart"}'), 2);
  t.is(sampleValue(body, 'app_in_flight'), 3);
  t.is(sampleValue(body, 'app_orders_total{shop="1"}'), 9, 'the OpenMetrics application converted to text');
  t.false(body.includes('# EOF'));
  t.false(body.includes('app_orders_created'));
  t.false(body.includes('not an exposition line'));
  t.is(body.match(/^# TYPE envoy_server_live /gm)?.length, 1);
  t.is(body.match(/^# TYPE istio_agent_scrapes_total /gm)?.length, 1);
  const checked = await promtoolCheck(body);
  t.not(checked.exitCode, 1, checked.output);
  t.notRegex(checked.output, /error|parsing/i);
  t.regex(logs.join('\n'), /left out 1 malformed lines of http:\/\/localhost:\d+\/metrics metrics/);
  t.regex(
    logs.join('\n'),
    /left out 2 metric families of http:\/\/localhost:\d+\/metrics whose names an earlier source already uses \(envoy_server_live, istio_agent_scrapes_total\)/,
  );

  const next = (await httpCall(`${baseUrl}/metrics`)).body;
  t.is(sampleValue(next, 'istio_agent_scrapes_total'), 2, '/metrics is the same merged endpoint');
  t.is(sampleValue(next, 'istio_agent_scrape_malformed_lines_total{type="application"}'), 1);
  t.is(sampleValue(next, 'istio_agent_scrape_conflicting_families_total{type="application"}'), 2);
  t.is(sampleValue(next, 'istio_agent_scrape_failures_total{type="application"}'), 0);
  t.is(sampleValue(next, 'istio_agent_scrape_failures_total{type="envoy"}'), 0);
});

test('content negotiation: an OpenMetrics application answering an OpenMetrics scraper gives OpenMetrics with one # EOF last', async (t) => {
  const envoy = await startEnvoy(t);
  const textApp = await startApplication(t, 'text/plain; version=0.0.4', textApplication);
  const openMetricsApp = await startApplication(
    t,
    'application/openmetrics-text; version=1.0.0',
    openMetricsApplication,
  );
  const { baseUrl } = await startStatusServer(t, envoy.port, {
    applicationScrapeTargets: [
      { port: openMetricsApp.port, path: '/metrics' },
      { port: textApp.port, path: '/metrics' },
    ],
  });
  const answer = await httpCall(`${baseUrl}/stats/prometheus`, { headers: { accept: openMetricsAccept } });
  t.is(answer.headers['content-type'], 'application/openmetrics-text; version=1.0.0; charset=utf-8');
  t.true(answer.body.endsWith('\n# EOF\n'));
  t.is(answer.body.match(/# EOF/g)?.length, 1);
  t.false(/\n\n/.test(answer.body), 'no blank lines in OpenMetrics');
  t.regex(answer.body, /^# TYPE envoy_cluster_upstream_cx counter$/m, 'Envoy counters named without _total');
  t.regex(answer.body, /^app_orders_total\{shop="1"\} 9 # \{trace_id="4bf92f3577b34da6"\} 1 1700000000\.5$/m);
  t.regex(answer.body, /^# UNIT app_queue_seconds seconds$/m);
  t.regex(
    openMetricsApp.scrapes[0]?.accept as string,
    /openmetrics/,
    'the scraper’s Accept reaches the application',
  );

  const onlyText = await httpCall(`${baseUrl}/stats/prometheus`, { headers: { accept: 'text/plain' } });
  t.is(onlyText.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
  const onlyOpenMetrics = await httpCall(`${baseUrl}/stats/prometheus`, {
    headers: { accept: 'application/openmetrics-text; version=0.0.1' },
  });
  t.is(onlyOpenMetrics.headers['content-type'], 'application/openmetrics-text; version=0.0.1; charset=utf-8');
  t.true(onlyOpenMetrics.body.endsWith('\n# EOF\n'));
  const noAccept = await httpCall(`${baseUrl}/stats/prometheus`);
  t.is(noAccept.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
});

test('without an OpenMetrics application an OpenMetrics-first scraper gets text, as Istio answers', async (t) => {
  const envoy = await startEnvoy(t);
  const textApp = await startApplication(t, 'text/plain; version=0.0.4', textApplication);
  const { baseUrl } = await startStatusServer(t, envoy.port, {
    applicationScrapeTargets: [{ port: textApp.port, path: '/metrics' }],
  });
  const answer = await httpCall(`${baseUrl}/stats/prometheus`, { headers: { accept: openMetricsAccept } });
  t.is(answer.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
});

// Serial: it measures time, so it runs before this file's heavy tests share the event loop with it.
test.serial(
  'failing sources are skipped and counted: a slow application past the scrape timeout, one that is down, and a broken agent registry',
  async (t) => {
    const envoy = await startEnvoy(t);
    const stalled: import('node:http').ServerResponse[] = [];
    const slow = await startHttpServer((_incoming, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' });
      response.write('slow_first 1\n');
      stalled.push(response); // never finished
    });
    t.teardown(() => slow.close());
    const downPort = await freePort();
    const fine = await startApplication(t, 'text/plain', 'fine_metric 1\n');
    const { baseUrl, registry, logs } = await startStatusServer(t, envoy.port, {
      applicationScrapeTargets: [
        { port: slow.port, path: '/metrics' },
        { port: downPort, path: '/metrics' },
        { port: fine.port, path: '/metrics' },
      ],
    });
    const started = Date.now();
    const answer = await httpCall(`${baseUrl}/stats/prometheus`, {
      headers: { 'x-prometheus-scrape-timeout-seconds': '4' },
    });
    const elapsed = Date.now() - started;
    t.is(answer.status, 200);
    // The sources get 90% of the scraper's timeout, so the answer arrives before the scraper gives up.
    t.true(elapsed >= 3600 && elapsed < 4000, `answered within the scraper's timeout (${elapsed} ms)`);
    t.is(sampleValue(answer.body, 'slow_first'), 1, 'what the slow source sent before the deadline stays');
    t.is(sampleValue(answer.body, 'envoy_server_live{}'), 1);
    t.is(sampleValue(answer.body, 'fine_metric'), 1, 'a later source still comes');
    const failures = logs.filter((line) =>
      line.startsWith('error default failed scraping application metrics'),
    );
    t.is(failures.length, 2, failures.join('\n'));
    t.true(failures.some((line) => /timed out after 4 s/.test(line)));

    // An agent registry that cannot be collected: skipped and counted too.
    new Gauge({
      name: 'istio_agent_broken',
      help: 'A collector that fails.',
      registers: [registry],
      collect() {
        throw new Error('collector failed');
      },
    });
    const second = await httpCall(`${baseUrl}/stats/prometheus`, {
      headers: { 'x-prometheus-scrape-timeout-seconds': '0.5' },
    });
    t.is(sampleValue(second.body, 'envoy_server_live{}'), 1);
    registry.removeSingleMetric('istio_agent_broken');
    const third = (
      await httpCall(`${baseUrl}/stats/prometheus`, {
        headers: { 'x-prometheus-scrape-timeout-seconds': '0.5' },
      })
    ).body;
    t.is(sampleValue(third, 'istio_agent_scrape_failures_total{type="application"}'), 4);
    t.is(sampleValue(third, 'istio_agent_scrape_failures_total{type="agent"}'), 1);
    t.is(sampleValue(third, 'istio_agent_scrapes_total'), 3);
    for (const response of stalled) response.destroy();
  },
);

test('an application body over 10 MiB is cut at the limit and counted; the response stays valid', async (t) => {
  const envoy = await startEnvoy(t);
  const line = (index: number) => `big_family{index="${index}",padding="${'x'.repeat(60)}"} ${index}\n`;
  const lines: string[] = ['# TYPE big_family gauge\n'];
  let size = lines[0]?.length ?? 0;
  for (let index = 0; size < 11 * 1024 * 1024; index++) {
    lines.push(line(index));
    size += line(index).length;
  }
  const big = await startApplication(t, 'text/plain', lines.join(''));
  const after = await startApplication(t, 'text/plain', 'after_big 1\n');
  const { baseUrl } = await startStatusServer(t, envoy.port, {
    applicationScrapeTargets: [
      { port: big.port, path: '/metrics' },
      { port: after.port, path: '/metrics' },
    ],
  });
  const answer = await httpCall(`${baseUrl}/stats/prometheus`);
  const bigLines = answer.body.split('\n').filter((text) => text.startsWith('big_family{'));
  t.true(bigLines.length > 100_000, `${bigLines.length} lines kept`);
  t.true(bigLines.length < lines.length - 1, 'the lines past 10 MiB are left out');
  t.regex(bigLines.at(-1) ?? '', / \d+$/, 'cut at a line boundary');
  t.is(sampleValue(answer.body, 'after_big'), 1);
  const next = (await httpCall(`${baseUrl}/stats/prometheus`)).body;
  t.is(sampleValue(next, 'istio_agent_scrape_failures_total{type="application"}'), 1);
});

test('Envoy failing is counted as an envoy failure and the rest is served', async (t) => {
  const envoy = await startEnvoy(t);
  await envoy.close();
  const app = await startApplication(t, 'text/plain', 'app_up 1\n');
  const { baseUrl } = await startStatusServer(t, envoy.port, {
    applicationScrapeTargets: [{ port: app.port, path: '/metrics' }],
  });
  const first = await httpCall(`${baseUrl}/stats/prometheus`);
  t.is(first.status, 200);
  t.is(sampleValue(first.body, 'app_up'), 1);
  const second = (await httpCall(`${baseUrl}/stats/prometheus`)).body;
  t.is(sampleValue(second, 'istio_agent_scrape_failures_total{type="envoy"}'), 1);
});

test('the query string reaches Envoy and Envoy is asked for text', async (t) => {
  const envoy = await startEnvoy(t);
  const seen: string[] = [];
  envoy.server.prependListener('request', (incoming) => {
    if (incoming.url?.startsWith('/stats/prometheus'))
      seen.push(`${incoming.url} ${incoming.headers.accept}`);
  });
  const { baseUrl } = await startStatusServer(t, envoy.port);
  await httpCall(`${baseUrl}/stats/prometheus?usedonly&filter=cluster`, {
    headers: { accept: openMetricsAccept },
  });
  t.deepEqual(seen, ['/stats/prometheus?usedonly&filter=cluster text/plain; version=0.0.4']);
});

test('the merge streams: the scraper reads Envoy’s first lines before Envoy finished its body', async (t) => {
  let release: (() => void) | undefined;
  const envoy = await startHttpServer((incoming, response) => {
    if (!incoming.url?.startsWith('/stats/prometheus')) return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'text/plain' });
    response.write(`# TYPE early gauge\n${'early{a="1"} 1\n'.repeat(20_000)}`);
    release = () => response.end('# TYPE late gauge\nlate 2\n');
  });
  t.teardown(() => envoy.close());
  const { baseUrl } = await startStatusServer(t, envoy.port);
  const body = await new Promise<string>((resolve, reject) => {
    const outgoing = request(`${baseUrl}/stats/prometheus`, (response) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        text += chunk;
        // Envoy is still holding its last line back: this can only be read if the agent streamed.
        if (text.includes('early{a="1"} 1\n') && release) {
          release();
          release = undefined;
        }
      });
      response.on('end', () => resolve(text));
      response.on('error', reject);
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
  t.is(sampleValue(body, 'late'), 2);
});

test('METRICS_LOCALHOST_ACCESS_ONLY answers 403 to callers that are not on loopback', async (t) => {
  const envoy = await startEnvoy(t);
  const { server } = await startStatusServer(t, envoy.port, { metricsLocalhostAccessOnly: true });
  const local = await httpCall(`http://127.0.0.1:${server.port}/stats/prometheus`);
  t.is(local.status, 200);
  const address = nonLoopbackAddress();
  if (address === undefined) {
    t.log('this machine has no non-loopback IPv4 address: the remote-caller assertion cannot be made here');
    return;
  }
  for (const path of ['/stats/prometheus', '/metrics']) {
    const remote = await httpCall(`http://${address}:${server.port}${path}`);
    t.is(remote.status, 403, path);
    t.is(remote.body, 'Only requests from localhost are allowed\n');
  }
  t.is(
    (await httpCall(`http://${address}:${server.port}/healthz/ready`)).status,
    200,
    'readiness stays open',
  );
});

test('the status server listens on every address, IPv6 loopback included; unknown paths are 404', async (t) => {
  const envoy = await startEnvoy(t);
  const { server } = await startStatusServer(t, envoy.port);
  const unknown = await httpCall(`http://127.0.0.1:${server.port}/nothing-here`);
  t.is(unknown.status, 404);
  const answer = await httpCall(`http://[::1]:${server.port}/app-health/none/livez`).catch(
    (error: Error) => error,
  );
  if (answer instanceof Error) t.log(`no IPv6 loopback on this machine (${answer.message})`);
  else t.is(answer.status, 400);
});
