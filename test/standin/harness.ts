import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import { repositoryRoot } from '../helpers/paths.ts';
import { freePort } from '../helpers/ports.ts';
import { createTemporaryRoot, type TemporaryRoot } from '../helpers/temporary-root.ts';
import { waitFor } from '../helpers/wait-for.ts';

/** The stand-in's launcher, run exactly as the agent runs `PROXY_CONFIG.binaryPath`. */
export const standinExecutable = path.join(repositoryRoot, 'test/envoy-standin/envoy');

export interface StandinRun {
  readonly pid: number;
  /** Sends a signal to the stand-in process. */
  kill(signal: NodeJS.Signals): void;
  /** stderr lines so far (Envoy logs to stderr). */
  readonly logs: string[];
  /** Resolves with the exit code and signal once the process has exited. */
  readonly exited: Promise<{ exitCode: number | undefined; signal: string | undefined }>;
  waitForLog(pattern: RegExp, timeoutMilliseconds?: number): Promise<string>;
}

export interface StartOptions {
  readonly cwd?: string;
  readonly environment?: Record<string, string>;
}

/** Starts the stand-in; the test's teardown kills it if it is still running. */
export function startStandin(
  t: ExecutionContext,
  args: readonly string[],
  options: StartOptions = {},
): StandinRun {
  const subprocess = execa(standinExecutable, [...args], {
    cwd: options.cwd ?? repositoryRoot,
    env: options.environment ?? {},
    reject: false,
    buffer: false,
    cleanup: true,
    stdin: 'ignore',
  });
  const logs: string[] = [];
  let partial = '';
  subprocess.stderr?.setEncoding('utf8');
  subprocess.stderr?.on('data', (chunk: string) => {
    partial += chunk;
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    logs.push(...lines);
  });
  subprocess.stdout?.resume();
  let done = false;
  const exited = subprocess.then((result) => {
    done = true;
    return { exitCode: result.exitCode, signal: result.signal };
  });
  t.teardown(async () => {
    if (!done) {
      subprocess.kill('SIGKILL');
      await exited;
    }
  });
  return {
    pid: subprocess.pid ?? 0,
    kill: (signal) => {
      subprocess.kill(signal);
    },
    logs,
    exited,
    waitForLog: (pattern, timeoutMilliseconds = 15_000) =>
      waitFor(`a log line matching ${pattern}`, () => logs.find((line) => pattern.test(line)), {
        timeoutMilliseconds,
      }),
  };
}

export interface HttpResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One HTTP/1.1 request on a fresh connection (no pooling, so connection counts stay exact). */
export function httpRequest(
  target: { port: number; host?: string } | { socketPath: string },
  method: string,
  requestPath: string,
  headers: Record<string, string> = {},
): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const outgoing = request(
      {
        ...('socketPath' in target
          ? { socketPath: target.socketPath }
          : { host: target.host ?? '127.0.0.1', port: target.port }),
        method,
        path: requestPath,
        headers,
        agent: false,
        timeout: 10_000,
      },
      (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
        });
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body }),
        );
        response.on('error', reject);
      },
    );
    outgoing.on('timeout', () => outgoing.destroy(new Error(`${method} ${requestPath} timed out`)));
    outgoing.on('error', reject);
    outgoing.end();
  });
}

export const adminGet = (port: number, requestPath: string) => httpRequest({ port }, 'GET', requestPath);
export const adminPost = (port: number, requestPath: string) => httpRequest({ port }, 'POST', requestPath);

/** Waits until `/ready` says LIVE. */
export function waitForLive(adminPort: number, timeoutMilliseconds = 20_000): Promise<HttpResult> {
  return waitFor(
    'the stand-in to be LIVE',
    async () => {
      const result = await adminGet(adminPort, '/ready');
      return result.status === 200 ? result : undefined;
    },
    { timeoutMilliseconds },
  );
}

