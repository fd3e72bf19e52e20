import { writeBenchmarkSeries } from './benchmark-series.ts';
import type { Counter, Gauge, Histogram, StatFamily, StatsStore } from './stats.ts';
import type { Tag } from './tag-extraction.ts';

/**
 * Envoy's `/stats/prometheus` (source/server/admin/prometheus_stats.cc): counters, then gauges, then
 * histograms; per tag-extracted name one `# TYPE envoy_<name> <type>` line (never `# HELP`), the series
 * sorted by stat name, and a blank line after each family. Names and label names have every character
 * outside `[a-zA-Z0-9_]` replaced by `_`; label values are written as they are.
 */

export interface PrometheusOptions {
  readonly usedOnly: boolean;
  readonly filter?: RegExp;
  /** ENVOY_STANDIN_EXTRA_PROMETHEUS_SERIES: synthetic `istio_*` series for benchmarks. */
  readonly extraSeries?: number;
}

const sanitize = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, '_');

export function formatTags(tags: readonly Tag[]): string {
  let text = '';
  for (const [name, value] of tags) text += `${text === '' ? '' : ','}${sanitize(name)}="${value}"`;
  return text;
}

/** `{:.32g}` for the values Envoy prints: integers plainly, fractions without exponent where possible. */
export function formatNumber(value: number): string {
  if (Number.isInteger(value)) return String(value);
  return String(Number(value.toPrecision(15)));
}

const CHUNK_SIZE = 65_536;

/** Renders in chunks of about 64 KiB through `write`; awaiting it lets the caller apply back-pressure. */
export async function writePrometheus(
  store: StatsStore,
  options: PrometheusOptions,
  write: (text: string) => void | Promise<void>,
): Promise<void> {
  let buffer = '';
  const flushIfFull = async () => {
    if (buffer.length >= CHUNK_SIZE) {
      const text = buffer;
      buffer = '';
      await write(text);
    }
  };
  const shown = (stat: Counter | Gauge | Histogram) =>
    (!options.usedOnly || stat.used) && (!options.filter || options.filter.test(stat.name));

  const numeric = async (families: StatFamily<Counter | Gauge>[], type: 'counter' | 'gauge') => {
    for (const family of families) {
      let started = false;
      for (const stat of family.stats) {
        if (!shown(stat)) continue;
        const name = `envoy_${sanitize(family.extractedName)}`;
        if (!started) {
          buffer += `# TYPE ${name} ${type}\n`;
          started = true;
        }
        buffer += `${name}{${formatTags(stat.tags)}} ${stat.value}\n`;
        await flushIfFull();
      }
      if (started) buffer += '\n';
    }
  };

  await numeric(store.families('counter'), 'counter');
  if (options.extraSeries && options.extraSeries > 0) {
    const pending = buffer;
    buffer = '';
    await write(pending);
    await writeBenchmarkSeries(options.extraSeries, options.filter, write);
  }
  await numeric(store.families('gauge'), 'gauge');

  for (const family of store.families('histogram')) {
    let started = false;
    for (const histogram of family.stats) {
      if (!shown(histogram)) continue;
      const name = `envoy_${sanitize(family.extractedName)}`;
      if (!started) {
        buffer += `# TYPE ${name} histogram\n`;
        started = true;
      }
      const tags = formatTags(histogram.tags);
      const bucketTags = tags === '' ? '' : `${tags},`;
      const cumulative = histogram.cumulativeBuckets();
      for (const [index, bound] of histogram.bounds.entries()) {
        buffer += `${name}_bucket{${bucketTags}le="${formatNumber(bound)}"} ${cumulative[index] ?? 0}\n`;
      }
      buffer += `${name}_bucket{${bucketTags}le="+Inf"} ${histogram.count}\n`;
      buffer += `${name}_sum{${tags}} ${formatNumber(histogram.sum)}\n`;
      buffer += `${name}_count{${tags}} ${histogram.count}\n`;
      await flushIfFull();
    }
    if (started) buffer += '\n';
  }
  if (buffer !== '') await write(buffer);
}
