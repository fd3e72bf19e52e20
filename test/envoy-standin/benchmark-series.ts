/**
 * Extra Prometheus series for benchmarks (ENVOY_STANDIN_EXTRA_PROMETHEUS_SERIES=N): N counters shaped like
 * the `istio_*` metrics Istio's stats filter adds to a busy sidecar (custom namespace, so no `envoy_`
 * prefix, many labels), spread over four families. They are generated while rendering, not stored, and
 * appear in `/stats/prometheus` only.
 */
const families = [
  'istio_requests_total',
  'istio_request_messages_total',
  'istio_tcp_connections_opened_total',
  'istio_tcp_sent_bytes_total',
] as const;

function line(family: string, index: number): string {
  const client = `bench-client-${index}`;
  return (
    `${family}{reporter="destination",source_workload="${client}",source_workload_namespace="bench",` +
    `source_principal="spiffe://cluster.local/ns/bench/sa/${client}",source_app="${client}",` +
    'destination_workload="bench-server",destination_workload_namespace="bench",' +
    'destination_service="bench-server.bench.svc.cluster.local",destination_service_name="bench-server",' +
    'request_protocol="http",response_code="200",connection_security_policy="mutual_tls"} ' +
    `${(index * 7919) % 100000}\n`
  );
}

/** Writes the extra families through `write`, which may apply back-pressure by returning a promise. */
export async function writeBenchmarkSeries(
  count: number,
  filter: RegExp | undefined,
  write: (text: string) => void | Promise<void>,
): Promise<void> {
  for (const [familyIndex, family] of families.entries()) {
    if (familyIndex >= count) break;
    if (filter && !filter.test(family)) continue;
    let text = `# TYPE ${family} counter\n`;
    for (let index = familyIndex; index < count; index += families.length) {
      text += line(family, index);
      if (text.length >= 65_536) {
        await write(text);
        text = '';
      }
    }
    await write(`${text}\n`);
  }
}
