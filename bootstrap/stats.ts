import type { AgentConfig } from '../agent/config/agent-config.ts';
import type { HistogramBucketSettings, StatsConfig, StringMatcher, TagSpecifier } from './envoy-types.ts';

/** Stats the agent's readiness check and Istio's dashboards need, whatever the user includes. */
export const requiredInclusionPrefixes = [
  'cluster_manager',
  'listener_manager',
  'server',
  'cluster.xds-grpc',
  'wasm',
] as const;
export const requiredInclusionSuffixes = [
  'rbac.allowed',
  'rbac.denied',
  'shadow_allowed',
  'shadow_denied',
] as const;
/** Needed to count active connections when `EXIT_ON_ZERO_ACTIVE_CONNECTIONS` drains until idle. */
export const activeConnectionsSuffix = 'downstream_cx_active';
export const requiredInclusionRegexps = [String.raw`vhost\..*\.route\..*`] as const;

const annotations = {
  inclusionPrefixes: 'sidecar.istio.io/statsInclusionPrefixes',
  inclusionSuffixes: 'sidecar.istio.io/statsInclusionSuffixes',
  inclusionRegexps: 'sidecar.istio.io/statsInclusionRegexps',
  extraStatTags: 'sidecar.istio.io/extraStatTags',
  histogramBuckets: 'sidecar.istio.io/statsHistogramBuckets',
} as const;

const listenerAddress = String.raw`(((?:[_.[:digit:]]*|[_\[\]aAbBcCdDeEfF[:digit:]]*))\.)`;

/** Istio's tag extraction rules, in its order; the operator's extra tags go after `mongo_prefix`. */
function statsTags(extraStatTags: readonly string[]): TagSpecifier[] {
  return [
    { tag_name: 'cluster_name', regex: String.raw`^cluster\.((.+?(\..+?\.svc\.cluster\.local)?)\.)` },
    { tag_name: 'tcp_prefix', regex: String.raw`^tcp\.((.*?)\.)\w+?$` },
    { tag_name: 'response_code', regex: String.raw`_rq(_(\d{3}))$` },
    { tag_name: 'response_code_class', regex: String.raw`_rq(_(\dxx))$` },
    {
      tag_name: 'http_conn_manager_listener_prefix',
      regex: String.raw`^listener(?=\.).*?\.http\.${listenerAddress}`,
    },
    { tag_name: 'http_conn_manager_prefix', regex: String.raw`^http\.${listenerAddress}` },
    { tag_name: 'listener_address', regex: String.raw`^listener\.${listenerAddress}` },
    {
      tag_name: 'mongo_prefix',
      regex: String.raw`^mongo\.(.+?)\.(collection|cmd|cx_|op_|delays_|decoding_)(.*?)$`,
    },
    ...extraStatTags.map((tag) => ({ tag_name: tag, regex: String.raw`(${tag}=\.=(.*?);\.;)` })),
    { tag_name: 'cache', regex: String.raw`(cache\.(.+?)\.)` },
    { tag_name: 'component', regex: String.raw`(component\.(.+?)\.)` },
    { tag_name: 'tag', regex: String.raw`(tag\.(.+?);\.)` },
    { tag_name: 'wasm_filter', regex: String.raw`(wasm_filter\.(.+?)\.)` },
    { tag_name: 'authz_enforce_result', regex: String.raw`rbac(\.(allowed|denied))` },
    { tag_name: 'authz_dry_run_action', regex: String.raw`(\.istio_dry_run_(allow|deny)_)` },
    { tag_name: 'authz_dry_run_result', regex: String.raw`(\.shadow_(allowed|denied))` },
  ];
}

/**
 * Istio's rule for each inclusion list: the pod annotation (comma-separated) replaces `proxyStatsMatcher`
 * rather than adding to it; the required entries follow; `{pod_ip}` expands to each instance IP.
 */
function inclusionList(
  annotation: string | undefined,
  fromProxyConfig: readonly string[] | undefined,
  required: readonly string[],
  instanceIps: readonly string[],
): string[] {
  const chosen =
    annotation !== undefined && annotation !== '' ? annotation.split(',') : [...(fromProxyConfig ?? [])];
  const patterns = [...chosen, ...required];
  return patterns.flatMap((pattern) =>
    pattern.includes('{pod_ip}') ? instanceIps.map((ip) => pattern.replaceAll('{pod_ip}', ip)) : [pattern],
  );
}

export function buildStatsConfig(config: AgentConfig, warn: (message: string) => void): StatsConfig {
  const podAnnotations = config.pod.annotations;
  const matcher = config.proxyConfig.proxyStatsMatcher;
  const ips = config.pod.instanceIps;
  const prefixes = inclusionList(
    podAnnotations[annotations.inclusionPrefixes],
    matcher?.inclusionPrefixes,
    requiredInclusionPrefixes,
    ips,
  );
  const suffixes = inclusionList(
    podAnnotations[annotations.inclusionSuffixes],
    matcher?.inclusionSuffixes,
    config.drain.exitOnZeroActiveConnections
      ? [...requiredInclusionSuffixes, activeConnectionsSuffix]
      : requiredInclusionSuffixes,
    ips,
  );
  const regexps = inclusionList(
    podAnnotations[annotations.inclusionRegexps],
    matcher?.inclusionRegexps,
    requiredInclusionRegexps,
    ips,
  );
  const patterns: StringMatcher[] = [
    { prefix: 'reporter=' },
    ...prefixes.map((prefix) => ({ prefix })),
    ...suffixes.map((suffix) => ({ suffix })),
    ...regexps.map((regex) => ({ safe_regex: { regex } })),
    { prefix: 'component' },
    { prefix: 'istio' },
  ];
  const extraStatTags = [
    ...new Set(
      [
        ...(config.proxyConfig.extraStatTags ?? []),
        ...(podAnnotations[annotations.extraStatTags] ?? '').split(','),
      ]
        .map((tag) => tag.trim())
        .filter((tag) => tag !== ''),
    ),
  ];
  const histogramBuckets = parseHistogramBuckets(podAnnotations[annotations.histogramBuckets], warn);
  return {
    use_all_default_tags: false,
    stats_tags: statsTags(extraStatTags),
    ...(histogramBuckets.length > 0 ? { histogram_bucket_settings: histogramBuckets } : {}),
    stats_matcher: { inclusion_list: { patterns } },
  };
}

/** `{"<stat prefix>": [bounds…]}`; Istio ignores (and logs) an annotation it cannot parse. */
function parseHistogramBuckets(
  annotation: string | undefined,
  warn: (message: string) => void,
): HistogramBucketSettings[] {
  if (annotation === undefined) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(annotation);
  } catch (error) {
    warn(`annotation ${annotations.histogramBuckets} ignored: invalid JSON (${(error as Error).message})`);
    return [];
  }
  const valid =
    typeof parsed === 'object' &&
    parsed !== null &&
    !Array.isArray(parsed) &&
    Object.values(parsed).every(
      (bounds) => Array.isArray(bounds) && bounds.every((bound) => typeof bound === 'number' && bound > 0),
    );
  if (!valid) {
    warn(
      `annotation ${annotations.histogramBuckets} ignored: expected {"<stat prefix>": [positive numbers]}`,
    );
    return [];
  }
  return Object.entries(parsed as Record<string, number[]>)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([prefix, buckets]) => ({ match: { prefix }, buckets }));
}
