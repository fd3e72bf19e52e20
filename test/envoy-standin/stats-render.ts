import { formatNumber } from './prometheus.ts';
import type { Counter, Gauge, Histogram, StatsStore } from './stats.ts';

/** Envoy's `/stats` in text (`name: value`) and `format=json`, with `usedonly` and `filter`. */

export interface StatsQuery {
  readonly usedOnly: boolean;
  readonly filter?: RegExp;
}

/** The quantiles Envoy reports for histograms, in percent. */
export const supportedQuantiles = [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100] as const;

function selected(store: StatsStore, query: StatsQuery) {
  const shown = (stat: Counter | Gauge | Histogram) =>
    (!query.usedOnly || stat.used) && (!query.filter || query.filter.test(stat.name));
  const numeric = [...store.counters(), ...store.gauges()]
    .filter(shown)
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const histograms = [...store.histograms()].filter(shown).sort((a, b) => (a.name < b.name ? -1 : 1));
  return { numeric, histograms };
}

const quantileText = (value: number) =>
  Number.isNaN(value) ? 'nan' : formatNumber(Number(value.toPrecision(6)));

export function renderStatsText(store: StatsStore, query: StatsQuery): string {
  const { numeric, histograms } = selected(store, query);
  let text = '';
  for (const stat of numeric) text += `${stat.name}: ${stat.value}\n`;
  for (const histogram of histograms) {
    if (histogram.count === 0) {
      text += `${histogram.name}: No recorded values\n`;
      continue;
    }
    const parts = supportedQuantiles.map(
      (quantile) => `P${quantile}(nan,${quantileText(histogram.quantile(quantile / 100))})`,
    );
    text += `${histogram.name}: ${parts.join(' ')}\n`;
  }
  return text;
}

export function renderStatsJson(store: StatsStore, query: StatsQuery): string {
  const { numeric, histograms } = selected(store, query);
  const stats: unknown[] = numeric.map((stat) => ({ name: stat.name, value: stat.value }));
  if (histograms.length > 0) {
    stats.push({
      histograms: {
        supported_quantiles: supportedQuantiles,
        computed_quantiles: histograms.map((histogram) => ({
          name: histogram.name,
          values: supportedQuantiles.map((quantile) => ({
            interval: null,
            cumulative:
              histogram.count === 0 ? null : Number(histogram.quantile(quantile / 100).toPrecision(6)),
          })),
        })),
      },
    });
  }
  return `${JSON.stringify({ stats }, null, 1)}\n`;
}
