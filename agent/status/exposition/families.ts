import type { ExpositionFormat } from './format.ts';

/** Metric types as the two formats spell them in `# TYPE` lines. */
export type MetricType =
  | 'counter'
  | 'gauge'
  | 'histogram'
  | 'summary'
  | 'untyped'
  | 'unknown'
  | 'gaugehistogram'
  | 'info'
  | 'stateset';

const textTypes: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);
const openMetricsTypes: ReadonlySet<string> = new Set([
  'counter',
  'gauge',
  'histogram',
  'gaugehistogram',
  'summary',
  'info',
  'stateset',
  'unknown',
]);

export function isMetricType(format: ExpositionFormat, type: string): type is MetricType {
  return (format === 'text' ? textTypes : openMetricsTypes).has(type);
}

/** The type of a family that has samples but no `# TYPE` line. */
export function implicitType(format: ExpositionFormat): MetricType {
  return format === 'text' ? 'untyped' : 'unknown';
}

/**
 * What a sample line does in its family: `keep` passes, `drop` is left out on purpose (OpenMetrics
 * `_created` in text output), `bucket` and `quantile` pass but need their `le`/`quantile` label.
 */
export type SampleRole = 'keep' | 'drop' | 'bucket' | 'quantile';

/** One family as it appears in the merged output. */
export interface OutputFamily {
  /** The name in the output's `# HELP`/`# TYPE` lines; undefined when the family is written without them. */
  readonly headerName: string | undefined;
  readonly headerType: MetricType | undefined;
  /** Whether the input's `# UNIT` survives (OpenMetrics to OpenMetrics only). */
  readonly keepsUnit: boolean;
  /** Input sample names of the family and what each does. Sample names never change between formats. */
  readonly samples: ReadonlyMap<string, SampleRole>;
  /** Every name the family occupies in the output: its family name and all sample names it may write. */
  readonly occupiedNames: readonly string[];
}

const total = '_total';

/** Sample names of a family as its input format writes them. */
function inputSamples(format: ExpositionFormat, name: string, type: MetricType): Map<string, SampleRole> {
  const samples = new Map<string, SampleRole>();
  switch (type) {
    case 'counter':
      if (format === 'text') samples.set(name, 'keep');
      else samples.set(`${name}${total}`, 'keep').set(`${name}_created`, 'keep');
      break;
    case 'histogram':
      samples.set(`${name}_bucket`, 'bucket').set(`${name}_sum`, 'keep').set(`${name}_count`, 'keep');
      if (format === 'openmetrics') samples.set(`${name}_created`, 'keep');
      break;
    case 'gaugehistogram':
      samples.set(`${name}_bucket`, 'bucket').set(`${name}_gsum`, 'keep').set(`${name}_gcount`, 'keep');
      break;
    case 'summary':
      samples.set(name, 'quantile').set(`${name}_sum`, 'keep').set(`${name}_count`, 'keep');
      if (format === 'openmetrics') samples.set(`${name}_created`, 'keep');
      break;
    case 'info':
      samples.set(`${name}_info`, 'keep');
      break;
    default:
      samples.set(name, 'keep');
  }
  return samples;
}

/**
 * How a family read in `input` format is written in `output` format. Sample names are kept as they are, so
 * that a series is called the same whichever format the scraper negotiated; where the output format cannot
 * express the input's type under those names, the family is written with a neutral type (text `untyped`,
 * OpenMetrics `unknown`) rather than renamed.
 */
export function describeOutputFamily(
  input: ExpositionFormat,
  output: ExpositionFormat,
  name: string,
  type: MetricType,
): OutputFamily {
  const samples = inputSamples(input, name, type);
  let headerName: string | undefined = name;
  let headerType: MetricType | undefined = type;
  const occupied = new Set<string>([name]);

  if (input === 'text' && output === 'openmetrics') {
    if (type === 'counter') {
      // OpenMetrics counters are named without `_total` and their samples with it.
      if (name.endsWith(total) && name.length > total.length) {
        headerName = name.slice(0, -total.length);
        occupied.add(headerName).add(`${headerName}_created`);
      } else headerType = 'unknown';
    } else if (type === 'untyped') headerType = 'unknown';
    if (type === 'histogram' || type === 'summary') occupied.add(`${name}_created`);
  } else if (input === 'openmetrics' && output === 'text') {
    for (const sample of samples.keys()) if (sample.endsWith('_created')) samples.set(sample, 'drop');
    switch (type) {
      case 'counter':
        headerName = `${name}${total}`;
        break;
      case 'unknown':
        headerType = 'untyped';
        break;
      case 'info':
        headerName = `${name}_info`;
        headerType = 'gauge';
        break;
      case 'stateset':
        headerType = 'gauge';
        break;
      case 'gaugehistogram':
        // Text has no gauge histogram; its samples go out untyped under their own names.
        headerName = undefined;
        headerType = undefined;
        break;
      default:
        break;
    }
  }
  for (const [sample, role] of samples) if (role !== 'drop') occupied.add(sample);
  if (output === 'openmetrics') {
    // Reserve what an OpenMetrics family of this type could write, so that no other family's samples collide.
    if (headerType === 'counter') occupied.add(`${headerName}${total}`).add(`${headerName}_created`);
    if (headerType === 'histogram' || headerType === 'summary') occupied.add(`${name}_created`);
  }
  if (headerName !== undefined) occupied.add(headerName);
  return {
    headerName,
    headerType,
    keepsUnit: input === 'openmetrics' && output === 'openmetrics',
    samples,
    occupiedNames: [...occupied],
  };
}
