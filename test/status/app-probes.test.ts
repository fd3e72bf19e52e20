import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import * as x509 from '@peculiar/x509';
import test from 'ava';
import { parseAppProbers } from '../../agent/config/app-probers.ts';
import { healthPackageDefinition } from '../../agent/status/grpc-health.ts';
import { freePort } from '../helpers/ports.ts';
import { liveEnvoyStats, startFakeEnvoy, startHttpServer } from './fakes.ts';
import { httpCall, startStatusServer } from './status-fixture.ts';

type Teardown = Parameters<typeof startStatusServer>[0];

async function statusServerWithProbes(t: Teardown, probers: Record<string, unknown>) {
  const envoy = await startFakeEnvoy({ stats: { ...liveEnvoyStats }, prometheus: '' });
  t.teardown(() => envoy.close());
  return startStatusServer(t, envoy.port, {
    appProbers: parseAppProbers('ISTIO_KUBE_APP_PROBERS', JSON.stringify(probers)),
  });
}

interface SeenRequest {
  readonly path: string;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly remoteAddress: string | undefined;
}

async function startApplication(t: Teardown) {
  const seen: SeenRequest[] = [];
  const app = await startHttpServer((request, response) => {
    seen.push({
      path: request.url ?? '',
      headers: request.headers,
      remoteAddress: request.socket.remoteAddress,
    });
    switch (request.url) {
      case '/healthy':
        return void response.writeHead(200).end('all good');
      case '/sick':
        return void response.writeHead(503).end('x'.repeat(20 * 1024));
      case '/moved-away':
        return void response.writeHead(301, { location: 'http://elsewhere.example/' }).end();
      case '/moved-here':
        return void response.writeHead(302, { location: '/missing' }).end();
      case '/hang':
        return; // never answers
      default:
        return void response.writeHead(404).end('no such page');
    }
  });
  t.teardown(() => app.close());
  return { ...app, seen };
}

test('HTTP probes: the application’s status and up to 10 KiB of its body; redirects as the kubelet follows them', async (t) => {
  const app = await startApplication(t);
  const probe = (path: string) => ({ httpGet: { path, port: app.port }, timeoutSeconds: 2 });
  const { baseUrl } = await statusServerWithProbes(t, {
    '/app-health/web/livez': probe('/healthy'),
    '/app-health/web/readyz': probe('/sick'),
    '/app-health/web/startupz': probe('/moved-away'),
    '/app-lifecycle/web/prestopz': probe('/moved-here'),
  });
  const live = await httpCall(`${baseUrl}/app-health/web/livez`);
  t.is(live.status, 200);
  t.is(live.body, 'all good');
  const ready = await httpCall(`${baseUrl}/app-health/web/readyz`);
  t.is(ready.status, 503);
  t.is(ready.body.length, 10 * 1024);
  t.is(
    (await httpCall(`${baseUrl}/app-health/web/startupz`)).status,
    200,
    'a redirect to another host counts as success',
  );
  const followed = await httpCall(`${baseUrl}/app-lifecycle/web/prestopz`);
  t.is(followed.status, 404, 'a redirect within the host is followed');
  t.is(followed.body, 'no such page');
  t.deepEqual(
    app.seen.map((request) => request.path),
    ['/healthy', '/sick', '/moved-away', '/moved-here', '/missing'],
  );
  t.true(
    app.seen.every((request) => request.remoteAddress === '127.0.0.6'),
    'probes come from 127.0.0.6, which the sidecar’s traffic capture lets through',
  );
});

test('HTTP probes forward the kubelet’s headers, rewrite a Host naming the status port, and apply the probe’s own headers', async (t) => {
  const app = await startApplication(t);
  const { baseUrl, server } = await statusServerWithProbes(t, {
    '/app-health/web/livez': {
      httpGet: { path: '/healthy', port: app.port, httpHeaders: [{ name: 'X-Probe', value: 'from-spec' }] },
    },
  });
  const answer = await httpCall(`${baseUrl}/app-health/web/livez`, {
    headers: {
      'user-agent': 'kube-probe/1.30',
      'x-custom': 'kept',
      'x-probe': 'from-kubelet',
      host: `10.0.0.5:${server.port}`,
    },
  });
  t.is(answer.status, 200);
  const headers = app.seen[0]?.headers ?? {};
  t.is(headers['user-agent'], 'kube-probe/1.30');
  t.is(headers['x-custom'], 'kept');
  t.is(headers['x-probe'], 'from-spec');
  t.is(headers.host, `10.0.0.5:${app.port}`);
});

