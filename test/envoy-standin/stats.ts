import type { StatsConfig } from './bootstrap-model.ts';
import { type Tag, TagProducer } from './tag-extraction.ts';

/** Envoy's default histogram bucket bounds (source/common/stats/histogram_impl.cc). */
export const defaultHistogramBuckets: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000,
  3600000,
];

interface StatBase {
  readonly name: string;
  readonly extractedName: string;
  readonly tags: readonly Tag[];
  /** Written at least once since start; `usedonly` shows only these. */
  used: boolean;
}

export class Counter implements StatBase {
  readonly kind = 'counter';
  value = 0;
  used = false;
  readonly name: string;
  readonly extractedName: string;
  readonly tags: readonly Tag[];
  constructor(name: string, extractedName: string, tags: readonly Tag[]) {
    this.name = name;
    this.extractedName = extractedName;
    this.tags = tags;
  }
  inc(amount = 1): void {
    this.value += amount;
    this.used = true;
  }
}

/**
 * How a gauge combines with the hot-restart parent's value (Envoy's Gauge::ImportMode): most accumulate,
 * server state gauges never import.
 */
export type GaugeImportMode = 'accumulate' | 'never_import';

export class Gauge implements StatBase {
  readonly kind = 'gauge';
  value = 0;
  used = false;
  readonly name: string;
  readonly extractedName: string;
  readonly tags: readonly Tag[];
  readonly importMode: GaugeImportMode;
  constructor(name: string, extractedName: string, tags: readonly Tag[], importMode: GaugeImportMode) {
    this.name = name;
    this.extractedName = extractedName;
    this.tags = tags;
    this.importMode = importMode;
  }
  set(value: number): void {
    this.value = value;
    this.used = true;
  }
  inc(amount = 1): void {
    this.set(this.value + amount);
  }
  dec(amount = 1): void {
    this.set(Math.max(0, this.value - amount));
  }
}

export class Histogram implements StatBase {
  readonly kind = 'histogram';
  used = false;
  count = 0;
  sum = 0;
  minimum = Number.POSITIVE_INFINITY;
  maximum = Number.NEGATIVE_INFINITY;
  readonly name: string;
  readonly extractedName: string;
  readonly tags: readonly Tag[];
  readonly bounds: readonly number[];
  /** Samples per bucket (not cumulative): bucket i holds values ≤ bounds[i] and > bounds[i-1]. */
  readonly bucketCounts: number[];
  constructor(name: string, extractedName: string, tags: readonly Tag[], bounds: readonly number[]) {
    this.name = name;
    this.extractedName = extractedName;
    this.tags = tags;
    this.bounds = bounds;
    this.bucketCounts = bounds.map(() => 0);
  }
  record(value: number): void {
    this.used = true;
    this.count++;
    this.sum += value;
    this.minimum = Math.min(this.minimum, value);
    this.maximum = Math.max(this.maximum, value);
    const index = this.bounds.findIndex((bound) => value <= bound);
    if (index !== -1) this.bucketCounts[index] = (this.bucketCounts[index] ?? 0) + 1;
  }
  /** Cumulative counts per bound, as Prometheus `_bucket{le=…}` wants them. */
  cumulativeBuckets(): number[] {
    let total = 0;
    return this.bucketCounts.map((count) => (total += count));
  }
  /** An estimate of quantile q (0…1) by linear interpolation inside buckets. */
  quantile(q: number): number {
    if (this.count === 0) return Number.NaN;
    if (q <= 0) return this.minimum;
    if (q >= 1) return this.maximum;
    const rank = q * this.count;
    let seen = 0;
    let lower = 0;
    for (const [index, bound] of this.bounds.entries()) {
      const inBucket = this.bucketCounts[index] ?? 0;
      if (seen + inBucket >= rank && inBucket > 0) {
        const low = Math.max(lower, this.minimum);
        const high = Math.min(bound, this.maximum);
        return low + ((rank - seen) / inBucket) * (high - low);
      }
      seen += inBucket;
      lower = bound;
    }
    return this.maximum;
  }
}

export type Stat = Counter | Gauge | Histogram;

/** A family: stats sharing a tag-extracted name, rendered under one `# TYPE`. */
export interface StatFamily<T extends Stat> {
  readonly extractedName: string;
  readonly stats: readonly T[];
}

export interface StatsStoreOptions {
  readonly config: StatsConfig;
  /** `--stats-tag name:value` pairs, added to every stat. */
  readonly fixedTags?: readonly Tag[];
}

