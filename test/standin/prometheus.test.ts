import { request } from 'node:http';
import test from 'ava';
import { writeBenchmarkSeries } from '../envoy-standin/benchmark-series.ts';
import type { StatsConfig } from '../envoy-standin/bootstrap-model.ts';
import { writePrometheus } from '../envoy-standin/prometheus.ts';
import { StatsStore } from '../envoy-standin/stats.ts';
import { parseStringMatcher } from '../envoy-standin/string-matcher.ts';
import {
  baseBootstrap,
  freePort,
  startStandin,
  temporaryRoot,
  waitForLive,
  writeBootstrap,
} from './harness.ts';

/** Tags and matcher in the shape of Istio's bootstrap (use_all_default_tags: false). */
const istioLikeConfig: StatsConfig = {
  useAllDefaultTags: false,
  tagSpecifiers: [
    { tagName: 'cluster_name', regex: '^cluster\\.((.+?(\\..+?\\.svc\\.cluster\\.local)?)\\.)' },
    {
      tagName: 'listener_address',
      regex: '^listener\\.(((?:[_.[:digit:]]*|[_\\[\\]aAbBcCdDeEfF[:digit:]]*))\\.)',
    },
  ],
  matcher: {
    kind: 'inclusion',
    patterns: [
      parseStringMatcher({ prefix: 'cluster.xds-grpc' }, 'p'),
      parseStringMatcher({ prefix: 'cluster.outbound' }, 'p'),
      parseStringMatcher({ prefix: 'server' }, 'p'),
      parseStringMatcher({ suffix: 'downstream_cx_active' }, 'p'),
    ],
  },
  histogramBuckets: [{ match: parseStringMatcher({ prefix: 'cluster.' }, 'h'), buckets: [1, 10] }],
};

async function render(store: StatsStore, usedOnly: boolean, filter?: RegExp): Promise<string> {
  let text = '';
  await writePrometheus(store, { usedOnly, ...(filter ? { filter } : {}) }, (chunk) => {
    text += chunk;
  });
  return text;
}

test("Prometheus text follows Envoy's format with tags from the bootstrap and its stats matcher", async (t) => {
  const store = new StatsStore({ config: istioLikeConfig });
  store.counter('cluster.xds-grpc.upstream_cx_total').inc(3);
  store.counter('cluster.xds-grpc.upstream_cx_destroy');
  store.counter('cluster.outbound|80||reviews.default.svc.cluster.local.upstream_rq_total').inc();
  store.counter('cluster.inbound|80||.upstream_rq_total').inc(7);
  store.gauge('listener.0.0.0.0_15006.downstream_cx_active').set(2);
  store.gauge('listener.0.0.0.0_15006.downstream_cx_total').set(9);
  store.gauge('server.state').set(0);
  const histogram = store.histogram('cluster.xds-grpc.upstream_rq_time');
  histogram.record(5);
  histogram.record(20);

  t.is(
    await render(store, false),
    [
      '# TYPE envoy_cluster_upstream_cx_destroy counter',
      'envoy_cluster_upstream_cx_destroy{cluster_name="xds-grpc"} 0',
      '',
      '# TYPE envoy_cluster_upstream_cx_total counter',
      'envoy_cluster_upstream_cx_total{cluster_name="xds-grpc"} 3',
      '',
      '# TYPE envoy_cluster_upstream_rq_total counter',
      'envoy_cluster_upstream_rq_total{cluster_name="outbound|80||reviews.default.svc.cluster.local"} 1',
      '',
      '# TYPE envoy_listener_downstream_cx_active gauge',
      'envoy_listener_downstream_cx_active{listener_address="0.0.0.0_15006"} 2',
      '',
      '# TYPE envoy_server_state gauge',
      'envoy_server_state{} 0',
      '',
      '# TYPE envoy_cluster_upstream_rq_time histogram',
      'envoy_cluster_upstream_rq_time_bucket{cluster_name="xds-grpc",le="1"} 0',
      'envoy_cluster_upstream_rq_time_bucket{cluster_name="xds-grpc",le="10"} 1',
      'envoy_cluster_upstream_rq_time_bucket{cluster_name="xds-grpc",le="+Inf"} 2',
      'envoy_cluster_upstream_rq_time_sum{cluster_name="xds-grpc"} 25',
      'envoy_cluster_upstream_rq_time_count{cluster_name="xds-grpc"} 2',
      '',
      '',
    ].join('\n'),
  );
  const used = await render(store, true, /^cluster\.xds-grpc\./);
  t.false(used.includes('upstream_cx_destroy'), 'usedonly hides stats never written');
  t.true(used.includes('envoy_cluster_upstream_cx_total{cluster_name="xds-grpc"} 3'));
  t.false(used.includes('envoy_server_state'), 'filter applies to stat names');
});

