import { Counter, Gauge, type Metric, type Registry } from 'prom-client';

/** Istio's `request_type` value for certificate signing requests. */
export const csrRequestType = 'csr';

/**
 * The identity part's series in the agent's registry, named as Istio's agent names them (Istio's sums are
 * exported without a `_total` suffix, except where the name carries it).
 */
export interface IdentityMetrics {
  readonly outgoingRequests: Counter<'request_type'>;
  readonly failedOutgoingRequests: Counter<'request_type'>;
  readonly outgoingRetries: Counter<'request_type'>;
  /** Cumulative milliseconds spent in outgoing requests (Istio records it as a sum in milliseconds). */
  readonly outgoingLatency: Counter<'request_type'>;
  readonly certExpirySeconds: Gauge<'resource_name'>;
  readonly fileWatcherFailures: Counter;
  readonly fileSecretFailures: Counter;
}

/**
 * Registers (or finds, when another part already did) the metrics in `registry`. `expirySeconds` is asked at
 * scrape time for each resource, so the gauge counts down between rotations as Istio's derived gauge does.
 */
export function registerIdentityMetrics(
  registry: Registry,
  expirySeconds: () => ReadonlyMap<string, number>,
): IdentityMetrics {
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    existing<Counter<L>>(registry, name) ?? new Counter<L>({ name, help, labelNames, registers: [registry] });
  return {
    outgoingRequests: counter(
      'istio_agent_num_outgoing_requests',
      'Number of total outgoing requests (e.g. to a token exchange server, CA, etc.)',
      ['request_type'],
    ),
    failedOutgoingRequests: counter(
      'istio_agent_num_failed_outgoing_requests',
      'Number of failed outgoing requests (e.g. to a token exchange server, CA, etc.)',
      ['request_type'],
    ),
    outgoingRetries: counter(
      'istio_agent_num_outgoing_retries',
      'Number of outgoing retry requests (e.g. to a token exchange server, CA, etc.)',
      ['request_type'],
    ),
    outgoingLatency: counter(
      'istio_agent_outgoing_latency',
      'The latency of outgoing requests (e.g. to a token exchange server, CA, etc.) in milliseconds.',
      ['request_type'],
    ),
    certExpirySeconds:
      existing<Gauge<'resource_name'>>(registry, 'istio_agent_cert_expiry_seconds') ??
      new Gauge({
        name: 'istio_agent_cert_expiry_seconds',
        help: 'The time remaining, in seconds, before the certificate chain will expire. A negative value indicates the cert is expired.',
        labelNames: ['resource_name'],
        registers: [registry],
        collect() {
          this.reset();
          for (const [resourceName, seconds] of expirySeconds()) {
            this.set({ resource_name: resourceName }, seconds);
          }
        },
      }),
    fileWatcherFailures: counter(
      'istio_agent_num_file_watcher_failures_total',
      'Number of times file watcher failed to add watchers',
      [],
    ),
    fileSecretFailures: counter(
      'istio_agent_num_file_secret_failures_total',
      'Number of times secret generation failed for files',
      [],
    ),
  };
}

function existing<T extends Metric>(registry: Registry, name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}
