import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { ApplicationScrapeTarget } from '../config/prometheus-scrape.ts';
import { StreamedGet } from '../http/streamed-get.ts';
import type { Logger } from '../log.ts';
import type { EnvoyAdminClient } from '../proxy/admin-client.ts';
import {
  formatDependsOnApplications,
  formatOfContentType,
  negotiateOutputFormat,
} from './exposition/format.ts';
import type { ScrapeSourceType, StatusMetrics } from './metrics.ts';
import { type MergeSource, MetricsMerge, type SourceReport } from './metrics-merge.ts';
import { ResponseWriter } from './response-writer.ts';

/** Istio caps each application target's body at 10 MiB. */
export const applicationBodyLimitBytes = 10 * 1024 * 1024;
/** Prometheus' default scrape timeout, for scrapers that do not send `X-Prometheus-Scrape-Timeout-Seconds`. */
export const defaultScrapeTimeoutMilliseconds = 10_000;
const maximumScrapeTimeoutMilliseconds = 120_000;
/** Repeated problems with the same source are logged at most this often (they are always counted). */
const problemLogIntervalMilliseconds = 5 * 60_000;

export interface MetricsScrapeOptions {
  /** The agent's own registry (`istio_agent_*`, process metrics), written first. */
  readonly registry: Registry;
  readonly metrics: StatusMetrics;
  /**
   * Envoy's Prometheus endpoint: a client of the admin port, or of Istio's 15090 listener which serves the
   * same `/stats/prometheus`. Undefined when there is no Envoy.
   */
  readonly envoy?: EnvoyAdminClient;
  /**
   * Check every Envoy sample line like an application's. Off by default: Envoy writes its own exposition,
   * so only its `#` lines are read (families, duplicates, blank lines) and its samples pass through as
   * they are, which keeps a 10 MB body cheap to merge.
   */
  readonly validateEnvoyLines?: boolean;
  readonly applicationTargets: readonly ApplicationScrapeTarget[];
  /** Where the application's metrics are fetched; Istio uses `localhost`. */
  readonly applicationHost?: string;
  readonly applicationBodyLimitBytes?: number;
  readonly defaultTimeoutMilliseconds?: number;
  readonly logger: Logger;
  readonly now?: () => number;
}

interface SourceBody {
  readonly get: StreamedGet;
  readonly description: string;
}

/**
 * `/stats/prometheus` and `/metrics`: one exposition merging the agent's registry, Envoy's metrics and the
 * application's, streamed from the sources to the scraper with bounded memory: each source is read into
 * one reused buffer, processed as it arrives and copied into a few reused output buffers, reading paused
 * whenever the scraper is slower. A source that fails, is too slow or too large is skipped (what it already
 * contributed stays, cut at a line boundary) and counted in `istio_agent_scrape_failures_total{type}`; the
 * response itself never fails.
 */
export class MetricsScraper {
  readonly #options: MetricsScrapeOptions;
  readonly #applicationHost: string;
  readonly #lastProblemLog = new Map<string, number>();
  readonly #now: () => number;

  constructor(options: MetricsScrapeOptions) {
    this.#options = options;
    this.#applicationHost = options.applicationHost ?? 'localhost';
    this.#now = options.now ?? Date.now;
  }

  async serve(incoming: IncomingMessage, response: ServerResponse): Promise<void> {
    this.#options.metrics.scrapes.inc();
    const timeoutMilliseconds = this.#timeoutOf(incoming.headers['x-prometheus-scrape-timeout-seconds']);
    const clientGone = new AbortController();
    response.once('close', () => {
      if (!response.writableFinished) clientGone.abort();
    });
    // The sources get a little less than the scraper's own timeout, so that the answer arrives in time.
    const deadline = new SourceDeadline(
      timeoutMilliseconds - Math.min(500, Math.round(timeoutMilliseconds / 10)),
      clientGone.signal,
    );
    const forwarded = forwardedHeaders(incoming.headers);
    const query = incoming.url?.includes('?') ? incoming.url.slice(incoming.url.indexOf('?')) : '';

    const agentText = this.#options.registry.metrics();
    const envoy =
      this.#options.envoy && this.#fetchEnvoy(this.#options.envoy, query, forwarded, deadline.source());
    const applications = this.#options.applicationTargets.map((target) =>
      this.#fetchApplication(target, forwarded, deadline.source()),
    );
    // Nobody awaits these until their turn: keep an early failure from being reported as unhandled.
    for (const pending of [agentText, envoy, ...applications]) pending?.catch(() => {});
    // The applications' answers are awaited first only when their format decides the response's.
    const answered =
      applications.length > 0 && formatDependsOnApplications(incoming.headers.accept)
        ? await Promise.allSettled(applications)
        : [];

