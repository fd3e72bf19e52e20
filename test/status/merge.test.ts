import test from 'ava';
import type { ExpositionFormat } from '../../agent/status/exposition/format.ts';
import type { ScrapeSourceType } from '../../agent/status/metrics.ts';
import { MetricsMerge, type SourceReport } from '../../agent/status/metrics-merge.ts';
import { envoyPrometheusText } from './fakes.ts';

interface SourceInput {
  readonly type?: ScrapeSourceType;
  readonly format?: ExpositionFormat;
  readonly trusted?: boolean;
  readonly body: string | Buffer;
  readonly maximumLineBytes?: number;
}

/** Runs sources through one merge, feeding each body in chunks of `chunkSize` bytes. */
function merge(
  output: ExpositionFormat,
  sources: readonly SourceInput[],
  chunkSize = Number.POSITIVE_INFINITY,
): { text: string; reports: readonly SourceReport[] } {
  const session = new MetricsMerge(output);
  const pieces: (Buffer | string)[] = [];
  for (const [index, input] of sources.entries()) {
    const source = session.source({
      type: input.type ?? 'application',
      name: `source ${index}`,
      format: input.format ?? 'text',
      trusted: input.trusted ?? false,
      ...(input.maximumLineBytes ? { maximumLineBytes: input.maximumLineBytes } : {}),
    });
    const body = Buffer.isBuffer(input.body) ? input.body : Buffer.from(input.body);
    for (let offset = 0; offset < body.length && !source.finished; offset += chunkSize) {
      pieces.push(...source.push(body.subarray(offset, Math.min(body.length, offset + chunkSize))));
    }
    pieces.push(...source.end());
  }
  pieces.push(session.closing());
  return { text: pieces.map((piece) => piece.toString()).join(''), reports: session.reports };
}

const lines = (text: string) => text.split('\n').filter((line) => line !== '');

test('text sources merge into text: families pass, a family name used again by a later source is left out and counted', (t) => {
  const { text, reports } = merge('text', [
    {
      type: 'agent',
      body: '# HELP istio_agent_scrapes_total The total number of scrapes.\n# TYPE istio_agent_scrapes_total counter\nistio_agent_scrapes_total 3\n',
    },
    {
      type: 'envoy',
      trusted: true,
      body: '# TYPE envoy_server_live gauge\nenvoy_server_live 1\n\n# TYPE envoy_cluster_upstream_cx_total counter\nenvoy_cluster_upstream_cx_total{cluster_name="a"} 2\n',
    },
    {
      body: '# HELP envoy_server_live Mine.\n# TYPE envoy_server_live gauge\nenvoy_server_live 7\n# TYPE app_requests_total counter\napp_requests_total{path="/"} 5\n',
    },
  ]);
  t.deepEqual(lines(text), [
    '# HELP istio_agent_scrapes_total The total number of scrapes.',
    '# TYPE istio_agent_scrapes_total counter',
    'istio_agent_scrapes_total 3',
    '# TYPE envoy_server_live gauge',
    'envoy_server_live 1',
    '# TYPE envoy_cluster_upstream_cx_total counter',
    'envoy_cluster_upstream_cx_total{cluster_name="a"} 2',
    '# TYPE app_requests_total counter',
    'app_requests_total{path="/"} 5',
  ]);
  t.is(reports[2]?.conflictingFamilies, 1);
  t.deepEqual(reports[2]?.conflictExamples, ['envoy_server_live']);
  t.is(reports[2]?.malformedLines, 0);
});

test('a family whose samples would collide with another family’s sample names is left out', (t) => {
  const { text, reports } = merge('text', [
    {
      type: 'envoy',
      trusted: true,
      body: '# TYPE rq histogram\nrq_bucket{le="+Inf"} 1\nrq_sum 2\nrq_count 1\n',
    },
    { body: '# TYPE rq_count gauge\nrq_count 9\n# TYPE rq_sum_other gauge\nrq_sum_other 1\nrq 4\n' },
  ]);
  t.false(text.includes('rq_count 9'));
  t.false(/^rq 4$/m.test(text), 'an untyped family named like the histogram is left out too');
  t.true(text.includes('rq_sum_other 1'));
  t.is(reports[1]?.conflictingFamilies, 2);
});

test('the same family twice within one source keeps the first block only', (t) => {
  const { text, reports } = merge('text', [{ body: 'a 1\nb 2\na 3\n' }]);
  t.deepEqual(lines(text), ['# TYPE a untyped', 'a 1', '# TYPE b untyped', 'b 2']);
  t.is(reports[0]?.conflictingFamilies, 1);
});

