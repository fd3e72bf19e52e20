import type { EnvironmentReader } from './environment.ts';
import { ConfigError } from './errors.ts';
import { isPlainObject, parseJson } from './structured-text.ts';

/**
 * The node metadata the operator supplied, before the bootstrap adds the agent's own keys, in Istio's
 * order: `proxyMetadata` keys starting `ISTIO_META_`, then `ISTIO_META_<K>` variables as raw strings, then
 * `ISTIO_METAJSON_<K>` variables parsed as JSON. Values whose encoding Istio types are checked here.
 */
export function buildRawNodeMetadata(
  environment: EnvironmentReader,
  proxyMetadata: Readonly<Record<string, string>>,
): Readonly<Record<string, unknown>> {
  const metadata: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(proxyMetadata)) {
    if (name.startsWith('ISTIO_META_') && name.length > 'ISTIO_META_'.length)
      metadata[name.slice('ISTIO_META_'.length)] = value;
  }
  Object.assign(metadata, environment.withPrefix('ISTIO_META_'));
  for (const [key, text] of Object.entries(environment.withPrefix('ISTIO_METAJSON_'))) {
    const source = `ISTIO_METAJSON_${key}`;
    const value = parseJson(source, text, 'a JSON value for node metadata');
    if (key === 'LABELS' && !isPlainObject(value))
      throw new ConfigError(source, 'expected a JSON object of labels');
    metadata[key] = value;
  }
  const podPorts = metadata.POD_PORTS;
  if (typeof podPorts === 'string' && podPorts.trim() !== '') {
    const ports = parseJson('ISTIO_META_POD_PORTS', podPorts, 'a JSON array of container ports');
    if (!Array.isArray(ports))
      throw new ConfigError('ISTIO_META_POD_PORTS', 'expected a JSON array of container ports');
  }
  return Object.freeze(metadata);
}
