import test from 'ava';
import { decodeMessage, WireFormatError } from '../envoy-standin/protobuf-wire.ts';
import { aggregatedDiscoveryService } from '../envoy-standin/xds-protos.ts';
import {
  anyMessage,
  listenerSummary,
  type RawAny,
  resourceName,
  secretSummary,
} from '../envoy-standin/xds-resources.ts';
import { AdsService, adsTypeUrls } from '../istiod/ads-service.ts';

/** Packs resources the way a control plane does (full protos), unpacks them as the stand-in receives them. */
function roundTrip(resources: Array<Record<string, unknown>>): RawAny[] {
  const encode = new AdsService().definition.StreamAggregatedResources;
  const decode = aggregatedDiscoveryService().service.StreamAggregatedResources;
  if (!encode || !decode) throw new Error('ADS method missing');
  const bytes = encode.responseSerialize({ version_info: '1', resources, type_url: 'x', nonce: '1' });
  return (decode.responseDeserialize(bytes) as { resources: RawAny[] }).resources;
}

test('names, listener addresses and secrets are read from packed resources', (t) => {
  const [cluster, listener, pipeListener, bare, certificate, root] = roundTrip([
    { '@type': adsTypeUrls.cluster, name: 'outbound|9080||reviews.default.svc.cluster.local', type: 'EDS' },
    {
      '@type': adsTypeUrls.listener,
      name: 'virtualInbound',
      address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
      traffic_direction: 'INBOUND',
    },
    {
      '@type': adsTypeUrls.listener,
      name: 'uds',
      address: { pipe: { path: '/var/run/app.sock', mode: 0o600 } },
    },
    { '@type': adsTypeUrls.listener, name: 'no-address' },
    {
      '@type': adsTypeUrls.secret,
      name: 'default',
      tls_certificate: {
        certificate_chain: { inline_bytes: Buffer.from('CHAIN') },
        private_key: { inline_bytes: Buffer.from('KEY') },
      },
    },
    {
      '@type': adsTypeUrls.secret,
      name: 'ROOTCA',
      validation_context: { trusted_ca: { inline_string: 'ROOT' } },
    },
  ]);
  t.is(cluster?.type_url, adsTypeUrls.cluster);
  t.is(resourceName(anyMessage(cluster ?? {})), 'outbound|9080||reviews.default.svc.cluster.local');
  t.deepEqual(listenerSummary(anyMessage(listener ?? {})), {
    name: 'virtualInbound',
    address: { kind: 'socket', address: '0.0.0.0', port: 15006, ipv4Compat: false },
  });
  t.deepEqual(listenerSummary(anyMessage(pipeListener ?? {})).address, {
    kind: 'pipe',
    path: '/var/run/app.sock',
    mode: 0o600,
  });
  t.deepEqual(listenerSummary(anyMessage(bare ?? {})), { name: 'no-address', address: undefined });
  t.deepEqual(secretSummary(anyMessage(certificate ?? {})), {
    name: 'default',
    kind: 'tls_certificate',
    certificateChain: 'CHAIN',
  });
  t.deepEqual(secretSummary(anyMessage(root ?? {})), {
    name: 'ROOTCA',
    kind: 'validation_context',
    trustedCa: 'ROOT',
  });
});

test('malformed bytes are refused', (t) => {
  t.throws(() => decodeMessage(Uint8Array.from([0x0a, 0x05, 0x61])), { instanceOf: WireFormatError });
  t.throws(() => decodeMessage(Uint8Array.from([0x08, 0xff])), { instanceOf: WireFormatError });
  t.throws(() => decodeMessage(Uint8Array.from([0x0b])), { instanceOf: WireFormatError });
});