test("Envoy's default tags apply unless use_all_default_tags is false", async (t) => {
  const store = new StatsStore({
    config: { ...istioLikeConfig, useAllDefaultTags: true, tagSpecifiers: [], matcher: { kind: 'all' } },
    fixedTags: [['mesh', 'primary']],
  });
  store.counter('http.inbound_8080.downstream_rq_2xx').inc();
  store.counter('cluster.agent.upstream_rq_503').inc();
  const text = await render(store, true);
  t.true(
    text.includes(
      'envoy_http_downstream_rq_xx{envoy_response_code_class="2",envoy_http_conn_manager_prefix="inbound_8080",mesh="primary"} 1',
    ),
    text,
  );
  t.true(
    text.includes(
      'envoy_cluster_upstream_rq{envoy_response_code="503",envoy_cluster_name="agent",mesh="primary"} 1',
    ),
    text,
  );
});

test('benchmark series: exactly N extra series in four istio_* families', async (t) => {
  let text = '';
  await writeBenchmarkSeries(10, undefined, (chunk) => {
    text += chunk;
  });
  const lines = text.split('\n').filter((line) => line !== '');
  t.is(lines.filter((line) => !line.startsWith('#')).length, 10);
  t.deepEqual(
    lines.filter((line) => line.startsWith('# TYPE')),
    [
      '# TYPE istio_requests_total counter',
      '# TYPE istio_request_messages_total counter',
      '# TYPE istio_tcp_connections_opened_total counter',
      '# TYPE istio_tcp_sent_bytes_total counter',
    ],
  );
});

test('/stats/prometheus streams 100k extra series from a running stand-in', async (t) => {
  const root = await temporaryRoot(t);
  const adminPort = await freePort();
  startStandin(t, ['-c', await writeBootstrap(root, baseBootstrap(adminPort)), '--disable-hot-restart'], {
    environment: { ENVOY_STANDIN_EXTRA_PROMETHEUS_SERIES: '100000' },
  });
  await waitForLive(adminPort);
  const started = performance.now();
  const { lines, bytes, chunked, firstByte } = await new Promise<{
    lines: number;
    bytes: number;
    chunked: boolean;
    firstByte: number;
  }>((resolve, reject) => {
    request({ host: '127.0.0.1', port: adminPort, path: '/stats/prometheus', agent: false }, (response) => {
      const headersAt = performance.now() - started;
      let count = 0;
      let size = 0;
      response.on('data', (chunk: Buffer) => {
        size += chunk.length;
        for (const byte of chunk) if (byte === 10) count++;
      });
      response.on('end', () =>
        resolve({
          lines: count,
          bytes: size,
          chunked: response.headers['transfer-encoding'] === 'chunked',
          firstByte: headersAt,
        }),
      );
    })
      .on('error', reject)
      .end();
  });
  const elapsed = performance.now() - started;
  t.log(
    `100k series: ${(bytes / 1e6).toFixed(1)} MB, ${lines} lines, first byte ${firstByte.toFixed(0)} ms, total ${elapsed.toFixed(0)} ms`,
  );
  t.true(chunked, 'the body is streamed');
  t.true(lines > 100_000);
  t.true(elapsed < 15_000, `rendering took ${elapsed} ms`);
});