/** Reads one stat from `/stats?filter=^name$` (undefined when absent). */
export async function statValue(
  adminPort: number,
  name: string,
  usedOnly = false,
): Promise<number | undefined> {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const result = await adminGet(
    adminPort,
    `/stats?${usedOnly ? 'usedonly&' : ''}filter=^${encodeURIComponent(escaped)}$`,
  );
  const line = result.body.split('\n').find((candidate) => candidate.startsWith(`${name}: `));
  return line === undefined ? undefined : Number(line.slice(name.length + 2));
}

/** A random base id, so parallel tests never share hot-restart sockets. */
export function uniqueBaseId(): number {
  return 100_000 + Math.floor(Math.random() * 900_000);
}

export interface TestRoot extends TemporaryRoot {}

export async function temporaryRoot(t: ExecutionContext): Promise<TestRoot> {
  const root = await createTemporaryRoot('sb-');
  t.teardown(() => root.remove());
  return root;
}

export const socketAddress = (port: number, address = '127.0.0.1') => ({
  socket_address: { address, port_value: port },
});

export function staticCluster(
  name: string,
  address: Record<string, unknown>,
  http2 = false,
): Record<string, unknown> {
  return {
    name,
    type: 'STATIC',
    connect_timeout: '1s',
    load_assignment: { cluster_name: name, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] },
    ...(http2
      ? {
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
        }
      : {}),
  };
}

export interface RouteSpec {
  readonly prefix?: string;
  readonly path?: string;
  readonly cluster?: string;
  readonly directResponse?: { status: number; body: string };
}

export function httpListener(
  name: string,
  port: number,
  routes: readonly RouteSpec[],
  options: { trafficDirection?: 'INBOUND' | 'OUTBOUND'; statPrefix?: string } = {},
): Record<string, unknown> {
  return {
    name,
    address: socketAddress(port, '0.0.0.0'),
    ...(options.trafficDirection ? { traffic_direction: options.trafficDirection } : {}),
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type':
                'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              stat_prefix: options.statPrefix ?? name,
              route_config: {
                virtual_hosts: [
                  {
                    name: 'backend',
                    domains: ['*'],
                    routes: routes.map((route) => ({
                      match:
                        route.path !== undefined ? { path: route.path } : { prefix: route.prefix ?? '/' },
                      ...(route.directResponse
                        ? {
                            direct_response: {
                              status: route.directResponse.status,
                              body: { inline_string: route.directResponse.body },
                            },
                          }
                        : { route: { cluster: route.cluster } }),
                    })),
                  },
                ],
              },
              http_filters: [
                {
                  name: 'envoy.filters.http.router',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router',
                  },
                },
              ],
            },
          },
        ],
      },
    ],
  };
}

/** A minimal bootstrap with an admin port, like the head of Istio's. */
export function baseBootstrap(adminPort: number): Record<string, unknown> {
  return {
    node: {
      id: 'sidecar~10.1.2.3~app-1.default~default.svc.cluster.local',
      cluster: 'app.default',
      metadata: { ISTIO_VERSION: '1.28.0', CLUSTER_ID: 'Kubernetes' },
    },
    admin: {
      access_log_path: '/dev/null',
      profile_path: '/var/lib/istio/data/envoy.prof',
      address: socketAddress(adminPort),
    },
    static_resources: { listeners: [], clusters: [] },
  };
}

export async function writeBootstrap(
  root: TemporaryRoot,
  bootstrap: Record<string, unknown>,
  name = 'envoy-rev.json',
) {
  return root.write(name, JSON.stringify(bootstrap, null, 2));
}

/** The JSON lines of an ENVOY_STANDIN_*_LOG file. */
export function readJsonLines(file: string): Array<Record<string, unknown>> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Whether a process is gone (exited and reaped, or a zombie): PID 1 here reaps late. */
export function processGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return / Z /.test(stat.slice(stat.lastIndexOf(')')));
  } catch {
    return true;
  }
}

export { freePort, waitFor };