test('HTTP probes: an application that is down or too slow is 500', async (t) => {
  const app = await startApplication(t);
  const downPort = await freePort();
  const { baseUrl, logs } = await statusServerWithProbes(t, {
    '/app-health/web/livez': { httpGet: { path: '/healthy', port: downPort } },
    '/app-health/web/readyz': { httpGet: { path: '/hang', port: app.port }, timeoutSeconds: 1 },
  });
  t.is((await httpCall(`${baseUrl}/app-health/web/livez`)).status, 500);
  const started = Date.now();
  t.is((await httpCall(`${baseUrl}/app-health/web/readyz`)).status, 500);
  t.true(Date.now() - started >= 900, 'the probe waited for its timeout');
  t.regex(
    logs.join('\n'),
    /error probes Request to probe app failed: .*ECONNREFUSED.*original URL path = \/app-health\/web\/livez/,
  );
});

test('HTTPS probes do not verify the application’s certificate', async (t) => {
  const crypto = webcrypto as unknown as Crypto;
  x509.cryptoProvider.set(crypto);
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
  const keys = await crypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: '01',
    name: 'CN=self-signed-app',
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 3_600_000),
    keys,
    signingAlgorithm: algorithm,
  });
  const key = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  const server = createHttpsServer(
    {
      cert: certificate.toString('pem'),
      key: `-----BEGIN PRIVATE KEY-----\n${key}\n-----END PRIVATE KEY-----\n`,
    },
    (_request, response) => response.writeHead(204).end(),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => void server.close());
  const { baseUrl } = await statusServerWithProbes(t, {
    '/app-health/web/livez': {
      httpGet: { path: '/', port: (server.address() as AddressInfo).port, scheme: 'HTTPS' },
    },
  });
  t.is((await httpCall(`${baseUrl}/app-health/web/livez`)).status, 204);
});

test('TCP probes: a connection is 200, a refused one 500', async (t) => {
  const listener = createTcpServer((socket) => socket.end());
  listener.listen(0, '127.0.0.1');
  await once(listener, 'listening');
  t.teardown(() => void listener.close());
  const downPort = await freePort();
  const { baseUrl } = await statusServerWithProbes(t, {
    '/app-health/db/livez': { tcpSocket: { port: (listener.address() as AddressInfo).port } },
    '/app-health/db/readyz': { tcpSocket: { port: downPort } },
  });
  t.is((await httpCall(`${baseUrl}/app-health/db/livez`)).status, 200);
  t.is((await httpCall(`${baseUrl}/app-health/db/readyz`)).status, 500);
});

test('gRPC probes call grpc.health.v1.Health/Check: SERVING is 200, anything else 500', async (t) => {
  const proto = grpc.loadPackageDefinition(healthPackageDefinition) as unknown as {
    grpc: { health: { v1: { Health: { service: grpc.ServiceDefinition } } } };
  };
  const statuses: Record<string, string> = { '': 'SERVING', payments: 'NOT_SERVING' };
  const userAgents: string[] = [];
  const server = new grpc.Server();
  server.addService(proto.grpc.health.v1.Health.service, {
    Check: (
      call: grpc.ServerUnaryCall<{ service: string }, unknown>,
      callback: grpc.sendUnaryData<unknown>,
    ) => {
      userAgents.push(String(call.metadata.get('user-agent')[0] ?? ''));
      const status = statuses[call.request.service];
      if (status === undefined) callback({ code: grpc.status.NOT_FOUND, details: 'unknown service' });
      else callback(null, { status });
    },
    Watch: (call: grpc.ServerWritableStream<unknown, unknown>) => call.end(),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  t.teardown(() => server.forceShutdown());
  const bare = new grpc.Server();
  const barePort = await new Promise<number>((resolve, reject) =>
    bare.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  t.teardown(() => bare.forceShutdown());
  const { baseUrl, logs } = await statusServerWithProbes(t, {
    '/app-health/api/livez': { grpc: { port } },
    '/app-health/api/readyz': { grpc: { port, service: 'payments' } },
    '/app-health/api/startupz': { grpc: { port, service: 'unknown' } },
    '/app-lifecycle/api/poststartz': { grpc: { port: barePort } },
  });
  t.is(
    (await httpCall(`${baseUrl}/app-health/api/livez`, { headers: { 'user-agent': 'kube-probe/1.30' } }))
      .status,
    200,
  );
  t.regex(userAgents[0] ?? '', /^kube-probe\/1\.30/);
  t.is((await httpCall(`${baseUrl}/app-health/api/readyz`)).status, 500);
  t.is((await httpCall(`${baseUrl}/app-health/api/startupz`)).status, 500);
  t.is((await httpCall(`${baseUrl}/app-lifecycle/api/poststartz`)).status, 500);
  t.regex(logs.join('\n'), /server does not implement the grpc health protocol/);
});

test('an application probe path without a prober is 400', async (t) => {
  const { baseUrl } = await statusServerWithProbes(t, {});
  const answer = await httpCall(`${baseUrl}/app-health/unknown/livez`);
  t.is(answer.status, 400);
  t.is(answer.body, 'app prober config does not exists for /app-health/unknown/livez');
});