    const failures: [ScrapeSourceType, string][] = [];
    const describeFailure = (error: unknown) =>
      deadline.expired
        ? `timed out after ${timeoutMilliseconds / 1000} s`
        : error instanceof Error
          ? error.message
          : String(error);
    const negotiated = negotiateOutputFormat(
      incoming.headers.accept,
      answered.flatMap((settled) =>
        settled.status === 'fulfilled'
          ? [formatOfContentType(settled.value.get.headers['content-type'])]
          : [],
      ),
    );
    const merge = new MetricsMerge(negotiated.format);
    const writer = new ResponseWriter(response);

    try {
      response.writeHead(200, { 'Content-Type': negotiated.contentType });
      try {
        const text = await agentText;
        const source = merge.source({
          type: 'agent',
          name: 'agent',
          format: formatOfContentType(this.#options.registry.contentType).format,
          trusted: false,
        });
        writer.write(source.push(Buffer.from(text)));
        writer.write(source.end());
        await writer.drained();
      } catch (error) {
        if (clientGone.signal.aborted) return;
        failures.push(['agent', `failed scraping and writing agent metrics: ${describeFailure(error)}`]);
      }

      if (envoy) {
        try {
          const body = await envoy;
          const format = formatOfContentType(body.get.headers['content-type']).format;
          const source = merge.source({
            type: 'envoy',
            name: 'envoy',
            format,
            trusted: format === 'text' && !this.#options.validateEnvoyLines,
          });
          await this.#pump(source, body, writer);
        } catch (error) {
          if (clientGone.signal.aborted) return;
          failures.push(['envoy', `failed scraping envoy metrics: ${describeFailure(error)}`]);
        }
      }

      // Applications last, as Istio orders them.
      const limit = this.#options.applicationBodyLimitBytes ?? applicationBodyLimitBytes;
      for (const application of applications) {
        let body: SourceBody;
        try {
          body = await application;
        } catch (error) {
          failures.push(['application', `failed scraping application metrics: ${describeFailure(error)}`]);
          continue;
        }
        try {
          const source = merge.source({
            type: 'application',
            name: body.description,
            format: formatOfContentType(body.get.headers['content-type']).format,
            trusted: false,
          });
          if ((await this.#pump(source, body, writer, limit)) === 'limit') {
            failures.push([
              'application',
              `failed scraping application metrics: ${body.description} is larger than ${limit} bytes; kept the lines before the limit`,
            ]);
          }
        } catch (error) {
          if (clientGone.signal.aborted) return;
          failures.push(['application', `failed scraping application metrics: ${describeFailure(error)}`]);
        }
      }
      writer.write([merge.closing()]);
      await writer.drained();
      response.end();
    } catch {
      // The scraper went away while we were writing: nothing to answer any more.
    } finally {
      deadline.dispose();
      // Bodies not read to their end (cut, failed, or never reached) release their connections.
      for (const pending of [envoy, ...applications]) {
        pending?.then(
          (body) => body.get.close(),
          () => {},
        );
      }
      if (!clientGone.signal.aborted) this.#record(failures, merge.reports);
    }
  }

  #timeoutOf(header: string | string[] | undefined): number {
    const seconds = Number(Array.isArray(header) ? header[0] : header);
    const fallback = this.#options.defaultTimeoutMilliseconds ?? defaultScrapeTimeoutMilliseconds;
    if (header === undefined || !Number.isFinite(seconds) || seconds <= 0) return fallback;
    return Math.min(Math.max(Math.round(seconds * 1000), 10), maximumScrapeTimeoutMilliseconds);
  }

