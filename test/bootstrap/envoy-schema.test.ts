import { chmod, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fromJson } from '@bufbuild/protobuf';
import test from 'ava';
import { buildEnvoyApiSchema, type EnvoyApiSchema } from '../../bootstrap/envoy-schema.ts';
import { createTemporaryRoot } from '../helpers/temporary-root.ts';

function typeNames(schema: EnvoyApiSchema): string[] {
  const names: string[] = [];
  for (const type of schema.registry) names.push(`${type.kind}:${type.typeName}`);
  return names.sort();
}

test('descriptors cached across processes are the ones parsed from the protos', async (t) => {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  const cacheDirectory = root.resolve('cache');
  const parsed = buildEnvoyApiSchema({ cacheDirectory });
  t.false(parsed.fromCache);
  const entries = await readdir(cacheDirectory);
  t.is(entries.length, 1);
  t.regex(entries[0] ?? '', /^envoy-api-[0-9a-f]{32}\.binpb$/);

  const cached = buildEnvoyApiSchema({ cacheDirectory });
  t.true(cached.fromCache);
  t.deepEqual(typeNames(cached), typeNames(parsed));
  t.is(cached.messageCount, parsed.messageCount);
  t.deepEqual(cached.skippedFiles, parsed.skippedFiles);
  // JSON names, oneofs, maps and nested Any payloads behave the same.
  const document = {
    staticResources: {
      clusters: [
        {
          name: 'a',
          connectTimeout: '1s',
          typedExtensionProtocolOptions: {
            x: {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicitHttpConfig: { http2ProtocolOptions: {} },
            },
          },
        },
      ],
    },
  };
  for (const schema of [parsed, cached]) {
    t.notThrows(() => fromJson(schema.bootstrap, document, { registry: schema.registry }));
  }
});

test('an unreadable or foreign cache entry is ignored and the protos are parsed again', async (t) => {
  const root = await createTemporaryRoot();
  t.teardown(() => root.remove());
  const cacheDirectory = root.resolve('cache');
  buildEnvoyApiSchema({ cacheDirectory });
  const [entry] = await readdir(cacheDirectory);
  await writeFile(path.join(cacheDirectory, entry ?? ''), 'not a descriptor set');
  const afterCorruption = buildEnvoyApiSchema({ cacheDirectory });
  t.false(afterCorruption.fromCache);
  t.truthy(afterCorruption.registry.getMessage('envoy.config.bootstrap.v3.Bootstrap'));
  // The rebuild repaired the entry; a directory others may write to is not trusted, though.
  t.true(buildEnvoyApiSchema({ cacheDirectory }).fromCache);
  await chmod(cacheDirectory, 0o777);
  t.false(buildEnvoyApiSchema({ cacheDirectory }).fromCache);
});
