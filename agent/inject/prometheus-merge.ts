/** Where the agent serves the merged metrics (Envoy's, its own and the application's). */
export const mergedMetricsPath = '/stats/prometheus';

const scrapeAnnotation = 'prometheus.io/scrape';
const portAnnotation = 'prometheus.io/port';
const pathAnnotation = 'prometheus.io/path';

export interface PrometheusMerge {
  readonly annotations: Record<string, string>;
  /** `ISTIO_PROMETHEUS_ANNOTATIONS`: the application's own scrape settings, when the pod had any. */
  readonly scrapeConfiguration: string | undefined;
}

/**
 * Istio's metrics merge: Prometheus is told to scrape the agent (`prometheus.io/*` rewritten to the status
 * port and `/stats/prometheus`), and the application's own `prometheus.io/*` annotations move into
 * `ISTIO_PROMETHEUS_ANNOTATIONS` so that the agent scrapes the application and merges its metrics. Nothing
 * changes when scraping is turned off (`prometheus.io/scrape: "false"`), when the merge is disabled, or when
 * the annotations already point at the agent.
 */
export function mergePrometheusAnnotations(
  annotations: Readonly<Record<string, string>>,
  statusPort: number,
  enabled: boolean,
): PrometheusMerge {
  const unchanged = { annotations: { ...annotations }, scrapeConfiguration: undefined };
  const target = String(statusPort);
  if (!enabled || statusPort === 0 || !scrapeEnabled(annotations)) return unchanged;
  if (annotationValue(annotations, portAnnotation) === target) return unchanged;

  const scrape = annotationValue(annotations, scrapeAnnotation);
  const path = annotationValue(annotations, pathAnnotation);
  const port = annotationValue(annotations, portAnnotation);
  const scrapeConfiguration =
    scrape === undefined && path === undefined && port === undefined
      ? undefined
      : // Istio's PrometheusScrapeConfiguration always has the three keys.
        JSON.stringify({ scrape: scrape ?? '', path: path ?? '', port: port ?? '' });

  // Prometheus treats `prometheus.io.scrape` and `prometheus-io/scrape` as the same annotation: every
  // spelling goes, or Prometheus might pick the application's.
  const replacement: Record<string, string> = {
    [scrapeAnnotation]: 'true',
    [portAnnotation]: target,
    [pathAnnotation]: mergedMetricsPath,
  };
  const rewritten: Record<string, string> = {};
  for (const [key, value] of Object.entries(annotations)) {
    const canonical = canonicalKeyOf(key);
    if (canonical === undefined) rewritten[key] = value;
    else if (canonical === key) rewritten[key] = replacement[key] as string;
  }
  for (const [key, value] of Object.entries(replacement)) rewritten[key] ??= value;
  return { annotations: rewritten, scrapeConfiguration };
}

/** Scraping is on unless a `prometheus.io/scrape` spelling says false (Go's ParseBool). */
function scrapeEnabled(annotations: Readonly<Record<string, string>>): boolean {
  const value = annotationValue(annotations, scrapeAnnotation);
  return !['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value ?? '');
}

/** Prometheus' label-name sanitising: anything but letters, digits and `_` becomes `_`. */
function sanitise(key: string): string {
  return key.replace(/[^a-zA-Z0-9_]/g, '_');
}

function canonicalKeyOf(key: string): string | undefined {
  const sanitised = sanitise(key);
  return [scrapeAnnotation, portAnnotation, pathAnnotation].find((name) => sanitise(name) === sanitised);
}

/** The value of any spelling of `name`; the canonical spelling wins when there are several. */
function annotationValue(annotations: Readonly<Record<string, string>>, name: string): string | undefined {
  if (annotations[name] !== undefined) return annotations[name];
  const key = Object.keys(annotations).find((candidate) => canonicalKeyOf(candidate) === name);
  return key === undefined ? undefined : annotations[key];
}
