import type { EnvironmentReader } from './environment.ts';
import { ConfigError } from './errors.ts';
import { isPlainObject, parseJson } from './structured-text.ts';

/**
 * The node metadata the operator supplied, before the bootstrap adds the agent's own keys, in Istio's
 * order: `proxyMetadata` keys starting `ISTIO_META_`, then `ISTIO_META_<K>` variables as raw strings, then
 * `ISTIO_METAJSON_<K>` JSON objects merged in. Values whose encoding Istio types are checked here.
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
  // As Istio's GetNodeMetaData: each ISTIO_METAJSON_* value is a JSON object merged into the metadata's top
  // level (the variable's suffix only names it). Istio merely warns on bad JSON; here it stops the start-up.
  for (const [key, text] of Object.entries(environment.withPrefix('ISTIO_METAJSON_'))) {
    const source = `ISTIO_METAJSON_${key}`;
    const value = parseJson(source, text, 'a JSON object merged into the node metadata');
    if (!isPlainObject(value))
      throw new ConfigError(source, 'expected a JSON object merged into the node metadata');
    Object.assign(metadata, value);
  }
  const podPorts = metadata.POD_PORTS;
  if (typeof podPorts === 'string' && podPorts.trim() !== '') {
    const ports = parseJson('ISTIO_META_POD_PORTS', podPorts, 'a JSON array of container ports');
    if (!Array.isArray(ports))
      throw new ConfigError('ISTIO_META_POD_PORTS', 'expected a JSON array of container ports');
  }
  return Object.freeze(metadata);
}