/**
 * Envoy's stats store: counters, gauges and histograms by name, with the bootstrap's stats_matcher deciding
 * which exist (a rejected stat works but is never shown) and the tag producer naming families and labels.
 */
export class StatsStore {
  readonly #counters = new Map<string, Counter>();
  readonly #gauges = new Map<string, Gauge>();
  readonly #histograms = new Map<string, Histogram>();
  readonly #config: StatsConfig;
  readonly #tags: TagProducer;
  #generation = 0;
  readonly #familyCache = new Map<string, { generation: number; families: StatFamily<Stat>[] }>();

  constructor(options: StatsStoreOptions) {
    this.#config = options.config;
    const fixed = [
      ...options.config.tagSpecifiers
        .filter((specifier) => specifier.fixedValue !== undefined)
        .map((specifier) => [specifier.tagName, specifier.fixedValue ?? ''] as const),
      ...(options.fixedTags ?? []),
    ];
    this.#tags = new TagProducer(
      options.config.tagSpecifiers.filter((specifier) => specifier.fixedValue === undefined),
      options.config.useAllDefaultTags,
      fixed,
    );
  }

  /** Whether the stats matcher lets a stat of this name exist. */
  accepts(name: string): boolean {
    const matcher = this.#config.matcher;
    switch (matcher.kind) {
      case 'all':
        return true;
      case 'reject_all':
        return false;
      case 'inclusion':
        return matcher.patterns.some((pattern) => pattern(name));
      case 'exclusion':
        return !matcher.patterns.some((pattern) => pattern(name));
    }
  }

  #create<T extends Stat>(
    map: Map<string, T>,
    name: string,
    make: (extractedName: string, tags: readonly Tag[]) => T,
  ): T {
    const existing = map.get(name);
    if (existing) return existing;
    const { extractedName, tags } = this.#tags.produce(name);
    const stat = make(extractedName, tags);
    if (this.accepts(name)) {
      map.set(name, stat);
      this.#generation++;
    }
    return stat;
  }

  counter(name: string): Counter {
    return this.#create(this.#counters, name, (extracted, tags) => new Counter(name, extracted, tags));
  }

  gauge(name: string, importMode: GaugeImportMode = 'accumulate'): Gauge {
    return this.#create(
      this.#gauges,
      name,
      (extracted, tags) => new Gauge(name, extracted, tags, importMode),
    );
  }

  histogram(name: string): Histogram {
    const setting = this.#config.histogramBuckets.find((candidate) => candidate.match(name));
    const bounds = setting && setting.buckets.length > 0 ? setting.buckets : defaultHistogramBuckets;
    return this.#create(
      this.#histograms,
      name,
      (extracted, tags) => new Histogram(name, extracted, tags, bounds),
    );
  }

  findCounter(name: string): Counter | undefined {
    return this.#counters.get(name);
  }
  findGauge(name: string): Gauge | undefined {
    return this.#gauges.get(name);
  }

  counters(): IterableIterator<Counter> {
    return this.#counters.values();
  }
  gauges(): IterableIterator<Gauge> {
    return this.#gauges.values();
  }
  histograms(): IterableIterator<Histogram> {
    return this.#histograms.values();
  }

  /**
   * Stats of one kind grouped by tag-extracted name, families sorted by that name and stats inside by full
   * name (the order Envoy's Prometheus output uses). Cached until a stat is added.
   */
  families<K extends Stat['kind']>(kind: K): StatFamily<Extract<Stat, { kind: K }>>[] {
    const cached = this.#familyCache.get(kind);
    if (cached && cached.generation === this.#generation) {
      return cached.families as StatFamily<Extract<Stat, { kind: K }>>[];
    }
    const source: Iterable<Stat> =
      kind === 'counter'
        ? this.#counters.values()
        : kind === 'gauge'
          ? this.#gauges.values()
          : this.#histograms.values();
    const groups = new Map<string, Stat[]>();
    for (const stat of source) {
      const group = groups.get(stat.extractedName);
      if (group) group.push(stat);
      else groups.set(stat.extractedName, [stat]);
    }
    const families = [...groups.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([extractedName, stats]) => ({
        extractedName,
        stats: stats.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
      }));
    this.#familyCache.set(kind, { generation: this.#generation, families });
    return families as unknown as StatFamily<Extract<Stat, { kind: K }>>[];
  }
}
