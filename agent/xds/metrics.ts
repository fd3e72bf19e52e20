import { Counter, type Metric, type Registry } from 'prom-client';

/** Istio's values for the `type` label of the termination counters (pkg/istio-agent/metrics). */
export type TerminationType = 'cancelled' | 'error';

/**
 * The XDS proxy's series in the agent's registry, named as Istio's agent exports them (its sums carry no
 * `_total` suffix).
 */
export interface XdsProxyMetrics {
  /** Messages forwarded from Envoy to istiod. */
  readonly requests: Counter;
  /** Messages forwarded from istiod to Envoy. */
  readonly responses: Counter;
  /** Streams for which no connection to istiod could be made. */
  readonly istiodConnectionFailures: Counter;
  /** Upstream streams istiod ended: `cancelled` (expected: graceful end, cancellation, connection closing) or `error`. */
  readonly istiodConnectionTerminations: Counter<'type'>;
  /** Downstream streams Envoy ended, typed as above. */
  readonly envoyConnectionTerminations: Counter<'type'>;
}

/** Registers (or finds, when registered before) the XDS proxy's metrics in `registry`. */
export function registerXdsProxyMetrics(registry: Registry): XdsProxyMetrics {
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    existing<Counter<L>>(registry, name) ?? new Counter<L>({ name, help, labelNames, registers: [registry] });
  return {
    requests: counter('istio_agent_xds_proxy_requests', 'The total number of Xds Proxy Requests', []),
    responses: counter('istio_agent_xds_proxy_responses', 'The total number of Xds Proxy Responses', []),
    istiodConnectionFailures: counter(
      'istio_agent_istiod_connection_failures',
      'The total number of connection failures to Istiod',
      [],
    ),
    istiodConnectionTerminations: counter(
      'istio_agent_istiod_connection_terminations',
      'The total number of connection errors to Istiod',
      ['type'],
    ),
    envoyConnectionTerminations: counter(
      'istio_agent_envoy_connection_terminations',
      'The total number of connection errors from envoy',
      ['type'],
    ),
  };
}

function existing<T extends Metric>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}
