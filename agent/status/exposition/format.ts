/** The two exposition formats the status server reads and writes. */
export type ExpositionFormat = 'text' | 'openmetrics';

export type OpenMetricsVersion = '1.0.0' | '0.0.1';

export const textContentType = 'text/plain; version=0.0.4; charset=utf-8';

export function openMetricsContentType(version: OpenMetricsVersion): string {
  return `application/openmetrics-text; version=${version}; charset=utf-8`;
}

export interface NegotiatedFormat {
  readonly format: ExpositionFormat;
  readonly contentType: string;
}

interface MediaRange {
  readonly type: string;
  readonly parameters: ReadonlyMap<string, string>;
}

function parseMediaRange(text: string): MediaRange | undefined {
  const [type, ...parameters] = text.split(';').map((part) => part.trim());
  if (!type) return undefined;
  const parsed = new Map<string, string>();
  for (const parameter of parameters) {
    const separator = parameter.indexOf('=');
    if (separator <= 0) continue;
    parsed.set(
      parameter.slice(0, separator).trim().toLowerCase(),
      parameter
        .slice(separator + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1'),
    );
  }
  return { type: type.toLowerCase(), parameters: parsed };
}

/** The format a source's `Content-Type` announces; anything that is not OpenMetrics is read as text 0.0.4. */
export function formatOfContentType(contentType: string | undefined): {
  readonly format: ExpositionFormat;
  readonly version?: OpenMetricsVersion;
} {
  const media = contentType === undefined ? undefined : parseMediaRange(contentType);
  if (media?.type !== 'application/openmetrics-text') return { format: 'text' };
  const version = media.parameters.get('version');
  return { format: 'openmetrics', version: version === '0.0.1' ? '0.0.1' : '1.0.0' };
}

interface AcceptPreferences {
  readonly textQuality: number;
  readonly openMetricsQuality: number;
  readonly openMetricsVersion: OpenMetricsVersion;
}

/** Reads a scraper's `Accept`: how much it wants text 0.0.4 and OpenMetrics (q-values), and which OpenMetrics version. */
export function parseAccept(accept: string | undefined): AcceptPreferences {
  // No Accept header: a plain HTTP client (curl, a browser); answer in the format everyone reads.
  if (accept === undefined || accept.trim() === '') {
    return { textQuality: 1, openMetricsQuality: 0, openMetricsVersion: '1.0.0' };
  }
  let textQuality = 0;
  let openMetricsQuality = 0;
  let openMetricsVersion: OpenMetricsVersion = '1.0.0';
  let versionQuality = -1;
  for (const range of accept.split(',')) {
    const media = parseMediaRange(range);
    if (!media) continue;
    const qualityText = media.parameters.get('q');
    const quality = qualityText === undefined ? 1 : Number(qualityText);
    if (!Number.isFinite(quality) || quality <= 0) continue;
    const version = media.parameters.get('version');
    switch (media.type) {
      case 'text/plain':
        if (version === undefined || version === '0.0.4') textQuality = Math.max(textQuality, quality);
        break;
      case 'application/openmetrics-text':
        if (version === undefined || version === '1.0.0' || version === '0.0.1') {
          openMetricsQuality = Math.max(openMetricsQuality, quality);
          const candidate: OpenMetricsVersion = version === '0.0.1' ? '0.0.1' : '1.0.0';
          if (quality > versionQuality || (quality === versionQuality && candidate === '1.0.0')) {
            versionQuality = quality;
            openMetricsVersion = candidate;
          }
        }
        break;
      case 'text/*':
      case '*/*':
        textQuality = Math.max(textQuality, quality);
        break;
      default:
        break;
    }
  }
  if (textQuality === 0 && openMetricsQuality === 0) textQuality = 1;
  return { textQuality, openMetricsQuality, openMetricsVersion };
}

/**
 * Whether the response's format depends on the applications' answers: only when the scraper accepts both
 * formats and does not prefer text. Otherwise the format is known at once and Envoy can be streamed without
 * waiting for the applications.
 */
export function formatDependsOnApplications(accept: string | undefined): boolean {
  const preferences = parseAccept(accept);
  return (
    preferences.openMetricsQuality > 0 &&
    preferences.textQuality > 0 &&
    preferences.openMetricsQuality >= preferences.textQuality
  );
}

/**
 * Chooses the merged response's format. A scraper that accepts only one format gets it. When it accepts
 * both, Istio's rule applies: OpenMetrics when an application answered in OpenMetrics (so its exemplars,
 * units and `_created` survive), text otherwise (so Envoy's and the agent's series keep their names and
 * types exactly as in text) — unless the scraper prefers text.
 */
export function negotiateOutputFormat(
  accept: string | undefined,
  applicationFormats: readonly { readonly format: ExpositionFormat; readonly version?: OpenMetricsVersion }[],
): NegotiatedFormat {
  const preferences = parseAccept(accept);
  const openMetricsApplication = applicationFormats.find((source) => source.format === 'openmetrics');
  const openMetrics =
    preferences.openMetricsQuality > 0 &&
    (preferences.textQuality === 0 ||
      (openMetricsApplication !== undefined && preferences.openMetricsQuality >= preferences.textQuality));
  if (!openMetrics) return { format: 'text', contentType: textContentType };
  return {
    format: 'openmetrics',
    contentType: openMetricsContentType(openMetricsApplication?.version ?? preferences.openMetricsVersion),
  };
}
