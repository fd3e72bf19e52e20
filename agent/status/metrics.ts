import { Counter, Gauge, type Registry } from 'prom-client';

/** Where a merged scrape's lines come from; the `type` label of the scrape counters, as Istio names it. */
export type ScrapeSourceType = 'envoy' | 'application' | 'agent';

export const scrapeSourceTypes: readonly ScrapeSourceType[] = ['envoy', 'application', 'agent'];

/**
 * The status server's metrics in the agent's registry. Istio's names (no automatic `_total`):
 * `istio_agent_scrapes_total`, `istio_agent_scrape_failures_total{type}`,
 * `istio_agent_startup_duration_seconds`; and two of this agent's own that count what the merge left out
 * so that the merged exposition stays valid.
 */
export class StatusMetrics {
  readonly scrapes: Counter;
  readonly scrapeFailures: Counter<'type'>;
  readonly startupDuration: Gauge;
  readonly malformedLines: Counter<'type'>;
  readonly conflictingFamilies: Counter<'type'>;

  constructor(registry: Registry) {
    this.scrapes = counter(registry, 'istio_agent_scrapes_total', 'The total number of scrapes.', []);
    this.scrapeFailures = counter(
      registry,
      'istio_agent_scrape_failures_total',
      'The total number of failed scrapes.',
      ['type'],
    );
    this.startupDuration = gauge(
      registry,
      'istio_agent_startup_duration_seconds',
      'The time from the process starting to being marked ready.',
    );
    this.malformedLines = counter(
      registry,
      'istio_agent_scrape_malformed_lines_total',
      'Lines of a scraped source left out of the merged metrics because they were not valid exposition lines.',
      ['type'],
    );
    this.conflictingFamilies = counter(
      registry,
      'istio_agent_scrape_conflicting_families_total',
      'Metric families of a scraped source left out of the merged metrics because an earlier source already used the name.',
      ['type'],
    );
    // Zero-valued series from the start, so that rate() and alerts see the counters before the first failure.
    for (const type of scrapeSourceTypes) {
      this.scrapeFailures.inc({ type }, 0);
      this.malformedLines.inc({ type }, 0);
      this.conflictingFamilies.inc({ type }, 0);
    }
  }
}

// A registry shared by several parts (or a status server re-created after a reload) must not register twice.
function counter<Label extends string>(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly Label[],
): Counter<Label> {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Counter) return existing as Counter<Label>;
  return new Counter<Label>({ name, help, labelNames, registers: [registry] });
}

function gauge(registry: Registry, name: string, help: string): Gauge {
  const existing = registry.getSingleMetric(name);
  if (existing instanceof Gauge) return existing as Gauge;
  return new Gauge({ name, help, registers: [registry] });
}