  #record(failures: readonly [ScrapeSourceType, string][], reports: readonly SourceReport[]): void {
    const { metrics, logger } = this.#options;
    for (const [type, message] of failures) {
      metrics.scrapeFailures.inc({ type });
      logger.error(message);
    }
    for (const report of reports) {
      if (report.malformedLines > 0) {
        metrics.malformedLines.inc({ type: report.type }, report.malformedLines);
        this.#logProblem(
          `${report.name} malformed`,
          `left out ${report.malformedLines} malformed lines of ${report.name} metrics (${report.malformedExamples.join('; ')})`,
        );
      }
      if (report.conflictingFamilies > 0) {
        metrics.conflictingFamilies.inc({ type: report.type }, report.conflictingFamilies);
        this.#logProblem(
          `${report.name} conflicts`,
          `left out ${report.conflictingFamilies} metric families of ${report.name} whose names an earlier source already uses (${report.conflictExamples.join(', ')})`,
        );
      }
    }
  }

  #logProblem(key: string, message: string): void {
    const now = this.#now();
    const last = this.#lastProblemLog.get(key);
    if (last !== undefined && now - last < problemLogIntervalMilliseconds) return;
    this.#lastProblemLog.set(key, now);
    this.#options.logger.warn(message);
  }

  /**
   * Streams one source's body through the merge into the response, pausing the source while the scraper
   * catches up. 'limit' when the body was cut at `limit` bytes.
   */
  async #pump(
    source: MergeSource,
    body: SourceBody,
    writer: ResponseWriter,
    limit = Number.POSITIVE_INFINITY,
  ): Promise<'complete' | 'limit'> {
    let received = 0;
    let outcome: 'complete' | 'limit' = 'complete';
    try {
      await body.get.read((bytes) => {
        const over = received + bytes.length > limit;
        const piece = over ? bytes.subarray(0, limit - received) : bytes;
        received += piece.length;
        const flowing = writer.write(source.push(piece));
        if (over || source.finished) {
          if (over) {
            outcome = 'limit';
            source.abandon();
          }
          body.get.close();
          return false;
        }
        if (flowing) return true;
        writer.drained().then(
          () => body.get.resume(),
          () => body.get.close(),
        );
        return false;
      });
    } catch (error) {
      source.abandon();
      throw error;
    }
    if (outcome === 'complete') writer.write(source.end());
    await writer.drained();
    return outcome;
  }

  #fetchEnvoy(
    envoy: EnvoyAdminClient,
    query: string,
    headers: Record<string, string>,
    handle: SourceHandle,
  ): Promise<SourceBody> {
    const description = `${envoy.baseUrl}/stats/prometheus`;
    // Envoy is asked for text whatever the scraper accepts: the merge converts it when needed.
    return envoy
      .openStream(`/stats/prometheus${query}`, {
        headers: { ...headers, accept: 'text/plain; version=0.0.4' },
        signal: handle.signal,
      })
      .then(
        (get) => checkedBody(handle.received(get), description),
        (error: unknown) => {
          throw new Error(`error scraping ${description}: ${errorMessage(error)}`);
        },
      );
  }

  #fetchApplication(
    target: ApplicationScrapeTarget,
    headers: Record<string, string>,
    handle: SourceHandle,
  ): Promise<SourceBody> {
    const host = this.#applicationHost;
    const description = `http://${host.includes(':') ? `[${host}]` : host}:${target.port}${target.path}`;
    return StreamedGet.open({
      host,
      port: target.port,
      path: target.path,
      headers,
      signal: handle.signal,
    }).then(
      (get) => checkedBody(handle.received(get), description),
      (error: unknown) => {
        throw new Error(`error scraping ${description}: ${errorMessage(error)}`);
      },
    );
  }
}

interface SourceHandle {
  readonly signal: AbortSignal;
  /** Registers the source's response, so that the deadline can tell a complete body from a pending one. */
  received(get: StreamedGet): StreamedGet;
}

/**
 * The sources' deadline. Each source has its own abort: when the deadline passes, sources still waiting or
 * still sending are aborted, but a body that already arrived in full (a small one waits in memory for its
 * turn) is kept, so one slow source does not take the others down with it.
 */
class SourceDeadline {
  readonly #sources: { controller: AbortController; get?: StreamedGet }[] = [];
  readonly #timer: NodeJS.Timeout;
  #expired = false;

  constructor(milliseconds: number, clientGone: AbortSignal) {
    this.#timer = setTimeout(() => {
      this.#expired = true;
      for (const source of this.#sources) {
        if (!source.get?.complete) source.controller.abort(new Error('scrape deadline'));
      }
    }, milliseconds);
    clientGone.addEventListener('abort', () => {
      for (const source of this.#sources) source.controller.abort(new Error('scraper went away'));
    });
  }

  get expired(): boolean {
    return this.#expired;
  }

  source(): SourceHandle {
    const entry: { controller: AbortController; get?: StreamedGet } = { controller: new AbortController() };
    this.#sources.push(entry);
    if (this.#expired) entry.controller.abort(new Error('scrape deadline'));
    return {
      signal: entry.controller.signal,
      received: (get) => {
        entry.get = get;
        return get;
      },
    };
  }

  dispose(): void {
    clearTimeout(this.#timer);
  }
}

function checkedBody(get: StreamedGet, description: string): SourceBody {
  if (get.status !== 200) {
    get.close();
    throw new Error(`error scraping ${description}, status code: ${get.status}`);
  }
  return { get, description };
}

/** Headers a scraper sends that the sources should see, as Istio forwards them. */
function forwardedHeaders(headers: IncomingHttpHeaders): Record<string, string> {
  const forwarded: Record<string, string> = {};
  for (const name of ['accept', 'user-agent', 'x-prometheus-scrape-timeout-seconds']) {
    const value = headers[name];
    if (typeof value === 'string' && value !== '') forwarded[name] = value;
  }
  return forwarded;
}

function errorMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  return code && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
}
