import 'reflect-metadata';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import {
  type GrpcObject,
  loadPackageDefinition,
  Server,
  ServerCredentials,
  type ServerDuplexStream,
  type ServiceClientConstructor,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import * as x509 from '@peculiar/x509';
import test, { type ExecutionContext } from 'ava';
import { envoyProtoLoaderOptions } from '../../agent/envoy-api/protos.ts';
import {
  adminGet,
  baseBootstrap,
  freePort,
  startStandin,
  staticCluster,
  statValue,
  temporaryRoot,
  waitFor,
  writeBootstrap,
} from './harness.ts';

const secretType = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret';
const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
x509.cryptoProvider.set(globalThis.crypto);

async function keyPair() {
  return globalThis.crypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
}

/** A CA and a way to issue Istio-like workload certificates (SPIFFE URI SAN, empty subject). */
async function testCa() {
  const caKeys = await keyPair();
  const now = Date.now();
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '0c0ffee1',
    name: 'O=cluster.local',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 10 * 86_400_000),
    signingAlgorithm: algorithm,
    keys: caKeys,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return {
    pem: ca.toString('pem'),
    async issue(serialNumber: string, days: number) {
      const keys = await keyPair();
      const leaf = await x509.X509CertificateGenerator.create({
        serialNumber,
        subject: 'O=cluster.local',
        issuer: ca.subject,
        notBefore: new Date(now - 60_000),
        notAfter: new Date(now + days * 86_400_000 + 3_600_000),
        signingAlgorithm: algorithm,
        publicKey: keys.publicKey,
        signingKey: caKeys.privateKey,
        extensions: [
          new x509.SubjectAlternativeNameExtension(
            [{ type: 'url', value: 'spiffe://cluster.local/ns/default/sa/app' }],
            true,
          ),
        ],
      });
      return `${leaf.toString('pem')}\n${ca.toString('pem')}\n`;
    },
  };
}

type SecretCall = ServerDuplexStream<Record<string, unknown>, Record<string, unknown>>;

/** A tiny SDS server: answers StreamSecrets with the current secret by name, pushes on `set`. */
async function sdsServer(t: ExecutionContext, socketPath: string) {
  const loaded = loadPackageDefinition(
    loadSync(
      ['envoy/service/secret/v3/sds.proto', 'envoy/extensions/transport_sockets/tls/v3/secret.proto'],
      {
        ...envoyProtoLoaderOptions,
        json: true,
      },
    ),
  );
  const secretNamespace = (((loaded.envoy as GrpcObject).service as GrpcObject).secret as GrpcObject)
    .v3 as GrpcObject;
  const service = (secretNamespace.SecretDiscoveryService as ServiceClientConstructor).service;
  const secrets = new Map<string, { version: number; resource: Record<string, unknown> }>();
  const streams = new Map<string, Set<SecretCall>>();
  const requests: Array<{ name: string; version: string; nonce: string; error: string | undefined }> = [];
  let nonce = 0;
  const push = (call: SecretCall, name: string) => {
    const secret = secrets.get(name);
    if (!secret) return;
    call.write({
      version_info: String(secret.version),
      resources: [secret.resource],
      type_url: secretType,
      nonce: String(++nonce),
    });
  };
  const server = new Server();
  server.addService(service, {
    StreamSecrets: (call: SecretCall) => {
      call.on('data', (request: Record<string, unknown>) => {
        const name = String((request.resource_names as string[])[0]);
        const detail = request.error_detail as { message?: string } | null;
        requests.push({
          name,
          version: String(request.version_info),
          nonce: String(request.response_nonce),
          error: detail?.message || undefined,
        });
        if (request.response_nonce === '') {
          const set = streams.get(name) ?? new Set<SecretCall>();
          set.add(call);
          streams.set(name, set);
          push(call, name);
        }
      });
      call.on('end', () => call.end());
      call.on('error', () => undefined);
    },
  });
  await mkdir(path.dirname(socketPath), { recursive: true });
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(`unix:${socketPath}`, ServerCredentials.createInsecure(), (error, port) =>
      error ? reject(error) : resolve(port),
    ),
  );
  t.teardown(() => server.forceShutdown());
  return {
    requests,
    set(name: string, resource: Record<string, unknown>) {
      const version = (secrets.get(name)?.version ?? 0) + 1;
      secrets.set(name, { version, resource: { '@type': secretType, name, ...resource } });
      for (const call of streams.get(name) ?? []) push(call, name);
    },
  };
}

