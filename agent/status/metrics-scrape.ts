import { once } from 'node:events';
import {
  Agent,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request,
  type ServerResponse,
} from 'node:http';
import type { Registry } from 'prom-client';
import type { ApplicationScrapeTarget } from '../config/prometheus-scrape.ts';
import type { Logger } from '../log.ts';
import type { EnvoyAdminClient } from '../proxy/admin-client.ts';
import { formatOfContentType, negotiateOutputFormat } from './exposition/format.ts';
import type { ScrapeSourceType, StatusMetrics } from './metrics.ts';
import { type MergeSource, MetricsMerge, type OutputPiece, type SourceReport } from './metrics-merge.ts';

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
  readonly response: IncomingMessage;
  readonly description: string;
}

/**
 * `/stats/prometheus` and `/metrics`: one exposition merging the agent's registry, Envoy's metrics and the
 * application's, streamed from the sources to the scraper with bounded memory. A source that fails, is too
 * slow or too large is skipped (what it already contributed stays, cut at a line boundary) and counted in
 * `istio_agent_scrape_failures_total{type}`; the response itself never fails.
 */
export class MetricsScraper {
  readonly #options: MetricsScrapeOptions;
  readonly #applicationHost: string;
  readonly #applicationAgent = new Agent({ keepAlive: true });
  readonly #lastProblemLog = new Map<string, number>();
  readonly #now: () => number;

  constructor(options: MetricsScrapeOptions) {
    this.#options = options;
    this.#applicationHost = options.applicationHost ?? 'localhost';
    this.#now = options.now ?? Date.now;
  }

  close(): void {
    this.#applicationAgent.destroy();
  }

