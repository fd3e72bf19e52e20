import test from 'ava';
import { startPrometheus } from '../helpers/prometheus-server.ts';
import { createTemporaryRoot } from '../helpers/temporary-root.ts';
import { envoyPrometheusText, liveEnvoyStats, startFakeEnvoy, startHttpServer } from './fakes.ts';
import { httpCall, startStatusServer } from './status-fixture.ts';

test('a real Prometheus scrapes the merged metrics, as text and as OpenMetrics, with series from all three sources and no scrape error', async (t) => {
  const envoy = await startFakeEnvoy({ stats: { ...liveEnvoyStats }, prometheus: envoyPrometheusText(3) });
  t.teardown(() => envoy.close());
  // An application that speaks text only, whatever it is asked for.
  const textApp = await startHttpServer((_request, response) => {
    response
      .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
      .end(
        '# TYPE app_requests_total counter\napp_requests_total{path="/"} 5\n# TYPE envoy_server_live gauge\nenvoy_server_live 3\nnot an exposition line\n',
      );
  });
  t.teardown(() => textApp.close());
  // An application that answers OpenMetrics when the scraper accepts it.
  const accepts: string[] = [];
  const openMetricsApp = await startHttpServer((request, response) => {
    accepts.push(request.headers.accept ?? '');
    if (!request.headers.accept?.includes('application/openmetrics-text')) {
      return void response.writeHead(200, { 'content-type': 'text/plain' }).end('app_orders_total 9\n');
    }
    response
      .writeHead(200, { 'content-type': 'application/openmetrics-text; version=1.0.0; charset=utf-8' })
      .end(
        '# TYPE app_orders counter\napp_orders_total{shop="1"} 9 # {trace_id="abc"} 1\napp_orders_created{shop="1"} 1700000000\n# TYPE envoy_server_live gauge\nenvoy_server_live 3\n# TYPE app_temperature_celsius gauge\n# UNIT app_temperature_celsius celsius\napp_temperature_celsius 21.5\n# EOF\n',
      );
  });
  t.teardown(() => openMetricsApp.close());
  const textAgent = await startStatusServer(t, envoy.port, {
    applicationScrapeTargets: [{ port: textApp.port, path: '/metrics' }],
  });
  const openMetricsAgent = await startStatusServer(t, envoy.port, {
    applicationScrapeTargets: [{ port: openMetricsApp.port, path: '/metrics' }],
  });

  const root = await createTemporaryRoot('pa-prom-');
  t.teardown(() => root.remove());
  const prometheus = await startPrometheus(t, root, [
    { job: 'text', port: textAgent.server.port },
    { job: 'openmetrics', port: openMetricsAgent.server.port },
  ]);
  for (const target of await prometheus.scrapedTargets()) {
    t.is(target.health, 'up', `${target.labels.job}: ${target.lastError}`);
    t.is(target.lastError, '', target.labels.job);
  }
  const expectSeries = async (expression: string, value: string) => {
    t.is(await prometheus.firstValue(expression), value, expression);
  };
  for (const job of ['text', 'openmetrics']) {
    await expectSeries(`up{job="${job}"}`, '1');
    await expectSeries(`envoy_cluster_upstream_cx_total{job="${job}",cluster_name=~".*reviews-2.*"}`, '14');
    await expectSeries(`envoy_server_live{job="${job}"}`, '1');
    await expectSeries(`count(istio_agent_scrapes_total{job="${job}"})`, '1');
  }
  await expectSeries('app_requests_total{job="text",path="/"}', '5');
  await expectSeries('app_orders_total{job="openmetrics",shop="1"}', '9');
  await expectSeries('app_temperature_celsius{job="openmetrics"}', '21.5');

  // Prometheus negotiated OpenMetrics with the second agent and got it; the first answered text.
  const prometheusAccept = accepts.find((accept) => accept.includes('openmetrics')) ?? '';
  t.regex(prometheusAccept, /application\/openmetrics-text/);
  const asPrometheus = { accept: prometheusAccept };
  t.regex(
    String(
      (await httpCall(`${openMetricsAgent.baseUrl}/stats/prometheus`, { headers: asPrometheus })).headers[
        'content-type'
      ],
    ),
    /^application\/openmetrics-text; version=1\.0\.0/,
  );
  t.regex(
    String(
      (await httpCall(`${textAgent.baseUrl}/stats/prometheus`, { headers: asPrometheus })).headers[
        'content-type'
      ],
    ),
    /^text\/plain; version=0\.0\.4/,
  );

  // No sample was rejected as a duplicate or out of order: the merged output had no family twice.
  const own = (await httpCall(`${prometheus.api}/metrics`)).body;
  for (const counter of [
    'prometheus_target_scrapes_sample_duplicate_timestamp_total',
    'prometheus_target_scrapes_sample_out_of_order_total',
    'prometheus_target_scrapes_sample_out_of_bounds_total',
  ]) {
    t.regex(own, new RegExp(`^${counter} 0$`, 'm'), counter);
  }
});
