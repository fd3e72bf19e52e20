import path from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { runPilotAgent } from '../helpers/cli.ts';
import { repositoryRoot } from '../helpers/paths.ts';
import { startHttpServer } from './fakes.ts';

test('pilot-agent wait exits 0 once the readiness URL answers 200', async (t) => {
  let probes = 0;
  const server = await startHttpServer((_request, response) => {
    probes++;
    response.writeHead(probes < 3 ? 503 : 200).end();
  });
  t.teardown(() => server.close());
  const result = await runPilotAgent(
    [
      'wait',
      '--url',
      `http://127.0.0.1:${server.port}/healthz/ready`,
      '--periodMillis',
      '50',
      '--timeoutSeconds',
      '20',
    ],
    { cwd: repositoryRoot },
  );
  t.is(result.exitCode, 0, result.all);
  t.is(probes, 3);
  t.regex(result.stdout, /info\tWaiting for Envoy proxy to be ready \(timeout: 20 seconds\)\.\.\./);
  t.regex(result.stdout, /info\tEnvoy is ready!/);
});

test('pilot-agent wait gives up after --timeoutSeconds with exit 255 and the last error', async (t) => {
  const server = await startHttpServer((_request, response) => response.writeHead(503).end('not yet'));
  t.teardown(() => server.close());
  const started = Date.now();
  const result = await runPilotAgent(
    [
      'wait',
      '--url',
      `http://127.0.0.1:${server.port}/healthz/ready`,
      '--periodMillis',
      '100',
      '--timeoutSeconds',
      '1',
      // Generous per attempt, so that a loaded machine still sees the 503 rather than a timeout.
      '--requestTimeoutMillis',
      '3000',
    ],
    { cwd: repositoryRoot },
  );
  t.is(result.exitCode, 255);
  t.true(Date.now() - started >= 1000);
  t.is(
    result.stderr.trim(),
    'Error: timeout waiting for Envoy proxy to become ready. Last error: HTTP status code 503',
  );
});

test('pilot-agent wait bounds each attempt by --requestTimeoutMillis', async (t) => {
  const server = await startHttpServer(() => {}); // accepts, never answers
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${server.port}/healthz/ready`;
  const result = await runPilotAgent(
    ['wait', '--url', url, '--periodMillis', '100', '--requestTimeoutMillis', '200', '--timeoutSeconds', '1'],
    { cwd: repositoryRoot },
  );
  t.is(result.exitCode, 255);
  t.is(
    result.stderr.trim(),
    `Error: timeout waiting for Envoy proxy to become ready. Last error: Get "${url}": no answer within 200 ms`,
  );
});

test('pilot-agent request talks to the admin port on localhost and prints the body; errors exit 255', async (t) => {
  const invocations = [
    ['request', 'GET', 'stats?usedonly'],
    ['request', 'post', '/logging?level=debug'],
    ['request', 'GET', 'missing'],
    ['request', 'GET', 'broken'],
    ['request', 'GET', 'healthz/ready', '--debug-port', '15020'],
    ['request', 'POST', 'echo', '{"a":1}'],
    ['request', 'GET', 'stats', '--debug-port', '9999'],
  ];
  // A network namespace of its own: the fixed ports 15000 and 15020 are free there.
  const run = await execa(
    'unshare',
    [
      '--net',
      process.execPath,
      path.join(repositoryRoot, 'test/status/request-in-namespace.ts'),
      JSON.stringify(invocations),
    ],
    { reject: false, all: true },
  );
  t.is(run.exitCode, 0, run.all);
  const { results, seen } = JSON.parse(run.stdout) as {
    results: { exitCode: number; stdout: string; stderr: string }[];
    seen: string[];
  };
  const [stats, post, missing, broken, agentPort, withBody, refused] = results;
  t.is(stats?.exitCode, 0);
  t.is(stats?.stdout, 'answer from 15000 to GET /stats?usedonly');
  t.is(post?.stdout, 'answer from 15000 to POST /logging?level=debug');
  t.is(missing?.exitCode, 0, 'a 404 is printed, not an error, as Istio does');
  t.is(missing?.stdout, 'invalid path: /missing');
  t.is(broken?.exitCode, 255);
  t.is(broken?.stderr, 'Error: received unsuccessful status code 500: admin failed');
  t.is(broken?.stdout, '', 'nothing but the admin body goes to stdout');
  t.is(agentPort?.stdout, 'answer from 15020 to GET /healthz/ready');
  t.is(withBody?.exitCode, 0);
  t.is(refused?.exitCode, 255);
  t.regex(refused?.stderr ?? '', /debug port 9999 is not in allowed list \[15000 15004 15020 15021\]/);
  t.deepEqual(seen, [
    '15000 GET /stats?usedonly',
    '15000 POST /logging?level=debug',
    '15000 GET /missing',
    '15000 GET /broken',
    '15020 GET /healthz/ready',
    '15000 POST /echo {"a":1}',
  ]);
});
