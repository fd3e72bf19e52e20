import { createRequire } from 'node:module';
import path from 'node:path';
import { type GrpcObject, loadPackageDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

const require = createRequire(import.meta.url);

/** Envoy's API protos as shipped by the npm package `@grpc/grpc-js-xds` (envoy-api, xds, validate, googleapis). */
export const envoyProtoRoot = path.join(
  path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')),
  'deps',
);

export const envoyProtoIncludeDirectories: readonly string[] = [
  'envoy-api',
  'xds',
  'protoc-gen-validate',
  'googleapis',
].map((directory) => path.join(envoyProtoRoot, directory));

/** Loader options shared by every user of Envoy's protos, so messages look the same everywhere. */
export const envoyProtoLoaderOptions: Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [...envoyProtoIncludeDirectories],
};

const cache = new Map<string, GrpcObject>();

/**
 * Loads Envoy API protos (paths relative to the envoy-api root, e.g. `envoy/service/secret/v3/sds.proto`)
 * into a gRPC package object. Loading is cached: the files are parsed once per process.
 */
export function loadEnvoyProtos(files: readonly string[]): GrpcObject {
  const key = [...files].sort().join('\n');
  let loaded = cache.get(key);
  if (!loaded) {
    loaded = loadPackageDefinition(loadSync([...files], envoyProtoLoaderOptions));
    cache.set(key, loaded);
  }
  return loaded;
}