  async serve(incoming: IncomingMessage, response: ServerResponse): Promise<void> {
    this.#options.metrics.scrapes.inc();
    const timeoutMilliseconds = this.#timeoutOf(incoming.headers['x-prometheus-scrape-timeout-seconds']);
    // The sources get a little less than the scraper's own timeout, so that the answer arrives in time.
    const clientGone = new AbortController();
    response.once('close', () => {
      if (!response.writableFinished) clientGone.abort();
    });
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
    const answered = await Promise.allSettled(applications);

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
          ? [formatOfContentType(settled.value.response.headers['content-type'])]
          : [],
      ),
    );
    const merge = new MetricsMerge(negotiated.format);
    const write = (pieces: readonly OutputPiece[]) => writePieces(response, pieces, clientGone.signal);

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
        await write(source.push(Buffer.from(text)));
        await write(source.end());
      } catch (error) {
        if (clientGone.signal.aborted) return;
        failures.push(['agent', `failed scraping and writing agent metrics: ${describeFailure(error)}`]);
      }

      if (envoy) {
        try {
          const body = await envoy;
          const format = formatOfContentType(body.response.headers['content-type']).format;
          const source = merge.source({
            type: 'envoy',
            name: 'envoy',
            format,
            trusted: format === 'text' && !this.#options.validateEnvoyLines,
          });
          await this.#pump(source, body, write);
        } catch (error) {
          if (clientGone.signal.aborted) return;
          failures.push(['envoy', `failed scraping envoy metrics: ${describeFailure(error)}`]);
        }
      }

      // Applications last, as Istio orders them.
      const limit = this.#options.applicationBodyLimitBytes ?? applicationBodyLimitBytes;
      for (const settled of answered) {
        if (settled.status === 'rejected') {
          failures.push([
            'application',
            `failed scraping application metrics: ${describeFailure(settled.reason)}`,
          ]);
          continue;
        }
        const body = settled.value;
        try {
          const source = merge.source({
            type: 'application',
            name: body.description,
            format: formatOfContentType(body.response.headers['content-type']).format,
            trusted: false,
          });
          if ((await this.#pump(source, body, write, limit)) === 'limit') {
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
      await write([merge.closing()]);
      response.end();
    } catch {
      // The scraper went away while we were writing: nothing to answer any more.
    } finally {
      deadline.dispose();
      // Bodies not read to their end (cut, failed, or never reached) release their connections.
      for (const pending of [envoy, ...applications]) {
        pending?.then(
          (body) => body.response.complete || body.response.destroy(),
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

  /** Streams one source's body through the merge. 'limit' when the body was cut at `limit` bytes. */
  async #pump(
    source: MergeSource,
    body: SourceBody,
    write: (pieces: readonly OutputPiece[]) => Promise<void>,
    limit = Number.POSITIVE_INFINITY,
  ): Promise<'complete' | 'limit'> {
    let received = 0;
    try {
      for await (const chunk of body.response as AsyncIterable<Buffer>) {
        const over = received + chunk.length > limit;
        const piece = over ? chunk.subarray(0, limit - received) : chunk;
        received += piece.length;
        await write(source.push(piece));
        if (over) {
          source.abandon();
          return 'limit';
        }
        if (source.finished) return 'complete';
      }
      await write(source.end());
      return 'complete';
    } catch (error) {
      source.abandon();
      throw error;
    }
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
      .stream(`/stats/prometheus${query}`, {
        headers: { ...headers, accept: 'text/plain; version=0.0.4' },
        signal: handle.signal,
      })
      .then(
        (response) => checkedBody(handle.received(response), description),
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
    return new Promise((resolve, reject) => {
      const outgoing = request(
        {
          host,
          port: target.port,
          path: target.path,
          headers,
          signal: handle.signal,
          agent: this.#applicationAgent,
        },
        (response) => {
          try {
            resolve(checkedBody(handle.received(response), description));
          } catch (error) {
            reject(error);
          }
        },
      );
      outgoing.on('error', (error) =>
        reject(new Error(`error scraping ${description}: ${errorMessage(error)}`)),
      );
      outgoing.end();
    });
  }
}

interface SourceHandle {
  readonly signal: AbortSignal;
  /** Registers the source's response, so that the deadline can tell a complete body from a pending one. */
  received(response: IncomingMessage): IncomingMessage;
}

/**
 * The sources' deadline. Each source has its own abort: when the deadline passes, sources still waiting or
 * still sending are aborted, but a body that already arrived in full (a small one waits in memory for its
 * turn) is kept, so one slow source does not take the others down with it.
 */
class SourceDeadline {
  readonly #sources: { controller: AbortController; response?: IncomingMessage }[] = [];
  readonly #timer: NodeJS.Timeout;
  #expired = false;

  constructor(milliseconds: number, clientGone: AbortSignal) {
    this.#timer = setTimeout(() => {
      this.#expired = true;
      for (const source of this.#sources) {
        if (!source.response?.complete) source.controller.abort(new Error('scrape deadline'));
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
    const entry: { controller: AbortController; response?: IncomingMessage } = {
      controller: new AbortController(),
    };
    this.#sources.push(entry);
    if (this.#expired) entry.controller.abort(new Error('scrape deadline'));
    return {
      signal: entry.controller.signal,
      received: (response) => {
        entry.response = response;
        return response;
      },
    };
  }

  dispose(): void {
    clearTimeout(this.#timer);
  }
}

function checkedBody(response: IncomingMessage, description: string): SourceBody {
  // Until its turn comes the body is not read; an error meanwhile must not go unhandled.
  response.on('error', () => {});
  if (response.statusCode !== 200) {
    response.resume();
    throw new Error(`error scraping ${description}, status code: ${response.statusCode}`);
  }
  return { response, description };
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

async function writePieces(
  response: ServerResponse,
  pieces: readonly OutputPiece[],
  signal: AbortSignal,
): Promise<void> {
  for (const piece of pieces) {
    if (piece.length === 0) continue;
    if (!response.write(piece)) await once(response, 'drain', { signal });
  }
}

function errorMessage(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const code = (error as NodeJS.ErrnoException).code;
  return code && !error.message.includes(code) ? `${error.message} (${code})` : error.message;
}