test('OpenMetrics output: counters named without _total, neutral types where names would change, no blank lines, one # EOF last', (t) => {
  const { text } = merge('openmetrics', [
    {
      type: 'agent',
      body: '# HELP c_total Calls "made".\n# TYPE c_total counter\nc_total 1\n\n# TYPE u untyped\nu 2\n',
    },
    {
      type: 'envoy',
      trusted: true,
      body: '# TYPE envoy_cluster_upstream_rq_completed counter\nenvoy_cluster_upstream_rq_completed{c="a"} 9\n\n# TYPE envoy_h histogram\nenvoy_h_bucket{le="1"} 1\nenvoy_h_bucket{le="+Inf"} 2\nenvoy_h_sum 3\nenvoy_h_count 2\n\n',
    },
    {
      format: 'openmetrics',
      body: '# TYPE app_requests counter\n# UNIT app_requests\napp_requests_total 5 # {trace_id="x"} 1 1700000000.5\napp_requests_created 1700000000\n# EOF\nafter_eof 1\n',
    },
  ]);
  t.deepEqual(lines(text), [
    '# HELP c Calls \\"made\\".',
    '# TYPE c counter',
    'c_total 1',
    '# TYPE u unknown',
    'u 2',
    '# TYPE envoy_cluster_upstream_rq_completed unknown',
    'envoy_cluster_upstream_rq_completed{c="a"} 9',
    '# TYPE envoy_h histogram',
    'envoy_h_bucket{le="1"} 1',
    'envoy_h_bucket{le="+Inf"} 2',
    'envoy_h_sum 3',
    'envoy_h_count 2',
    '# TYPE app_requests counter',
    '# UNIT app_requests ',
    'app_requests_total 5 # {trace_id="x"} 1 1700000000.5',
    'app_requests_created 1700000000',
    '# EOF',
  ]);
  t.true(text.endsWith('# EOF\n'));
  t.is(text.match(/# EOF/g)?.length, 1);
});

test('an OpenMetrics application is converted when the scraper asked for text', (t) => {
  const { text, reports } = merge('text', [
    {
      format: 'openmetrics',
      body: [
        '# HELP app_requests Requests "served".',
        '# TYPE app_requests counter',
        'app_requests_total{path="/"} 5 # {trace_id="abc"} 1 1700000000.5',
        'app_requests_created{path="/"} 1700000000',
        '# TYPE app_temperature_celsius gauge',
        '# UNIT app_temperature_celsius celsius',
        'app_temperature_celsius 21.5 1700000000.25',
        '# TYPE app_queue gaugehistogram',
        'app_queue_bucket{le="+Inf"} 3',
        'app_queue_gcount 3',
        'app_queue_gsum 7',
        '# TYPE app_build info',
        'app_build_info{version="1.2"} 1',
        '# TYPE app_feature stateset',
        'app_feature{app_feature="a"} 1',
        '# TYPE app_other unknown',
        'app_other 4',
        '# TYPE app_latency summary',
        'app_latency{quantile="0.5"} 0.2',
        'app_latency_sum 10',
        'app_latency_count 40',
        'app_latency_created 1700000000',
        '# EOF',
        '',
      ].join('\n'),
    },
  ]);
  t.deepEqual(lines(text), [
    '# HELP app_requests_total Requests "served".',
    '# TYPE app_requests_total counter',
    'app_requests_total{path="/"} 5',
    '# TYPE app_temperature_celsius gauge',
    'app_temperature_celsius 21.5 1700000000250',
    'app_queue_bucket{le="+Inf"} 3',
    'app_queue_gcount 3',
    'app_queue_gsum 7',
    '# TYPE app_build_info gauge',
    'app_build_info{version="1.2"} 1',
    '# TYPE app_feature gauge',
    'app_feature{app_feature="a"} 1',
    '# TYPE app_other untyped',
    'app_other 4',
    '# TYPE app_latency summary',
    'app_latency{quantile="0.5"} 0.2',
    'app_latency_sum 10',
    'app_latency_count 40',
  ]);
  t.is(reports[0]?.malformedLines, 0);
  t.false(text.includes('# EOF'));
});

test('a text application is converted for an OpenMetrics scraper: timestamps become seconds, HELP quotes escaped', (t) => {
  const { text } = merge('openmetrics', [
    {
      body: '# HELP app_jobs_total Jobs "done".\n# TYPE app_jobs_total counter\napp_jobs_total 3 1700000000123\napp_loose 1 -5\n',
    },
  ]);
  t.deepEqual(lines(text), [
    '# HELP app_jobs Jobs \\"done\\".',
    '# TYPE app_jobs counter',
    'app_jobs_total 3 1700000000.123',
    '# TYPE app_loose unknown',
    'app_loose 1 -0.005',
    '# EOF',
  ]);
});

test('malformed application lines are dropped and counted; the lines around them stay', (t) => {
  const body = [
    '# TYPE good gauge',
    'good 1',
    '9bad_name 1',
    'bad_escape{a="\\x"} 1',
    'duplicate_label{a="1",a="2"} 1',
    'no_value{a="1"}',
    'bad_value 12abc',
    'trailing 1 2 3',
    'exemplar_in_text 1 # {a="b"} 1',
    'reserved{__name__="x"} 1',
    '# TYPE h histogram',
    'h_bucket{x="1"} 1',
    'h_bucket{le="+Inf"} 1',
    '# TYPE s summary',
    's 3',
    's{quantile="0.9"} 3',
    '# TYPE good gauge',
    '# TYPE t nonsense',
    'fine_label{a="tab\there",b="quote\\"d"} 2',
    '',
  ].join('\n');
  const { text, reports } = merge('text', [{ body }]);
  t.deepEqual(lines(text), [
    '# TYPE good gauge',
    'good 1',
    '# TYPE h histogram',
    'h_bucket{le="+Inf"} 1',
    '# TYPE s summary',
    's{quantile="0.9"} 3',
    '# TYPE fine_label untyped',
    'fine_label{a="tab\there",b="quote\\"d"} 2',
  ]);
  t.is(reports[0]?.malformedLines, 11);
  t.is(reports[0]?.malformedExamples.length, 5);
  t.regex(reports[0]?.malformedExamples[0] ?? '', /^line 3: invalid metric name$/);
});

test('OpenMetrics applications: blank lines, unknown comments and late metadata are malformed', (t) => {
  const { text, reports } = merge('openmetrics', [
    {
      format: 'openmetrics',
      body: '# TYPE a gauge\na 1\n\n# a comment\n# HELP a late\n# TYPE b counter\nb_total -1\nb_total 2\n# EOF\n',
    },
  ]);
  t.deepEqual(lines(text), ['# TYPE a gauge', 'a 1', '# TYPE b counter', 'b_total 2', '# EOF']);
  t.is(reports[0]?.malformedLines, 4);
});

test('bytes that are not UTF-8 and lines over the length limit are dropped and counted, in memory bounded by that limit', (t) => {
  const long = `long{a="${'x'.repeat(300)}"} 1\n`;
  const body = Buffer.concat([
    Buffer.from('ok 1\n'),
    Buffer.from([0x62, 0x61, 0x64, 0x7b, 0x61, 0x3d, 0x22, 0xff, 0x22, 0x7d, 0x20, 0x31, 0x0a]),
    Buffer.from(long),
    Buffer.from('ok2 2\n'),
  ]);
  for (const chunkSize of [1, 16, 1024]) {
    const { text, reports } = merge('text', [{ body, maximumLineBytes: 100 }], chunkSize);
    t.deepEqual(
      lines(text),
      ['# TYPE ok untyped', 'ok 1', '# TYPE ok2 untyped', 'ok2 2'],
      `chunks of ${chunkSize}`,
    );
    t.is(reports[0]?.malformedLines, 2);
  }
});

test('chunk boundaries do not change the output, for trusted and validated sources in both formats', (t) => {
  const envoy = envoyPrometheusText(3);
  const app =
    '# HELP app_x_total X.\n# TYPE app_x_total counter\napp_x_total{a="1"} 1\napp_x_total{a="2"} 2\n# TYPE app_y gauge\napp_y 3\nlast_without_newline 4';
  for (const output of ['text', 'openmetrics'] as const) {
    const whole = merge(output, [{ type: 'envoy', trusted: true, body: envoy }, { body: app }]).text;
    for (const chunkSize of [1, 2, 7, 100, 4096]) {
      t.is(
        merge(output, [{ type: 'envoy', trusted: true, body: envoy }, { body: app }], chunkSize).text,
        whole,
      );
    }
    t.true(whole.includes('last_without_newline 4\n'));
  }
});

test('Envoy passed through as trusted gives the same exposition as Envoy checked line by line', (t) => {
  const envoy = envoyPrometheusText(5);
  for (const output of ['text', 'openmetrics'] as const) {
    const trusted = merge(output, [{ type: 'envoy', trusted: true, body: envoy }]).text;
    const validated = merge(output, [{ type: 'envoy', trusted: false, body: envoy }]).text;
    // Apart from Envoy's blank lines and its empty label sets (`name{} 1`), which are valid as they are.
    t.is(lines(trusted).join('\n').replaceAll('{} ', ' '), lines(validated).join('\n'), output);
  }
});
