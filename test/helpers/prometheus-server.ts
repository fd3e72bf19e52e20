import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { freePort } from './ports.ts';
import type { TemporaryRoot } from './temporary-root.ts';
import { waitFor } from './wait-for.ts';

export interface ScrapeJob {
  readonly job: string;
  readonly port: number;
  readonly path?: string;
}

export interface PrometheusTarget {
  readonly labels: { readonly job: string };
  readonly health: string;
  readonly lastError: string;
}

export type QueryResult = { metric: Record<string, string>; value: [number, string] }[];

/**
 * A real Prometheus server (Debian's `prometheus` package) scraping the given jobs on loopback every
 * second, with its data in `root`; stopped after the test.
 */
export async function startPrometheus(t: ExecutionContext, root: TemporaryRoot, jobs: readonly ScrapeJob[]) {
  const config = await root.write(
    'prometheus.yml',
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      'scrape_configs:',
      ...jobs.flatMap(({ job, port, path }) => [
        `  - job_name: ${job}`,
        `    metrics_path: ${path ?? '/stats/prometheus'}`,
        '    static_configs:',
        `      - targets: ['127.0.0.1:${port}']`,
      ]),
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const prometheus = execa(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${root.resolve('prometheus-data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { reject: false, all: true, buffer: true, cleanup: true },
  );
  t.teardown(async () => {
    prometheus.kill('SIGTERM');
    await prometheus;
  });
  const api = `http://127.0.0.1:${port}`;
  const getJson = async <T>(path: string): Promise<T> => (await (await fetch(`${api}${path}`)).json()) as T;
  await waitFor('Prometheus to be ready', async () => (await fetch(`${api}/-/ready`)).status === 200);

  const query = async (expression: string): Promise<QueryResult> =>
    (
      await getJson<{ data: { result: QueryResult } }>(
        `/api/v1/query?query=${encodeURIComponent(expression)}`,
      )
    ).data.result;
  return {
    api,
    /** Every target once each was scraped at least once. */
    scrapedTargets: () =>
      waitFor(
        'every target scraped',
        async () => {
          const active = (await getJson<{ data: { activeTargets: PrometheusTarget[] } }>('/api/v1/targets'))
            .data.activeTargets;
          return active.length === jobs.length && active.every((target) => target.health !== 'unknown')
            ? active
            : undefined;
        },
        { intervalMilliseconds: 250 },
      ),
    query,
    /** The first sample of `expression`, once Prometheus has one. */
    firstValue: async (expression: string): Promise<string | undefined> => {
      const result = await waitFor(
        `${expression} in Prometheus`,
        async () => {
          const found = await query(expression);
          return found.length > 0 ? found : undefined;
        },
        { timeoutMilliseconds: 30_000, intervalMilliseconds: 250 },
      );
      return result[0]?.value[1];
    },
  };
}