interface CertsBody {
  certificates: Array<{
    ca_cert: Array<Record<string, unknown>>;
    cert_chain: Array<{
      serial_number: string;
      subject_alt_names: unknown;
      days_until_expiration: string;
      expiration_time: string;
    }>;
  }>;
}

test('SDS: default and ROOTCA are subscribed over sds-grpc; /certs follows each push', async (t) => {
  const root = await temporaryRoot(t);
  const adminPort = await freePort();
  const ca = await testCa();
  const sds = await sdsServer(t, root.resolve('var/run/secrets/workload-spiffe-uds/socket'));
  sds.set('default', {
    tls_certificate: {
      certificate_chain: { inline_bytes: Buffer.from(await ca.issue('0a1b2c', 2)) },
      private_key: { inline_bytes: Buffer.from('not-a-real-key') },
    },
  });
  sds.set('ROOTCA', { validation_context: { trusted_ca: { inline_bytes: Buffer.from(ca.pem) } } });

  const bootstrap = baseBootstrap(adminPort);
  bootstrap.static_resources = {
    listeners: [],
    clusters: [
      staticCluster('sds-grpc', { pipe: { path: './var/run/secrets/workload-spiffe-uds/socket' } }, true),
    ],
  };
  startStandin(t, ['-c', await writeBootstrap(root, bootstrap), '--disable-hot-restart'], {
    cwd: root.directory,
  });

  const certs = async () => JSON.parse((await adminGet(adminPort, '/certs')).body) as CertsBody;
  const first = await waitFor('both secrets in /certs', async () => {
    const body = await certs();
    const [context] = body.certificates;
    return context && context.cert_chain.length > 0 && context.ca_cert.length > 0 ? context : undefined;
  });
  t.is(first.cert_chain[0]?.serial_number, 'a1b2c');
  t.deepEqual(first.cert_chain[0]?.subject_alt_names, [{ uri: 'spiffe://cluster.local/ns/default/sa/app' }]);
  t.is(first.cert_chain[0]?.days_until_expiration, '2');
  t.regex(first.cert_chain[0]?.expiration_time ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  t.is(first.ca_cert[0]?.serial_number, 'c0ffee1');
  t.is(first.ca_cert[0]?.path, '<inline>');
  t.deepEqual(
    [
      ...new Set(sds.requests.filter((request) => request.nonce === '').map((request) => request.name)),
    ].sort(),
    ['ROOTCA', 'default'],
  );
  await waitFor('ACKs of version 1', () =>
    ['default', 'ROOTCA'].every((name) =>
      sds.requests.some((r) => r.name === name && r.version === '1' && r.nonce !== ''),
    ),
  );
  t.is(await statValue(adminPort, 'server.days_until_first_cert_expiring'), 2);

  // Rotation: a new workload certificate is pushed and shown.
  sds.set('default', {
    tls_certificate: {
      certificate_chain: { inline_bytes: Buffer.from(await ca.issue('0bbb01', 5)) },
      private_key: { inline_bytes: Buffer.from('not-a-real-key') },
    },
  });
  const rotated = await waitFor('the rotated certificate', async () => {
    const chain = (await certs()).certificates[0]?.cert_chain[0];
    return chain?.serial_number === 'bbb01' ? chain : undefined;
  });
  t.is(rotated.days_until_expiration, '5');
  await waitFor(
    'two accepted default pushes',
    async () => (await statValue(adminPort, 'sds.default.update_success')) === 2,
  );

  // A broken push is NACKed and the last good certificate stays.
  sds.set('default', { tls_certificate: { certificate_chain: { inline_bytes: Buffer.from('garbage') } } });
  await waitFor('a NACK', () => sds.requests.some((request) => request.error !== undefined));
  t.is(await statValue(adminPort, 'sds.default.update_rejected'), 1);
  t.is((await certs()).certificates[0]?.cert_chain[0]?.serial_number, 'bbb01');
});
